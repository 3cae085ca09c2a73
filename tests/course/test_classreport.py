"""`autograder report`: the class report's page and CSV from a graded class, and its reader of
the kept reports (a file in the course folder is read, never trusted)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from nbgrader.api import Gradebook

from autograder.course import classreport
from tests.conftest import run_cli
from tests.course.test_course import BROKEN, GRADED, ODD, STUDENTS, graded  # noqa: F401 - the shared class

TARGETS = ["mse_grad", "relu_grad", "lin_grad", "module_backward"]


def report_of(course: Path) -> tuple[str, dict[tuple[str, str], dict], str]:
    """`autograder report` as an instructor runs it: (the page's text, CSV rows by (student,
    target), stdout)."""
    done = run_cli("report", "--course", str(course))
    assert done.returncode == 0, done.stderr
    folder = course / "reports" / "backward"
    text = BeautifulSoup((folder / "index.html").read_text(), features="html.parser").get_text()
    with (folder / "mistakes.csv").open() as f:
        rows = {(r["student_id"], r["target"]): r for r in csv.DictReader(f)}
    return text, rows, done.stdout


@pytest.fixture(scope="module")
def reported(graded, tmp_path_factory):  # noqa: F811 - the fixture imported above
    course = Path(shutil.copytree(graded[0], tmp_path_factory.mktemp("report") / "course"))
    return course, *report_of(course)


@pytest.mark.slow
def test_grade_points_to_the_class_report(graded):  # noqa: F811
    course, stdout = graded
    assert f"autograder report --course {course}" in stdout


@pytest.mark.slow
def test_the_csv_has_a_row_per_student_and_target_with_the_gradebooks_scores(reported):
    course, _, rows, _ = reported
    assert set(rows) == {(s, t) for s in STUDENTS for t in TARGETS}
    with (course / "reports" / "backward" / "mistakes.csv").open() as f:
        assert next(csv.reader(f)) == ["student_id", "target", "score", "max_score", "mistakes",
                                       "note"]
    bob = rows["bob", "mse_grad"]
    assert (bob["score"], bob["max_score"]) == ("0", "2")
    assert "mse_grad.missing_factor_2" in bob["mistakes"].split() and bob["note"] == ""
    assert rows["bob", "lin_grad"]["score"] == "3" and rows["bob", "lin_grad"]["mistakes"] == ""
    assert all(rows[s, t]["mistakes"] == "" for s in ("alice", "carl", "twin") for t in TARGETS)
    for student, (_, word) in BROKEN.items():
        row = rows[student, "mse_grad"]
        assert row["score"] == "0" and row["note"].startswith("not graded: ") and word in row["note"]
    for student, word in ODD.items():
        assert word in rows[student, "lin_grad"]["note"]


@pytest.mark.slow
def test_the_page_shows_the_mistake_its_message_and_who_made_it(reported):
    course, text, _, stdout = reported
    page = (course / "reports" / "backward" / "index.html").read_text()
    for student in STUDENTS:
        assert student in text
    for target in TARGETS:
        assert target in text
    assert "mse_grad.missing_factor_2" in text and "inp.g is half of the true gradient" in text
    assert f"{len(STUDENTS)} handed in: {len(GRADED)} graded" in text
    assert "not valid JSON" in text and "nbformat 3" in text  # who could not be graded, and why
    assert page.count('src="data:image/png;base64,') == 3  # per target, totals, mistakes
    assert "mse_grad.missing_factor_2" in stdout and "bob" in stdout and "index.html" in stdout


@pytest.mark.slow
def test_a_kept_report_that_is_not_one_is_one_line_on_the_page(graded, tmp_path):  # noqa: F811
    course = Path(shutil.copytree(graded[0], tmp_path / "course"))
    kept = course / "reports" / "backward" / "students"
    (kept / "bob.json").write_text('{"format": 1, "student": "bob", "report": {"checks": 3}}')
    os.unlink(kept / "alice.json")
    os.symlink(kept / "carl.json", kept / "alice.json")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:  # as if regraded
        gb.find_grade("check_mse_grad", "backward", "backward", "carl").auto_score = 1.0
        gb.db.commit()
    text, rows, stdout = report_of(course)
    assert "carl: its kept report does not give the gradebook's automatic scores" in text
    assert "bob: reports/backward/students/bob.json is not a report of `autograder grade`" in text
    assert "alice: reports/backward/students/alice.json is a link" in text
    assert rows["bob", "mse_grad"]["score"] == "0" and rows["bob", "mse_grad"]["mistakes"] == ""
    assert "Traceback" not in stdout


@pytest.mark.sandbox
def test_report_outside_a_course_is_one_line(tmp_path):
    done = run_cli("report", "--course", str(tmp_path))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "not a course" in done.stderr


CHECK = {"id": "mse_grad/values-float64", "target": "mse_grad", "passed": False, "points": 0.0,
         "max_points": 1.0, "message": "inp.g is half", "mistakes": ["mse_grad.missing_factor_2"]}


def kept(**report) -> dict:
    return {"format": 1, "student": "bob", "assignment": "backward", "reason": None,
            "report": {"checks": [CHECK], **report}}


@pytest.mark.parametrize("data, says", [
    ([1], "not an object"),
    ({**kept(), "student": "alice"}, "another student's"),
    ({**kept(), "reason": "not JSON"}, "neither a report nor a reason, or both"),
    (kept(checks=[{**CHECK, "points": float("nan")}]), "points is not a number"),
    (kept(checks=[{**CHECK, "points": 2.0}]), "between 0 and max_points"),
    (kept(checks=[{**CHECK, "passed": "yes"}]), "passed is not true or false"),
    (kept(checks=[{**CHECK, "mistakes": ["<script>"]}]), "not a short list of codes"),
    (kept(checks=[{**CHECK, "message": "x" * 5000}]), "message is not a short text"),
    (kept(checks=[CHECK] * 1001), "at most 1000"),
])
def test_the_reader_checks_every_field(data, says):
    with pytest.raises(classreport.Unreadable, match=says):
        classreport.parse_kept(data, "backward", "bob")


def test_the_reader_reads_what_grade_keeps_and_refuses_what_is_not_json(tmp_path):
    from autograder.present.report import CheckResult, Report

    report = Report([CheckResult(**CHECK)], notes=["sandbox: pid namespace"])
    classreport.keep(tmp_path, "backward", "bob", report, None)
    got = classreport.read_kept(tmp_path, "backward", "bob")
    assert got.reason is None and got.checks[0].mistakes == ("mse_grad.missing_factor_2",)
    classreport.keep(tmp_path, "backward", "zoe", None, "not a notebook")
    assert classreport.read_kept(tmp_path, "backward", "zoe").reason == "not a notebook"
    assert classreport.read_kept(tmp_path, "backward", "nobody") is None
    path = tmp_path / "reports" / "backward" / "students" / "bob.json"
    path.write_text("[" * 100_000)
    with pytest.raises(classreport.Unreadable, match="is not JSON"):
        classreport.read_kept(tmp_path, "backward", "bob")
    path.write_bytes(b" " * (classreport.MAX_KEPT_BYTES + 1))
    with pytest.raises(classreport.Unreadable, match="larger than 4 MiB"):
        classreport.read_kept(tmp_path, "backward", "bob")
    assert json.loads((path.parent / "zoe.json").read_text())["reason"] == "not a notebook"


@pytest.mark.slow
def test_a_students_words_reach_the_page_and_the_feedback_as_text_never_as_html(tmp_path):
    # The student's exception message travels into the check's message, the class report and
    # the feedback page: written as HTML, it would run in the instructor's browser.
    from autograder.course import samples
    from autograder.course.release import release
    from tests.conftest import BACKWARD

    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    course = tmp_path / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    answer = f"def lin_grad(inp, out, w, b):\n    raise ValueError({payload!r})\n"
    samples.write_class(released, course, BACKWARD, {"mallory": ({"lin_grad": answer}, [])})
    assert run_cli("grade", "--course", str(course)).returncode == 0
    done = run_cli("report", "--course", str(course))
    assert done.returncode == 0, done.stderr
    page = (course / "reports" / "backward" / "index.html").read_text()
    feedback = (course / "feedback" / "mallory" / "backward" / "backward.html").read_text()
    for html_text in (page, feedback):
        assert "<script>alert(1)" not in html_text and "<img src=x" not in html_text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text


#: The two lessons' small classes: one right, one with each lesson's commonest mistake.
NO_FACTOR_2 = ("def mse_grad(inp, targ):\n"
               "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")


@pytest.fixture(scope="module")
def two_lessons(tmp_path_factory) -> Path:
    """A course with both lessons released, a small class handed in for each, graded once."""
    from autograder.course import samples
    from autograder.course.release import release
    from autograder.lesson import model as lessons

    course = tmp_path_factory.mktemp("two-lessons") / "course"
    for released in release(course):
        lesson = lessons.find(released.parent.name, course)
        wrong = ({"mse_grad": NO_FACTOR_2} if lesson.id == "backward"
                 else samples.of(lesson).CLASS["eve"][0])
        samples.write_class(json.loads(released.read_text()), course, lesson,
                            {"amy": ({}, []), f"{lesson.id[:3]}-wrong": (wrong, [])})
    done = run_cli("grade", "--course", str(course), "--workers", "2")
    assert done.returncode == 0, done.stderr
    return course


@pytest.mark.slow
def test_report_without_assignment_reports_each_lesson_in_its_own_folder(two_lessons):
    course = two_lessons
    done = run_cli("report", "--course", str(course))
    assert done.returncode == 0, done.stderr
    pages = {}
    for lesson, wrong, code in (("backward", "bac-wrong", "mse_grad.missing_factor_2"),
                                ("classifier", "cla-wrong", "log_softmax_grad.overflows")):
        folder = course / "reports" / lesson
        pages[lesson] = BeautifulSoup((folder / "index.html").read_text(),
                                      features="html.parser").get_text()
        assert f"Class report: {lesson}" in pages[lesson] and code in pages[lesson]
        with (folder / "mistakes.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert {r["student_id"] for r in rows} == {"amy", wrong}
        assert code in {m for r in rows for m in r["mistakes"].split()}
        # The terminal names each lesson, its table and where its page is.
        assert f"class report: {lesson}, 2 graded of 2 handed in" in done.stdout
        assert f"{lesson}: {(folder / 'index.html').resolve()}" in done.stdout
    assert "log_softmax_grad" not in pages["backward"] and "mse_grad" not in pages["classifier"]
    # One lesson still, where asked.
    done = run_cli("report", "--course", str(course), "--assignment", "classifier")
    assert done.returncode == 0 and "class report: classifier" in done.stdout
    assert "class report: backward" not in done.stdout
