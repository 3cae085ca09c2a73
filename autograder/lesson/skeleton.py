"""`autograder new-lesson ID`: a working lesson to start from, in the two folders a lesson is.

    INTO/ID/                  what students and the engine read
        lesson.toml, lesson.py, ID.ipynb (nbgrader's source notebook: a solution, the self-check)
    INTO/../solutions/ID/     what only an instructor may see
        reference.py, samples.py

INTO is `assignments/` by default: in a checkout, a lesson beside the bundled ones; elsewhere, a
folder to name on AUTOGRADER_LESSONS (`model.search_path`), from which `release` copies it into a
course. The example is one target, the gradient of square, which releases, self-checks, `check`s
and grades as it is written (the reference full marks, the stub 0); docs/lessons.md, "Start a new
lesson", says what to change. The files are `template/*.tmpl`, with the id put in.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from . import model

TEMPLATE = Path(__file__).resolve().parent / "template"
#: The word of the templates that stands for the lesson's id.
PLACEHOLDER = "LESSON_ID"
#: An id: nbgrader's assignment name, the lesson's folder and notebook, a Python string.
ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
#: The lesson's files, from their templates (the notebook's name is the id's).
LESSON_FILES = {"lesson.toml": "lesson.toml.tmpl", "lesson.py": "lesson.py.tmpl",
                "{id}.ipynb": "notebook.ipynb.tmpl"}
SOLUTION_FILES = {"reference.py": "reference.py.tmpl", "samples.py": "samples.py.tmpl"}
DEFAULT_INTO = Path("assignments")


class SkeletonError(ValueError):
    """The lesson cannot be written; the message says why in one line."""


def folders(lesson_id: str, into: str | Path = DEFAULT_INTO) -> tuple[Path, Path]:
    """(the lesson's folder, its solutions folder) for `lesson_id` in `into`."""
    lesson = Path(into).resolve() / lesson_id
    return lesson, model.solutions_folder(lesson)


def write(lesson_id: str, into: str | Path = DEFAULT_INTO) -> tuple[Path, Path]:
    """Write the skeleton lesson `lesson_id` into `into` (its solutions beside, in
    `into/../solutions/`); return its two folders. `SkeletonError` (one line, nothing written)
    for an id that cannot be one, a lesson this install carries, or a folder already there."""
    if not ID.fullmatch(lesson_id):
        raise SkeletonError(f"{lesson_id!r} is no lesson id: a letter, then letters, digits, _ "
                            "or - (at most 64)")
    if (model.BUNDLED / lesson_id / model.SPEC).is_file():
        raise SkeletonError(f"{lesson_id!r} is a lesson this install carries "
                            f"({model.BUNDLED / lesson_id}): choose another id")
    lesson, solutions = folders(lesson_id, into)
    for folder in (lesson, solutions):
        if folder.exists() or folder.is_symlink():
            raise SkeletonError(f"{folder} exists already: choose another id, or move it away")
    made = []
    try:
        for folder, files in ((lesson, LESSON_FILES), (solutions, SOLUTION_FILES)):
            folder.mkdir(parents=True)
            made.append(folder)
            for name, template in files.items():
                text = (TEMPLATE / template).read_text(encoding="utf-8")
                (folder / name.format(id=lesson_id)).write_text(
                    text.replace(PLACEHOLDER, lesson_id), encoding="utf-8")
    except OSError as exc:
        for folder in made:  # nothing half-written is left
            shutil.rmtree(folder, ignore_errors=True)
        raise SkeletonError(f"cannot write lesson {lesson_id}: {exc}") from None
    return lesson, solutions
