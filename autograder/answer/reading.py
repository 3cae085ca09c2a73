"""Reading a notebook's code without running it (trusted side): statements, what each defines and
what it uses, with Python's own scoping (`symtable`), so that the grader knows which code a
graded function can reach.

Used by `rules.py` (the exercise's rule, on all code a graded function reaches) and `program.py`
(what the graded process runs: the lesson's code the answers need, then the answers). Standard
library only; nothing is imported or executed.
"""

from __future__ import annotations

import ast
import bisect
import functools
import re
import symtable
from collections.abc import Iterable
from dataclasses import dataclass, field

from .compiler import AST_LOCK

#: One parse at a time, and never beside a compile of a syntax tree (`compiler.AST_LOCK`:
#: python/cpython#106905).
PARSING = AST_LOCK
#: IPython's line magics, cell magics and shell escapes, at the start of a line.
MAGIC = re.compile(r"^(\s*)(%%?|!)", re.MULTILINE)


@dataclass
class Statement:
    """One top-level statement of a cell."""

    cell: int  # the cell's index in the notebook it comes from
    node: ast.stmt
    defines: frozenset[str]  # module-level names it binds
    uses: frozenset[str]  # module-level names it reads, at once or when a function of it runs
    first: int  # its first and last line in the cell (decorators included)
    last: int
    changes: frozenset[str] = frozenset()  # names whose contents it may change, or aliases


#: Where `str.splitlines` ends a line.
LINE_END = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
FIRST_TEXT = re.compile(r"\S")


def first_line(source: str) -> str:
    """The first line of `source` with more than blanks in it, stripped: what
    `source.splitlines()` would give, read only up to the end of that line (a cell of megabytes
    costs no more than its first line)."""
    start = FIRST_TEXT.search(source)
    if start is None:
        return ""
    end = LINE_END.search(source, start.start())
    return source[start.start():end.start() if end else len(source)].strip()


def cell_label(source: str, target: str | None = None, first: str | None = None) -> str:
    """A cell as a student finds it: `the lin_grad cell`, or `the cell "def forward_and..."`
    by its first line (Jupyter shows no cell numbers; `first` where it is known)."""
    if target is not None:
        return f"the {target} cell"
    first = first_line(source) if first is None else first
    return f'the cell "{first if len(first) <= 40 else first[:37] + "..."}"'


@dataclass
class Cell:
    """A code cell, read once (`read_cell`): its text, its tree, its statements with the names
    each defines and uses, or why it could not be read. The rules judge it, the program runs
    what it keeps of it, and the messages name it and what it defines.

    `index` orders cells as they run (the lesson's order); `name` is how the grader's messages
    find the cell ("the mse_grad cell", "cell 5 of the lesson").
    """

    index: int
    source: str
    tree: ast.Module | None
    statements: list[Statement] = field(default_factory=list)
    magics: list[tuple[int, str]] = field(default_factory=list)  # (line, the magic's first word)
    name: str = ""
    too_long: bool = False  # longer than `limit`: not read at all

    @functools.cached_property
    def first_line(self) -> str:
        return first_line(self.source)

    def label(self, target: str | None = None) -> str:
        """The cell as a student finds it (`cell_label`): its first line is found once."""
        return cell_label(self.source, target, None if target is not None else self.first_line)

    @property
    def defines(self) -> list[str]:
        """The module-level names its statements bind, in order, each once."""
        return list(dict.fromkeys(name for s in self.statements for name in sorted(s.defines)))

    def definitions(self, kinds: tuple[type[ast.stmt], ...]) -> list[str]:
        """The names of its top-level definitions of `kinds` (`ast.ClassDef`, ...), in order."""
        return [s.node.name for s in self.statements if isinstance(s.node, kinds)]


def magic_lines(source: str) -> list[tuple[int, str]]:
    """(line, '%time' or '!pip' ...) for each line IPython would treat as a magic or a shell escape,
    strings left out: only lines that start a statement count. One pass over the text."""
    inside = _lines_in_strings(source)
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        if number in inside or MAGIC.match(line) is None:
            continue
        found.append((number, line.strip().split()[0][:40]))
    return found


