"""Student text on a terminal, as text: control characters made visible (standard library only).

An exception message, a print, a file or folder name is the student's, and a terminal obeys the
escape sequences in what it is shown: `\\x1b]0;...` sets its title, `\\x1b[2J` clears the screen,
`\\x1b]8;;URL` plants a hyperlink, `\\r` and `\\b` write over what was printed. `visible` shows each
such character as its escape (`\\x1b`, `\\r`, `\\u202e`), keeping newlines and tabs (or, with
`lines=False`, showing those too). `shown` also escapes rich's markup, for text put in a rich
table or line. JSON output needs neither: there, escaping is JSON's job.
"""

from __future__ import annotations

_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# C0 controls, DEL, C1 controls (\x9b is a terminal's CSI on its own), and the invisible
# characters that reorder or hide text (bidirectional overrides and isolates, zero-width ones).
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x200B, 0x2010),
             *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
_TABLE = {code: _escape(code) for code in _CONTROLS}
_TABLE_LINES = {code: text for code, text in _TABLE.items() if chr(code) not in "\n\t"}


def visible(text: object, lines: bool = True) -> str:
    """`text` with every control character shown as its escape; newlines and tabs kept where
    `lines` (the default)."""
    return str(text).translate(_TABLE_LINES if lines else _TABLE)


def shown(text: object, lines: bool = True) -> str:
    """`visible`, with rich's markup escaped: for student text in a rich table or line."""
    from rich.markup import escape

    return escape(visible(text, lines))


def student_console(**options):
    """A rich console for what a student reads (`check`'s table and lines): as wide as the
    terminal, and never wider than the self-check's lines (`report.WIDTH`), so that no line
    runs past a wide window's reading width either."""
    from rich.console import Console

    from .report import WIDTH

    return Console(width=min(Console(**options).width, WIDTH), **options)
