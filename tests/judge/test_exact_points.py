"""Issue 34, items 5 and 8 ("Lessons an instructor writes").

5. Exact points: check weights that do not divide a target's points evenly (2, 3 and 4 of 1
   point: 2/9, 3/9, 4/9) never give a perfect answer 0.999999 of 1. The shares are kept as
   fractions and rounded once, so a perfect answer earns its target's maximum exactly, in
   `check --json`, in the gradebook and in grades.csv.
8. `autograder demo` exits non-zero, naming the lesson and the student, when a sample's grading
   is "the grader failed" (here a lesson whose `prepare` hook raises), after its whole table.

The lesson is written here, in a few lines, as an author would: the gradient of tanh.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.judge.outcome import UntrustedRun
from autograder.judge.plan import build_plan
from autograder.judge.scoring import judge_target
from autograder.lesson import model as lessons
from autograder.present.report import Report
from tests.conftest import run_cli
from tests.support import tanh

RIGHT = tanh.RIGHT


def checks(*weights: int) -> str:
    """A target's own checks, of the given weights, each on the right values of one case."""
    return "[" + ", ".join(
        f'{{ name = "values-{i}", weight = {w}, kind = "values", '
        f'summary = "right values ({i})", cases = [{{ n = {3 + i}, n_out = {2 + i} }}] }}'
        for i, w in enumerate(weights)) + "]"


def lesson_toml(points: float, weights: tuple[int, ...]) -> str:
    return tanh.toml(points, checks(*weights))


LESSON_PY = '''
import torch

from autograder.lesson_api import LessonCode


def tanh(inp):
    return torch.tanh(inp)


class Tanh(LessonCode):
    pass
'''

#: A hook that fails every grading: the grader's own failure, not the student's.
BROKEN_HOOK = '''
    def prepare(self, target, inputs, case):
        raise RuntimeError("this lesson's prepare hook is broken")
'''


def write_lesson(root: Path, points: float, weights: tuple[int, ...], broken: bool = False,
                 ) -> Path:
    """The lesson in `root/tanh/`, its reference and sample class (one right answer) in
    `root/../solutions/tanh/`."""
    return tanh.write(root, lesson_toml(points, weights),
                      LESSON_PY.replace("    pass\n", BROKEN_HOOK) if broken else LESSON_PY,
                      points, samples=f"CORRECT = {{'tanh_grad': {RIGHT!r}}}\n"
                                      "CLASS = {'ada': ({}, [])}\n")


@pytest.mark.parametrize("points, weights", [(1, (2, 3, 4)), (4, (2, 3, 4)),
                                             (4, (4, 2, 1, 1, 1)), (0.1, (1, 1, 1))])
def test_a_perfect_target_earns_its_points_exactly_whatever_the_weights(tmp_path, points, weights):
    lesson = lessons.load(write_lesson(tmp_path / "lessons", points, weights))
    plan = build_plan(lesson, seed=1)
    # Every call judged right (no verdict against it): a perfect answer.
    results = judge_target("tanh_grad", plan, UntrustedRun(), {}, points)
    assert len(results) == len(weights) + 1 and all(r.passed for r in results)  # + the gate
    report = Report(results)
    assert report.target_score("tanh_grad") == (points, points)
    assert (report.score, report.max_score) == (points, points)


@pytest.mark.sandbox
def test_check_json_gives_a_perfect_answer_its_maximum_exactly(tmp_path, monkeypatch):
    write_lesson(tmp_path / "lessons", 1, (2, 3, 4))
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    nbformat.write(tanh.notebook(RIGHT, 1), tmp_path / "right.ipynb")
    done = run_cli("check", str(tmp_path / "right.ipynb"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["score"], report["max_score"]) == (1, 1)
    assert sorted(c["max_points"] for c in report["checks"]) == [0, 2 / 9, 3 / 9, 4 / 9]


@pytest.mark.slow
@pytest.mark.sandbox
def test_grade_gives_a_perfect_answer_its_maximum_exactly_in_grades_csv(tmp_path, monkeypatch):
    from autograder.course import samples
    from autograder.course.release import release

    write_lesson(tmp_path / "lessons", 1, (2, 3, 4))
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    course = tmp_path / "course"
    released = json.loads(release(course, assignment="tanh")[0].read_text())
    samples.write_class(released, course, lessons.find("tanh", course))  # ada: right
    done = run_cli("grade", "--course", str(course), "--workers", "1")
    assert done.returncode == 0, done.stderr
    with (course / "grades.csv").open(newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == "tanh"}
    assert (float(rows["ada"]["score"]), float(rows["ada"]["max_score"])) == (1, 1)
    done = run_cli("report", "--course", str(course), "--assignment", "tanh")
    assert done.returncode == 0, done.stderr
    assert re.search(r"tanh_grad\W+1 / 1\W+1 of 1\W", done.stdout), done.stdout  # mean, full marks


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_demo_exits_non_zero_naming_a_grading_that_failed(tmp_path, monkeypatch):
    write_lesson(tmp_path / "lessons", 1, (2, 3, 4), broken=True)
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    done = run_cli("demo", str(tmp_path / "demo"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "the grader failed: RuntimeError" in done.stdout  # the table is whole
    assert "class report:" in done.stdout  # and what follows it
    assert done.stderr.strip().splitlines()[-1] == (
        "autograder: the grader failed on tanh/ada: see the table above")
