"""The class report says who handed in late, in the words of the student's feedback page.

A real nbgrader course: ann and bob hand in 10/10 on time, then ann an 8/10 five seconds after
the due date. By default (`feedback-only`) ann's grade stays 10/10 and her late hand-in is graded
for feedback only; the class report's page and its terminal summary say so for ann, and nothing
late for bob. Before it, the class report said nothing of lateness at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from nbgrader.api import Gradebook

from autograder.course import samples
from autograder.course.grade import grade_course
from autograder.course.release import release
from tests.conftest import BACKWARD, CORRECT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

DUE = "2026-01-10 12:00:00"
ON_TIME, LATE = "2026-01-10 11:00:00.000000 UTC", "2026-01-10 12:00:05.000000 UTC"
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]


def hand_in(course: Path, student: str, released: dict, answers: dict, stamp: str) -> None:
    """What `nbgrader collect` leaves: the notebook and its timestamp.txt."""
    folder = course / "submitted" / student / "backward"
    shutil.rmtree(folder, ignore_errors=True)
    samples.write(samples.fill(released, {**CORRECT, **answers}), folder / "backward.ipynb")
    (folder / "timestamp.txt").write_text(stamp)


@pytest.fixture(scope="module")
def late_course(tmp_path_factory) -> tuple[Path, dict]:
    """ann and bob on time (10/10 each, graded), then ann late (8/10), graded by default."""
    course = tmp_path_factory.mktemp("late-report") / "course"
    released = json.loads(release(course, "late-report", assignment="backward")[0].read_text())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "late-report") as gb:
        gb.update_or_create_assignment("backward", duedate=DUE)
    for student in ("ann", "bob"):
        hand_in(course, student, released, {}, ON_TIME)
    assert [o.score for o in grade_course(course, workers=1)] == [10.0, 10.0]
    hand_in(course, "ann", released, NO_FACTOR_2, LATE)
    grade_course(course, workers=1)
    return course, released


def reported(course: Path) -> tuple[dict[str, str], str, str]:
    """`autograder report` as an instructor runs it: (the students table's rows' text by
    student, the page's text, stdout)."""
    done = run_cli("report", "--course", str(course))
    assert done.returncode == 0, done.stderr
    soup = BeautifulSoup((course / "reports" / "backward" / "index.html").read_text(),
                         features="html.parser")
    rows = {}
    for tr in soup.find(id="students").find_all("tr")[1:]:
        cells = tr.find_all("td")
        rows[cells[0].get_text().split()[0]] = " ".join(tr.get_text(" ").split())
    return rows, " ".join(soup.get_text(" ").split()), " ".join(done.stdout.split())


def test_the_class_report_says_ann_handed_in_late_for_feedback_only_and_bob_did_not(late_course):
    rows, text, stdout = reported(late_course[0])
    assert set(rows) == {"ann", "bob"}
    assert "late" in rows["ann"].lower() and "late" not in rows["bob"].lower()
    assert "10 / 10" in rows["ann"]  # the on-time grade stands
    # the feedback page's words: what became of the late hand-in, and the grade that stays
    said = ("Late: handed in 5 s after the due date (2026-01-10 12:00:00 UTC): graded for "
            "feedback only; the grade stays 10 / 10, from the hand-in of 2026-01-10 11:00:00 UTC")
    assert f"ann: {said}" in text
    assert "bob: Late" not in text and "1 handed in late" in text
    assert "late: 1" in stdout
    assert f"ann: {said}" in stdout and "bob: Late" not in stdout


def test_under_latest_the_late_hand_in_counts_and_the_class_report_says_so(late_course,
                                                                            tmp_path):
    course = Path(shutil.copytree(late_course[0], tmp_path / "course"))
    with (course / "nbgrader_config.py").open("a") as out:
        out.write('c.LatePolicy.default = "latest"\n')
    grade_course(course, workers=1)
    rows, text, stdout = reported(course)
    assert "late" in rows["ann"].lower() and "late" not in rows["bob"].lower()
    assert "8 / 10" in rows["ann"]
    said = ("Late: handed in 5 s after the due date (2026-01-10 12:00:00 UTC); it counts, with "
            "the course's late penalty, if any")
    assert f"ann: {said}" in text and f"ann: {said}" in stdout and "late: 1" in stdout
