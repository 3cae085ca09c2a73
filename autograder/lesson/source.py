"""The lesson's source notebook agrees with its lesson.toml: each target has its answer cell (a
code cell whose nbgrader grade_id is the target's name), else the author's own solution would
score 0 for it. Checked where the source notebook is read to be released (`course.release`);
a student's copy of the notebook is never held to it.
"""

from __future__ import annotations

from ..answer import notebook
from .model import SPEC, Lesson
from .spec_keys import nearest


def answer_cells_error(lesson: Lesson) -> str | None:
    """One line naming the source notebook, the target with no answer cell and the cell's
    grade_id it could be (a solution cell that is no target); None where every target has one."""
    path = lesson.source_path
    cells = notebook.code_cells(notebook.read_notebook(path))
    ids = {c.grade_id for c in cells if c.grade_id}
    missing = [t for t in lesson.names if t not in ids]
    if not missing:
        return None
    others = [c.grade_id for c in cells if c.solution and c.grade_id and c.grade_id not in lesson.names]
    for cell in others:
        near = nearest(cell, missing)
        if near:
            return (f"{path}: the answer cell {cell!r} is no target of {lesson.folder / SPEC}"
                    f"{near}: its targets are {', '.join(lesson.names)}")
    return (f"{path} has no answer cell for target {missing[0]!r} of {lesson.folder / SPEC} (a "
            f"code cell whose grade_id is {missing[0]!r})"
            + (f"; its answer cells that are no target: {', '.join(others)}" if others else ""))