def _lines_in_strings(source: str) -> set[int]:
    """The numbers of the lines that begin inside a triple-quoted string (where a `%` line is
    not a magic): one pass, whatever the text (a tokenizer error is no concern here)."""
    inside: set[int] = set()
    i, n, line = 0, len(source), 1
    quote = ""  # the open triple quote, if any
    while i < n:
        ch = source[i]
        if ch == "\n":
            line += 1
            if quote:
                inside.add(line)
            i += 1
        elif quote:
            if ch == "\\":
                i += 2 if i + 1 < n and source[i + 1] != "\n" else 1
            elif source.startswith(quote, i):
                quote, i = "", i + 3
            else:
                i += 1
        elif ch == "#":
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif ch in "'\"":
            if source.startswith(ch * 3, i):
                quote, i = ch * 3, i + 3
            else:  # a one-line string: to its closing quote or the end of the line
                i += 1
                while i < n and source[i] not in (ch, "\n"):
                    i += 2 if source[i] == "\\" and i + 1 < n and source[i + 1] != "\n" else 1
                if i < n and source[i] == ch:
                    i += 1
        else:
            i += 1
    return inside


def parse(text: str, *, magics: bool = False) -> ast.Module | None:
    """`text` parsed (one parse at a time, see PARSING), magic lines read as comments with
    `magics`; None where it does not parse."""
    try:
        with PARSING:
            return ast.parse(MAGIC.sub(r"\1# \2", text) if magics else text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def read_cell(index: int, source: str, *, magics: bool = True, name: str = "",
              limit: int | None = None) -> Cell:
    """Parse a cell. With `magics`, lines IPython would run as magics are read as comments (the
    lesson's own cells: `%matplotlib inline`); either way they are listed in `Cell.magics`. A
    cell longer than `limit` characters is not read (`Cell.too_long`)."""
    if limit is not None and len(source) > limit:
        return Cell(index, source, None, name=name or f"cell {index}", too_long=True)
    found = magic_lines(source)
    text = MAGIC.sub(r"\1# \2", source) if magics else source
    name = name or f"cell {index}"
    try:
        with PARSING:
            tree = ast.parse(text)
            table = symtable.symtable(text, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Cell(index, source, None, magics=found, name=name)
    return Cell(index, source, tree, _statements(index, tree, table), found, name)


def _statements(index: int, tree: ast.Module, table: symtable.SymbolTable) -> list[Statement]:
    """The cell's top-level statements, each with the names it binds and reads at module level,
    and those that the functions, classes and comprehensions it makes read or bind as globals
    (one symbol table for the cell: a cell of many statements costs one pass)."""
    spans = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans.append((first, getattr(node, "end_lineno", node.lineno), node))
    inner: dict[int, tuple[set[str], set[str]]] = {}
    firsts = [first for first, _, _ in spans]
    for child in table.get_children():
        line = child.get_lineno()
        at = bisect.bisect_right(firsts, line) - 1
        if at >= 0 and spans[at][0] <= line <= spans[at][1]:
            reads, writes = _globals_in(child)
            have = inner.setdefault(at, (set(), set()))
            have[0].update(reads)
            have[1].update(writes)
    out = []
    for i, (first, last, node) in enumerate(spans):
        defines, uses = module_names(node)
        reads, writes = inner.get(i, (set(), set()))
        out.append(Statement(index, node, frozenset(defines | writes), frozenset(uses | reads),
                             first, last, frozenset(changed(node))))
    return out


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


def module_names(node: ast.stmt) -> tuple[set[str], set[str]]:
    """(names `node` binds, names it reads) in the module's own scope: what runs inside a
    function, class or comprehension it makes is counted from the symbol table instead."""
    defines, uses = set(), set()
    stack: list[ast.AST] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, _SCOPES):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defines.add(n.name)
                stack.extend(n.decorator_list)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                stack.extend([*n.args.defaults, *(d for d in n.args.kw_defaults if d)])
            elif isinstance(n, ast.ClassDef):
                stack.extend([*n.bases, *n.keywords])
            else:  # a comprehension: its first iterable is read here
                stack.append(n.generators[0].iter)
            continue
        if isinstance(n, ast.Name):
            (uses if isinstance(n.ctx, ast.Load) else defines).add(n.id)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            for alias in n.names:
                if alias.name != "*":
                    defines.add(alias.asname or alias.name.split(".")[0])
        stack.extend(ast.iter_child_nodes(n))
    return defines, uses


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def changed(node: ast.AST) -> set[str]:
    """Names whose objects `node` may change or hand on: stored into (`h[k] = f`, `m.f = g`),
    a method called on (`h.update(...)`), or assigned as they are to another name (`a = h`)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute | ast.Subscript) and isinstance(sub.ctx, ast.Store | ast.Del):
            found.add(_root(sub.value))
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            found.add(_root(sub.func.value))
        elif isinstance(sub, ast.Assign | ast.AnnAssign | ast.NamedExpr) and \
                isinstance(sub.value, ast.Name | ast.Attribute | ast.Subscript):
            found.add(_root(sub.value))
    found.discard(None)
    return found


def _globals_in(table: symtable.SymbolTable) -> tuple[set[str], set[str]]:
    reads = {sym.get_name() for sym in table.get_symbols() if sym.is_referenced() and sym.is_global()}
    writes = {sym.get_name() for sym in table.get_symbols()
              if sym.is_declared_global() and sym.is_assigned()}
    for child in table.get_children():
        more_reads, more_writes = _globals_in(child)
        reads |= more_reads
        writes |= more_writes
    return reads, writes


def imported(statements: Iterable[Statement]) -> set[str]:
    """The names that import statements bind: modules, and what was taken from them."""
    return {name for s in statements if isinstance(s.node, ast.Import | ast.ImportFrom)
            for name in s.defines}


def stored(node: ast.stmt) -> set[str]:
    """The names a top-level assignment stores into, each target an attribute or an item of one
    (`layer.out = ...`, `settings.eps = 1e-5`, `table[k] = v`): what a reached object is given
    by the cells that made it. Any other statement: none."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    else:
        return set()
    if not all(isinstance(t, ast.Attribute | ast.Subscript) for t in targets):
        return set()
    return {name for t in targets if (name := _root(t.value)) is not None}


def reachable(start: Iterable[str], statements: list[Statement], *,
              touching: Iterable[int] = ()) -> list[Statement]:
    """The statements that define `start` or any name those statements read, transitively, in
    their order: the code that can run when a function named in `start` is called. With them,
    each top-level assignment to an attribute or item of such a name (`stored`: `layer.out =
    ...` in the lesson's cell that made `layer`), which what is called may read.

    In the cells listed in `touching`, also each statement that may change what such a name
    holds (`hooks[k] = f`, `Module.backward = f`, `h = hooks`), modules aside: the reading for
    the rules, on the student's cells. Each statement is looked at once per name it binds or
    changes: linear in the code's size.
    """
    touching = set(touching)
    modules = imported(statements)
    by_name: dict[str, list[int]] = {}
    for i, s in enumerate(statements):
        names = set(s.defines) | (stored(s.node) - modules)
        if s.cell in touching:
            names |= s.changes - modules
        for name in names:
            by_name.setdefault(name, []).append(i)
    wanted: set[str] = set()
    queue = list(start)
    found: set[int] = set()
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.add(name)
        for i in by_name.get(name, ()):
            if i in found:
                continue
            found.add(i)
            s = statements[i]
            queue.extend(s.uses | (s.defines if touching else set()))
    return [statements[i] for i in sorted(found)]


def keep_lines(source: str, statements: list[Statement]) -> str:
    """`source` with only the lines of `statements` kept, the others blank: line numbers stay
    those of the cell."""
    lines = source.splitlines()
    keep = set()
    for s in statements:
        keep.update(range(s.first, s.last + 1))
    return "\n".join(line if n in keep else "" for n, line in enumerate(lines, 1)) + "\n"


def without(source: str, nodes: Iterable[ast.stmt]) -> str:
    """`source` with each statement in `nodes` (none inside another) replaced by `pass`, the
    other lines where they were: what grading runs of a cell whose prints it leaves out."""
    # Python ends a line at \n, \r\n or \r alone: the same lines as ast's, whatever the text.
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    lines = source.encode("utf-8").split(b"\n")  # ast's columns count UTF-8 bytes
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        first, last = node.lineno - 1, node.end_lineno - 1
        rest = lines[last][node.end_col_offset:]
        lines[first] = lines[first][:node.col_offset] + b"pass" + rest
        for i in range(first + 1, last + 1):
            lines[i] = b""
    return b"\n".join(lines).decode("utf-8")
