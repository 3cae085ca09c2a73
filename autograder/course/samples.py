"""Student notebooks made from the released one: a lesson's sample class (solutions/<id>/
samples.py, for the demo), and the tests' cases.

`fill(released, answers)` puts code into the solution cells, as a student would, leaving every
other cell as released.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType

from ..answer import notebook
from ..lesson.model import Lesson, LessonError, load_module


def fill(released: dict, answers: dict[str, str], extra_cells: list[str] = ()) -> dict:
    """A copy of `released` with the solution cell of each target in `answers` replaced.

    `extra_cells` are appended as plain code cells (a student's experiments, or an attack).
    """
    nb = copy.deepcopy(released)
    for cell in nb["cells"]:
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        if grade_id in answers and notebook.nbgrader_meta(cell).get("solution"):
            cell["source"] = answers[grade_id]
    for source in extra_cells:
        nb["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None,
                            "outputs": [], "source": source})
    return nb


def write(nb: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


def of(lesson: Lesson) -> ModuleType:
    """The lesson's sample class (samples.py in its solutions folder: `CORRECT` answers and a
    `CLASS`)."""
    path = lesson.solutions / "samples.py"
    if not path.is_file():
        raise LessonError(f"lesson {lesson.id} has no sample class ({path})")
    return load_module(path, f"autograder_samples_{lesson.id}")


def write_class(released: dict, course: str | Path, lesson: Lesson,
                members: dict | None = None) -> list[str]:
    """Write a class into `course/submitted/<student>/<lesson>/<notebook>`: the lesson's sample
    class, or `members` (each answer over the lesson's right ones)."""
    sample_class = of(lesson)
    members = sample_class.CLASS if members is None else members
    for student, sample in members.items():
        path = Path(course) / "submitted" / student / lesson.id / lesson.notebook
        if isinstance(sample, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sample)
        else:
            answers, extra = sample
            write(fill(released, {**sample_class.CORRECT, **answers}, extra), path)
    return list(members)
