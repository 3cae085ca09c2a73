"""The late policy of a lesson (`c.LatePolicy` in the course's nbgrader_config.py), on a real
nbgrader course: an on-time 10/10, then an 8/10 five seconds after the due date.

Before it, the late 8/10 silently replaced the on-time 10/10 in the gradebook, and no page said
"late". Now, by default (`feedback-only`), the grade stays 10/10 and the student's page says the
late hand-in was graded for feedback only; `refuse` grades nothing late; `latest` counts the late
one, flagged late as nbgrader flags it, its page saying so.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.course import samples
from autograder.course.grade import grade_course
from autograder.course.release import release
from tests.conftest import BACKWARD, CORRECT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

DUE = "2026-01-10 12:00:00"
ON_TIME, LATE = "2026-01-10 11:00:00.000000 UTC", "2026-01-10 12:00:05.000000 UTC"
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]


def hand_in(course: Path, released: dict, answers: dict, stamp: str) -> None:
    """What `nbgrader collect` leaves: the notebook and its timestamp.txt."""
    folder = course / "submitted" / "ann" / "backward"
    shutil.rmtree(folder, ignore_errors=True)
    samples.write(samples.fill(released, {**CORRECT, **answers}), folder / "backward.ipynb")
    (folder / "timestamp.txt").write_text(stamp)


@pytest.fixture(scope="module")
def on_time(tmp_path_factory) -> tuple[Path, dict]:
    """A course whose student handed in 10/10 on time, graded."""
    course = tmp_path_factory.mktemp("late") / "course"
    released = json.loads(release(course, "late-course", assignment="backward")[0].read_text())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "late-course") as gb:
        gb.update_or_create_assignment("backward", duedate=DUE)
    hand_in(course, released, {}, ON_TIME)
    [outcome] = grade_course(course, workers=1)
    assert outcome.score == 10.0
    return course, released


def late_again(on_time, tmp_path: Path, policy: str | None) -> tuple[Path, object]:
    """A copy of the course, the late 8/10 handed in and graded under `policy`."""
    course = Path(shutil.copytree(on_time[0], tmp_path / "course"))
    if policy is not None:
        with (course / "nbgrader_config.py").open("a") as out:
            out.write(policy + "\n")
    hand_in(course, on_time[1], NO_FACTOR_2, LATE)
    [outcome] = grade_course(course, workers=1)
    return course, outcome


def in_gradebook(course: Path) -> tuple[float, float, str]:
    """(score, seconds late, timestamp) of ann's submission, as the gradebook holds it."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "late-course") as gb:
        sub = gb.find_submission("backward", "ann")
        return float(sub.score), float(sub.total_seconds_late), str(sub.timestamp)


def page(course: Path) -> str:
    return (course / "feedback" / "ann" / "backward" / "backward.html").read_text()


def csv_row(course: Path) -> dict:
    with (course / "grades.csv").open() as f:
        return next(row for row in csv.DictReader(f) if row["student_id"] == "ann")


def test_by_default_a_late_hand_in_is_graded_for_feedback_only_and_the_on_time_grade_stays(
        on_time, tmp_path):
    course, outcome = late_again(on_time, tmp_path, None)
    assert in_gradebook(course) == (10.0, 0.0, "2026-01-10 11:00:00")
    assert outcome.score == 10.0  # the class table's score
    text = page(course)
    assert "late" in text.lower() and "graded for feedback only" in text
    assert "would score 8 / 10" in text and "the grade stays 10 / 10" in text
    assert "inp.g is half" in text  # the late hand-in's own feedback
    row = csv_row(course)
    assert float(row["score"]) == 10.0 and "Late" in row["note"] and "feedback only" in row["note"]
    # formgrader's notebook is still the on-time one (its right answer)
    graded = (course / "autograded" / "ann" / "backward" / "backward.ipynb").read_text()
    assert "inp.g is half" not in graded


def test_refuse_grades_nothing_late(on_time, tmp_path):
    course, outcome = late_again(on_time, tmp_path, 'c.LatePolicy.default = "refuse"')
    assert in_gradebook(course) == (10.0, 0.0, "2026-01-10 11:00:00")
    text = page(course)
    assert "not graded: the course does not accept late hand-ins" in text
    assert "the grade stays 10 / 10" in text and "inp.g is half" not in text


def test_latest_counts_the_late_one_flagged_late_as_nbgrader_flags_it(on_time, tmp_path):
    course, outcome = late_again(on_time, tmp_path,
                                 'c.LatePolicy.lessons = {"backward": "latest"}')
    assert in_gradebook(course) == (8.0, 5.0, "2026-01-10 12:00:05")
    assert outcome.score == 8.0
    assert "Late: handed in 5 s after the due date" in page(course)
    assert "Late" in csv_row(course)["note"]


def test_a_policy_that_is_none_is_refused_in_one_line(on_time, tmp_path):
    course = Path(shutil.copytree(on_time[0], tmp_path / "course"))
    with (course / "nbgrader_config.py").open("a") as out:
        out.write('c.LatePolicy.default = "never"\n')
    done = run_cli("grade", "--course", str(course))
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "c.LatePolicy.default" in done.stderr and "'feedback-only'" in done.stderr
