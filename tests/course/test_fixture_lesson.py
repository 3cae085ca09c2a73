"""A lesson written from `autograder new-lesson` and docs/lessons.md alone, through a term (issue
34, "Done when").

The lesson is the tests' own, not in assignments/: tests/fixtures/lessons/softplus/ (its
solutions in tests/fixtures/solutions/softplus/), the gradient of softplus, with a check of its
own (inputs in the thousands, where a bare exp overflows), a `prepare` hook and two typical
mistakes named by its hooks. It is released into a fresh course by the command, a class hands
in (its sample class and the released stub), and `grade` gives a right answer exactly the
maximum in grades.csv, the overflow part credit, the stubs 0. A student who fetched the release
folder runs its self-check in a real kernel there, with no lesson installed. Then, after the
hand-ins, the instructor changes a check's weight and releases again: the regrade uses it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.course import samples
from autograder.lesson import model as lessons
from tests.conftest import REPO, run_cli
from tests.course.test_course import csv_rows

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ID = "softplus"
FIXTURES = REPO / "tests" / "fixtures"
#: What the class scores: 3 points; the overflow fails the large-inputs check alone, of weight 2
#: of 12 (the others' weights: 4, 2, 2, 1, 1).
SCORES = {"right": "3.0", "written_out": "3.0", "overflows": "2.5", "uses_output": "0.0",
          "stub": "0.0", "as_released": "0.0"}


def write_lesson(root: Path) -> Path:
    """The fixture as an instructor keeps it: `root/lessons/softplus`, `root/solutions/softplus`."""
    shutil.copytree(FIXTURES / "solutions" / ID, root / "solutions" / ID)
    return shutil.copytree(FIXTURES / "lessons" / ID, root / "lessons" / ID)


def grade(course: Path) -> dict[str, tuple[str, str]]:
    done = run_cli("grade", "--course", str(course), "--workers", "1")
    assert done.returncode == 0, done.stderr
    return {s: (row["score"], row["max_score"])
            for s, row in csv_rows(course / "grades.csv", ID).items()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, dict]:
    """(a fresh course where the lesson was released and its class graded, the scores)."""
    root = tmp_path_factory.mktemp("instructor")
    folder = write_lesson(root)
    course = root / "course"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_LESSONS", str(folder.parent))
        done = run_cli("release", "--course", str(course), "--assignment", ID, "--no-exchange")
    released = course / "release" / ID / f"{ID}.ipynb"
    assert (done.returncode, done.stdout) == (0, f"released: {released}\n"), done.stderr
    nb = json.loads(released.read_text())
    samples.write_class(nb, course, lessons.load(folder))
    samples.write(nb, course / "submitted" / "as_released" / ID / f"{ID}.ipynb")
    return course, grade(course)  # no AUTOGRADER_LESSONS: grading reads the course's copy


def test_right_is_exactly_the_maximum_a_typical_mistake_part_and_stubs_0(graded):
    course, scores = graded
    assert scores == {student: (score, "3.0") for student, score in SCORES.items()}
    done = run_cli("report", "--course", str(course), "--assignment", ID)
    assert done.returncode == 0, done.stderr
    with (course / "reports" / ID / "mistakes.csv").open() as f:
        mistakes = {row["student_id"]: row["mistakes"] for row in csv.DictReader(f)}
    assert "softplus_grad.overflows" in mistakes["overflows"]  # the lesson's own words
    assert "softplus_grad.uses_output" in mistakes["uses_output"]
    assert "softplus_grad.not_implemented" in mistakes["as_released"]


def run_in_kernel(nb: nbformat.NotebookNode, folder: Path) -> str:
    """The notebook run in a real Jupyter kernel in `folder`: what its last cell printed (an
    error's name and value appended)."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    out = nb.cells[-1].outputs
    return "".join(o.get("text", "") for o in out) + "".join(
        f"{o.ename}: {o.evalue}" for o in out if o.output_type == "error")


def test_a_student_self_checks_from_the_fetched_folder_alone(graded, tmp_path, monkeypatch):
    course, _ = graded
    fetched = shutil.copytree(course / "release" / ID, tmp_path / "student" / ID)
    assert {p.name for p in fetched.iterdir()} == {f"{ID}.ipynb", "lesson.py", "lesson.toml"}
    secret = [p.read_bytes() for p in (FIXTURES / "solutions" / ID).iterdir()]
    assert not [p for p in fetched.iterdir() if p.read_bytes() in secret]
    monkeypatch.delenv("AUTOGRADER_LESSONS", raising=False)  # the student's install: no softplus

    released = nbformat.read(fetched / f"{ID}.ipynb", as_version=4)
    right = samples.fill(released, samples.of(lessons.load(FIXTURES / "lessons" / ID)).CORRECT)
    said = run_in_kernel(nbformat.from_dict(right), fetched)
    assert said.startswith("softplus_grad: all 7 checks pass\n"), said
    assert "Error" not in said, said
    said = run_in_kernel(released, fetched)  # the stub, as fetched
    assert "self-check failed: softplus_grad" in said and "NotImplementedError" in said, said


def test_a_changed_weight_after_the_hand_ins_is_released_and_regraded(graded, tmp_path,
                                                                       monkeypatch):
    course = shutil.copytree(graded[0], tmp_path / "course")
    folder = write_lesson(tmp_path)
    spec = folder / "lesson.toml"
    text = spec.read_text()
    large = text.index('name = "large-inputs"')
    assert text[large:].startswith('name = "large-inputs"\nweight = 2\n')
    spec.write_text(text[:large] + text[large:].replace("weight = 2", "weight = 6", 1))
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(folder.parent))

    done = run_cli("release", "--course", str(course), "--assignment", ID, "--no-exchange")
    assert (done.returncode, done.stdout) == (
        0, f"released: {course / 'release' / ID / f'{ID}.ipynb'}\n"), done.stderr
    for copy in (course / "lessons" / ID, course / "release" / ID):
        assert (copy / "lesson.toml").read_bytes() == spec.read_bytes()  # students fetch it too

    monkeypatch.delenv("AUTOGRADER_LESSONS")  # grading reads the course's copy alone
    scores = grade(course)
    assert scores == {**{s: (score, "3.0") for s, score in SCORES.items()},
                      "overflows": ("1.875", "3.0")}  # 3 x 10/16: the large inputs weigh 6
