"""Read a notebook as plain JSON and find its parts: code cells to run, solution cells, points.

Only the standard library: the engine must work where nbformat is not installed. Every problem
with the file becomes a `NotebookError` whose message is one line a student can act on.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 << 20


class NotebookError(ValueError):
    """The file cannot be graded; the message says why, in one line."""


def read_notebook(path: str | Path) -> dict:
    """The notebook at `path` (`autograder check`'s own file: a link is followed), read as a plain
    file only (a FIFO would block, `/dev/zero` never end) and at most `MAX_NOTEBOOK_BYTES`."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except OSError as exc:
        raise NotebookError(f"{path} cannot be read: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # a folder's descriptor cannot even become a file object
        os.close(fd)
        raise NotebookError(f"{path} is a folder, not a notebook" if stat.S_ISDIR(info.st_mode)
                            else f"{path} is not a plain file")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(f"{path} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB")
        try:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
        except OSError as exc:
            raise NotebookError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"{path} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB")
    return parse_notebook(raw, str(path))


def parse_notebook(raw: bytes | str, name: str = "the notebook") -> dict:
    try:
        nb = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        line = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotebookError(f"{name} is not a notebook: it is not valid JSON{line}") from None
    validate(nb, name)
    return nb


def validate(nb: object, name: str = "the notebook") -> None:
    if not isinstance(nb, dict):
        raise NotebookError(f"{name} is not a notebook: it is JSON but not an object")
    if "worksheets" in nb or nb.get("nbformat", 4) != 4:
        raise NotebookError(f"{name} uses nbformat {nb.get('nbformat')}: open it in Jupyter, "
                            "save it, and submit again (version 4 is needed)")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise NotebookError(f"{name} is not a notebook: it has no list of cells")
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise NotebookError(f"{name}: cell {i} is not a notebook cell")
        source = cell.get("source", "")
        if not isinstance(source, str) and not (
                isinstance(source, list) and all(isinstance(s, str) for s in source)):
            raise NotebookError(f"{name}: cell {i} has a source that is not text")
        if not isinstance(cell.get("metadata", {}), dict):
            raise NotebookError(f"{name}: cell {i} has metadata that is not an object")


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_grade_cell(cell: dict) -> bool:
    """A test cell: graded, not written by the student. Never run by the engine."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def solution_sources(nb: dict, targets: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """For each target, the index and source of its solution cell (by grade_id)."""
    found = {}
    for i, c in enumerate(nb["cells"]):
        grade_id = nbgrader_meta(c).get("grade_id")
        if grade_id in targets and c.get("cell_type") == "code" and grade_id not in found:
            found[grade_id] = (i, source(c))
    return found


def points(nb: dict, lesson) -> dict[str, float]:
    """Points per target of `lesson`, from the grade cells' nbgrader metadata (where an
    instructor sets them)."""
    found = {}
    for c in nb["cells"]:
        meta = nbgrader_meta(c)
        for target in lesson.targets:
            if meta.get("grade_id") == target.grade_cell and is_grade_cell(c):
                try:
                    value = float(meta.get("points"))
                except (TypeError, ValueError):
                    continue
                if value >= 0 and value == value and value != float("inf"):
                    found[target.name] = value
    return found
