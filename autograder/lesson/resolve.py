"""The one place that says how many points a target is worth and which seed a run draws from.

Used alike by the in-notebook self-check, `autograder check`, `autograder grade`, the nbgrader
preprocessor and Gradescope: they differ only in where the notebook comes from, which runner runs
it and where the report goes. Standard library only.
"""

from __future__ import annotations

import hashlib
import secrets

from ..answer import notebook
from .model import Lesson


def points(lesson: Lesson, *, gradebook: dict[str, float] | None = None,
           source: dict | None = None, nb: dict | None = None) -> dict[str, float]:
    """Points per target. First found: a course's gradebook (where nbgrader keeps what the
    instructor released), the lesson's source notebook's grade cells (where an instructor edits
    them), the notebook's own (a student's install without the source), lesson.toml's."""
    found = lesson.default_points()
    if gradebook:
        return {**found, **gradebook}
    if source is None and lesson.source_path.is_file():
        source = notebook.read_notebook(lesson.source_path)
    if source is not None:
        found.update(notebook.points(source, lesson))
    elif nb is not None:
        found.update(notebook.points(nb, lesson))
    return found


def fresh_seed() -> int:
    return secrets.randbits(31)


def student_seed(course_seed: int, student: str) -> int:
    """The seed of a student's inputs: fixed for a course and student, unknown to the student."""
    digest = hashlib.blake2b(f"{course_seed}:{student}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def seed(lesson: Lesson, run: str, *, given: int | None = None, course_seed: int | None = None,
         student: str | None = None) -> int:
    """The seed of a run: "self-check", the lesson's (the same every time, in every kernel);
    "check", `given` (`--seed`) or a fresh one, so that an answer hard-coded for known inputs
    fails; "grade", the course's secret seed with the student id, so that a regrade repeats them."""
    if run == "self-check":
        return lesson.self_check_seed
    if run == "check":
        return fresh_seed() if given is None else given
    if run == "grade":
        if course_seed is None or student is None:
            raise ValueError("a grade's seed needs the course's seed and the student")
        return student_seed(course_seed, student)
    raise ValueError(f"unknown run {run!r}")
