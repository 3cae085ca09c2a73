"""Releasing a graded page: its name in the exchange (nbgrader's hash of the student's secret)
and the rate limit's note put at its top."""

from __future__ import annotations

import html
import re
from pathlib import Path


def notebook_hash(secret: str, notebook_id: str) -> str:
    """The page's name in the exchange: nbgrader's hash of the submission's secret (which the
    student's own cache holds: no one else can find the page)."""
    from nbgrader.utils import notebook_hash as nbgrader_hash

    return nbgrader_hash(secret=secret, notebook_id=notebook_id)



def add_note(page: Path, note: str) -> None:
    """The rate limit's note, at the top of the page."""
    text = page.read_text()
    banner = (f'<div class="autograder-next" style="border:2px solid #c60;padding:0.5em;'
              f'margin:0.5em">{html.escape(note)}</div>')
    match = re.search(r"<body[^>]*>", text)
    at = match.end() if match else 0
    page.write_text(text[:at] + banner + text[at:])
