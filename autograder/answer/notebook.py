"""Read a notebook as plain JSON and find its parts: its code cells (read once, with their
nbgrader roles), solution cells, points.

Only the standard library: the engine must work where nbformat is not installed. Every problem
with the file becomes a `NotebookError` whose message is one line a student can act on.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 << 20
#: What a notebook's JSON may hold, counted before it is parsed (`check_shape`): Jupyter's own
#: notebooks hold far less (a cell is a few objects; its lines and outputs are strings), and a
#: notebook past these, under the size cap, is an attack: 7 million empty lists in its metadata
#: held nbgrader's steps for minutes at 4 GB.
MAX_DEPTH = 100  # lists and objects inside each other
MAX_CONTAINERS = 100_000  # lists and objects
MAX_VALUES = 4_000_000  # strings (keys too), numbers, true, false, null, lists and objects


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
        raise NotebookError(folder_error(path) if stat.S_ISDIR(info.st_mode)
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


def folder_error(path: Path) -> str:
    """'homework is a folder, not a notebook (it holds backward.ipynb)': the notebooks in it."""
    try:
        inside = sorted(p.name for p in path.iterdir() if p.suffix == ".ipynb")
    except OSError:
        inside = []
    shown = ", ".join(inside[:3]) + (", ..." if len(inside) > 3 else "")
    return f"{path} is a folder, not a notebook" + (f" (it holds {shown})" if inside else "")


#: Files a student may give instead of the notebook (Jupyter's "Save and Export Notebook As"
#: writes most of them), by their suffix: what each is.
EXPORTS = {".py": "a Python file", ".html": "a web page (HTML)", ".pdf": "a PDF",
           ".md": "a Markdown file"}


def parse_notebook(raw: bytes | str, name: str = "the notebook") -> dict:
    """`raw` as a notebook; a `NotebookError` says what the file is where it is none: empty, an
    export of the notebook (by `name`'s suffix), JSON without cells, text that is not JSON, JSON
    past the limits on its shape (`check_shape`, before anything of its size is built)."""
    try:
        text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw),
                                                              "surrogatepass")
        check_shape(text, name)
        nb = json.loads(text)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, NotebookError):
            raise
        suffix = os.path.splitext(name)[1].lower()
        if suffix in EXPORTS:
            raise NotebookError(f"{name} is {EXPORTS[suffix]}, not a notebook: give the notebook "
                                "itself, the .ipynb file") from None
        if not raw.strip():
            raise NotebookError(f"{name} is empty, not a notebook (was it saved?)") from None
        line = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotebookError(f"{name} is not a notebook: it is not valid JSON{line}") from None
    validate(nb, name)
    return nb


#: A JSON string once its escaped backslashes and quotes are gone (`check_shape`).
QUOTED = re.compile(r'"[^"]*"')
BRACKET = re.compile(r"[][{}]")


def check_shape(text: str, name: str = "the notebook") -> None:
    """Raise a `NotebookError` where the JSON `text` holds more than `MAX_VALUES` values, more
    than `MAX_CONTAINERS` lists and objects, or nests them deeper than `MAX_DEPTH`, before
    `json.loads` builds anything: counted on the text, by `str.count` and one pass of the
    regular-expression engine over it, then one loop over its brackets (at most
    `MAX_CONTAINERS` of them). Exact for JSON (an empty list or object aside), and bounds
    what `json.loads` would read of a broken text before it stops."""
    # In JSON a backslash is only ever in a string, and starts an escape: taking out its pairs
    # (\\) from the left, then escaped quotes, leaves each quote one that opens or closes.
    plain = text.replace("\\\\", "").replace('\\"', "")
    if plain.count('"') // 2 > MAX_VALUES:
        raise NotebookError(_too_many(name, f"{MAX_VALUES:,} values"))
    bare = QUOTED.sub("", plain)  # the JSON without its strings
    del plain
    opened = bare.count("[") + bare.count("{")
    if opened > MAX_CONTAINERS:
        raise NotebookError(_too_many(name, f"{MAX_CONTAINERS:,} lists and objects"))
    # After the first, each value (an object's keys too) comes after a comma, a colon or the
    # bracket that opens its list or object: exact, but for one too many per empty one.
    if 1 + bare.count(",") + bare.count(":") + opened > MAX_VALUES:
        raise NotebookError(_too_many(name, f"{MAX_VALUES:,} values"))
    if opened != bare.count("]") + bare.count("}"):
        return  # not JSON: json.loads says where, having read no more than was counted
    depth = 0
    for bracket in BRACKET.finditer(bare):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise NotebookError(_too_many(name, f"{MAX_DEPTH} lists and objects inside each "
                                                "other"))


def _too_many(name: str, what: str) -> str:
    return f"{name} holds more than {what}, far more than a notebook does: it is not read"


def validate(nb: object, name: str = "the notebook") -> None:
    if not isinstance(nb, dict):
        raise NotebookError(f"{name} is not a notebook: it is JSON but not an object with cells")
    if "worksheets" in nb or nb.get("nbformat", 4) != 4:
        raise NotebookError(f"{name} uses nbformat {nb.get('nbformat')}: open it in Jupyter, "
                            "save it, and submit again (version 4 is needed)")
    cells = nb.get("cells")
    if "cells" not in nb:
        raise NotebookError(f"{name} is not a notebook: it is JSON, but has no cells")
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


@dataclass(frozen=True)
class CodeCell:
    """A code cell as the notebook holds it, read once: where it is, its text, its nbgrader role."""

    index: int  # its place among all the notebook's cells
    source: str
    grade_id: str | None
    solution: bool  # a cell the student writes (nbgrader's solution cell)
    test: bool  # a grade cell the student does not write (`is_grade_cell`): never run


def code_cells(nb: dict) -> list[CodeCell]:
    """The notebook's code cells, in order: one pass over a (validated) notebook."""
    found = []
    for i, c in enumerate(nb["cells"]):
        if c.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(c)
        grade_id = meta.get("grade_id")
        found.append(CodeCell(i, source(c), grade_id if isinstance(grade_id, str) else None,
                              bool(meta.get("solution")), is_grade_cell(c)))
    return found


def answer_cells(cells: list[CodeCell], targets: tuple[str, ...]) -> dict[str, CodeCell]:
    """For each target, its solution cell (the first code cell whose grade_id is the target)."""
    found: dict[str, CodeCell] = {}
    for c in cells:
        if c.grade_id in targets:
            found.setdefault(c.grade_id, c)
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
