"""A released lesson, changed by its instructor, released again (issue 34, items 1 and 2).

A lesson of the course's own (assignments/backward copied under another id, `bwcopy`, on
AUTOGRADER_LESSONS, as an instructor keeps one) is released, one student hands in and is graded.
Then: a tolerance and a grade cell's points change, and the next `grade` uses them; a cell is
added after that submission, and nbgrader's refusal is one line, the course left byte for byte
as it was; and a student who fetched the release folder self-checks the lesson from it alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.course import samples
from autograder.course.release import release
from autograder.lesson import model as lessons
from autograder.selfcheck import run_self_check
from tests.conftest import REPO, run_cli
from tests.course.test_course import csv_rows

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ID = "bwcopy"
#: Right but for a relative error of 1e-6: wrong at float64's 1e-9, right at 1e-3.
NEAR = ("def mse_grad(inp, targ):\n"
        "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0] * (1 + 1e-6)\n")


def write_lesson(root: Path) -> Path:
    """assignments/backward as a lesson of the instructor's own, `bwcopy`, in `root/lessons/`
    (its solutions in `root/solutions/`)."""
    folder = shutil.copytree(REPO / "assignments" / "backward", root / "lessons" / ID)
    shutil.copytree(REPO / "solutions" / "backward", root / "solutions" / ID)
    spec = folder / "lesson.toml"
    spec.write_text(spec.read_text().replace('id = "backward"', f'id = "{ID}"'))
    return folder


@pytest.fixture(scope="module")
def handed_in(tmp_path_factory) -> tuple[Path, Path]:
    """(the lesson's folder, a course where it was released and one student's hand-in graded)."""
    root = tmp_path_factory.mktemp("instructor")
    folder = write_lesson(root)
    course = root / "course"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_LESSONS", str(root / "lessons"))
        released = json.loads(release(course, assignment=ID)[0].read_text())
        samples.write_class(released, course, lessons.load(folder),
                            {"ann": ({"mse_grad": NEAR}, [])})
    done = run_cli("grade", "--course", str(course), "--workers", "1")
    assert done.returncode == 0, done.stderr
    return folder, course


@pytest.fixture
def update(handed_in, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(a copy of the lesson the instructor edits, a copy of the course), the lesson found on
    AUTOGRADER_LESSONS as `release` finds it."""
    folder = write_lesson(tmp_path)
    course = shutil.copytree(handed_in[1], tmp_path / "course")
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    return folder, course


def ann(course: Path) -> tuple[float, float]:
    row = csv_rows(course / "grades.csv", ID)["ann"]
    return float(row["score"]), float(row["max_score"])


def with_points(nb: nbformat.NotebookNode, grade_id: str, points: float) -> None:
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.metadata.nbgrader.points = points


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_changed_tolerance_and_points_reach_the_course_and_the_next_grade(update, monkeypatch):
    folder, course = update
    before = ann(course)
    assert before[0] < before[1]  # 1e-6 off: wrong at float64's tolerance
    spec = folder / "lesson.toml"
    spec.write_text(spec.read_text().replace("float64 = 1e-9", "float64 = 1e-3"))
    nb = nbformat.read(folder / "backward.ipynb", as_version=4)
    with_points(nb, "check_mse_grad", 5)
    nbformat.write(nb, folder / "backward.ipynb")

    done = run_cli("release", "--course", str(course), "--assignment", ID, "--no-exchange")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"released: {course / 'release' / ID / 'backward.ipynb'}\n"
    for copy in (course / "lessons" / ID / "lesson.toml", course / "source" / ID / "lesson.toml",
                 course / "release" / ID / "lesson.toml"):
        assert copy.read_bytes() == spec.read_bytes(), copy
    assert (course / "source" / ID / "backward.ipynb").read_bytes() == \
        (folder / "backward.ipynb").read_bytes()

    monkeypatch.delenv("AUTOGRADER_LESSONS")  # grading reads the course's copy alone
    done = run_cli("grade", "--course", str(course), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert ann(course) == (before[1] + 3, before[1] + 3)  # 5 points, not 2, and all of them

    monkeypatch.setenv("AUTOGRADER_LESSONS", str(folder.parent))
    done = run_cli("release", "--course", str(course), "--assignment", ID, "--no-exchange")
    assert (done.returncode, done.stdout) == (0, f"unchanged: {course / 'release' / ID / 'backward.ipynb'}\n")


def test_a_cell_added_after_a_submission_is_refused_and_the_course_is_as_it_was(update):
    folder, course = update
    nb = nbformat.read(folder / "backward.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("A note added mid-term.", metadata={
        "nbgrader": {"schema_version": 3, "grade": False, "solution": False, "locked": True,
                     "grade_id": "mid_term_note"}}))
    nbformat.write(nb, folder / "backward.ipynb")
    spec = folder / "lesson.toml"
    spec.write_text(spec.read_text().replace("float64 = 1e-9", "float64 = 1e-3"))
    before = tree(course)

    done = run_cli("release", "--course", str(course), "--assignment", ID, "--no-exchange")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert ("Cannot add or remove cells for notebook 'backward' because there are submissions "
            "associated with it") in done.stderr
    assert "release it under a new id" in done.stderr  # what to do
    assert tree(course) == before


def test_a_student_self_checks_the_lesson_from_the_fetched_folder(handed_in, tmp_path,
                                                                   monkeypatch):
    course = handed_in[1]
    fetched = shutil.copytree(course / "release" / ID, tmp_path / "student" / ID)
    assert sorted(p.name for p in fetched.rglob("*")) == ["backward.ipynb", "lesson.py",
                                                          "lesson.toml"]
    solutions = [p.read_bytes() for p in (REPO / "solutions" / "backward").iterdir() if p.is_file()]
    assert not [p for p in fetched.rglob("*") if p.read_bytes() in solutions]

    monkeypatch.delenv("AUTOGRADER_LESSONS", raising=False)  # the student's install knows no bwcopy
    monkeypatch.chdir(fetched)  # a notebook's kernel runs in the notebook's folder
    answer = samples.of(lessons.load(REPO / "assignments" / "backward")).CORRECT["mse_grad"]
    namespace: dict = {}
    exec("import torch\n" + answer, namespace)
    report = run_self_check("mse_grad", namespace["mse_grad"], device="cpu", lesson=ID)
    assert report.lesson == ID and report.passed

    monkeypatch.chdir(tmp_path)  # nothing beside the notebook: the error says what to do
    with pytest.raises(lessons.LessonError, match=r"^no lesson 'bwcopy' here: the lessons are "
                       r"backward, classifier \(fetch the assignment again, or ask your "
                       r"instructor\)$"):
        run_self_check("mse_grad", namespace["mse_grad"], device="cpu", lesson=ID)
