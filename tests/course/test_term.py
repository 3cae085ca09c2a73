"""A whole term of one lesson, as real Unix users on one machine, each running the stock commands
as themselves (issue 35: "a full term runs in one test as real users").

The instructor (not root) releases the backward lesson with a due date; two students fetch, fill
it in (ann right, ben with the factor 2 left out of mse_grad) and submit; `autograder serve
--once` grades round 1 and each student fetches and reads their score; ben fixes his and hands in
again before the deadline (round 2); the deadline passes and ann hands in late, a mistake this
time: under the default late policy (feedback only) her on-time grade stays and her page says
"Late"; the instructor gives ben a manual score through nbgrader's gradebook (what formgrader
does), regenerates and releases the feedback with stock nbgrader, and ben fetches his new score;
`nbgrader export` gives each grade. Each student also asks `autograder status` in their
terminal where their hand-ins stand.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder.course import samples
from tests.conftest import BACKWARD, CORRECT
from tests.support.courseusers import COURSE_ID, Person, read_json, shared_server, why_no_users

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("term"),
              pytest.mark.skipif(why_no_users() is not None, reason=str(why_no_users()))]

#: The factor 2 of d/dx (x - t)^2 left out of mse_grad: a typical mistake, 2 points off.
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]
TEACHER, ANN, BEN = "term-teacher", "term-ann", "term-ben"
SCORE = re.compile(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)")

#: What formgrader does when the instructor types a score by hand into a grade (its API sets
#: the grade's manual_score in the gradebook): here, one point off ben's first cell worth two
#: or more. Run as the instructor, in the course.
MANUAL_SCORE = """
import sys
from nbgrader.api import Gradebook
from nbgrader.apps import NbGrader
from nbgrader.coursedir import CourseDirectory
app = NbGrader()
app.load_config_file()
coursedir = CourseDirectory(config=app.config)
with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
    notebook = gb.find_submission_notebook("backward", "backward", sys.argv[1])
    grade = next(g for g in sorted(notebook.grades, key=lambda g: g.name) if g.max_score >= 2)
    grade.manual_score = grade.max_score - 1
    gb.db.commit()
    print(grade.name, gb.find_submission("backward", sys.argv[1]).score)
"""


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def hand_in(student: Person, answers: dict) -> None:
    """The student fills the fetched notebook in, in their editor, and submits it."""
    mine = student.work / "backward" / "backward.ipynb"
    student.write_notebook(mine, samples.fill(read_json(mine), {**CORRECT, **answers}))
    student.nbgrader("submit", "backward")


def serve_once(teacher: Person, course: Path) -> str:
    done = teacher.run(teacher.env.python, "-m", "autograder", "serve", "--course", str(course),
                       "--once", "--workers", "2")
    return done.stdout + done.stderr


def newest_page(student: Person, pages: int) -> str:
    """The student fetches their feedback (the Assignment List's button) and opens the newest
    page: there are `pages` of them, one for each hand-in."""
    student.nbgrader("fetch_feedback", "backward")
    found = sorted((student.work / "backward" / "feedback").glob("*/backward.html"))
    assert len(found) == pages, found
    return found[-1].read_text()


def status(student: Person) -> list[str]:
    """`autograder status` in the student's terminal: a line for each hand-in."""
    done = student.run(student.env.python, "-m", "autograder", "status")
    return done.stdout.splitlines()


def status_says(said: list[str], wanted: list[str]) -> None:
    """Each of the student's status lines says what `wanted` says of that hand-in, in order."""
    assert len(said) == len(wanted), said
    for line, words in zip(said, wanted, strict=True):
        assert words in line, (words, said)


def score(page: str) -> tuple[float, float]:
    """The page's first "Score: X / Y" (nbgrader's heading, or the late page's)."""
    found = SCORE.search(page)
    assert found, page[:3000]
    return float(found[1]), float(found[2])


def set_due(teacher: Person, course: Path, due: datetime) -> None:
    """The due date in the gradebook, with stock nbgrader (what formgrader's Manage
    Assignments sets)."""
    teacher.nbgrader("db", "assignment", "add", "backward", f"--duedate={utc(due)}", cwd=course)


def test_a_term_release_two_rounds_a_late_hand_in_a_manual_score_and_the_export():
    with shared_server(TEACHER, [ANN, BEN]) as (teacher, students, exchange):
        ann, ben = students[ANN], students[BEN]
        course = teacher.work / "course"

        # release, due tomorrow
        teacher.run(teacher.env.python, "-m", "autograder", "release", "--course", str(course),
                    "--assignment", "backward", "--exchange", str(exchange),
                    "--course-id", COURSE_ID)
        set_due(teacher, course, datetime.now(timezone.utc) + timedelta(days=1))
        listed = ann.nbgrader("list")
        assert f"{COURSE_ID} backward" in listed.stdout + listed.stderr, listed

        # round 1: ann right, ben without the factor 2
        for student, answers in ((ann, {}), (ben, NO_FACTOR_2)):
            student.nbgrader("fetch_assignment", "backward")
            hand_in(student, answers)
        log = serve_once(teacher, course)
        assert f"graded {ANN} backward: 10 / 10" in log, log
        assert f"graded {BEN} backward: 8 / 10" in log, log
        assert score(newest_page(ann, 1)) == (10.0, 10.0)
        ben_page = newest_page(ben, 1)
        assert score(ben_page) == (8.0, 10.0)
        assert "inp.g is half" in ben_page  # what he left out, in his words

        # round 2, before the deadline: ben fixes mse_grad
        hand_in(ben, {})
        log = serve_once(teacher, course)
        assert f"graded {BEN} backward: 10 / 10" in log, log
        assert ANN not in log, log  # nothing new of hers: nothing graded twice
        assert score(newest_page(ben, 2)) == (10.0, 10.0)
        status_says(status(ben), ["graded: 8 / 10; your hand-in of", "graded: 10 / 10; "])

        # the deadline passes; ann hands in late, with the mistake this time
        set_due(teacher, course, datetime.now(timezone.utc).replace(microsecond=0))
        hand_in(ann, NO_FACTOR_2)
        log = serve_once(teacher, course)
        assert f"graded {ANN} backward" in log, log
        late = newest_page(ann, 2)
        assert "Late: handed in" in late and "graded for feedback only" in late, late[:3000]
        assert "would score 8 / 10" in late and "the grade stays 10 / 10" in late
        assert "inp.g is half" in late  # the late hand-in's own feedback
        status_says(status(ann), ["graded: 10 / 10; Fetch", "Late: handed in"])
        assert "graded for feedback only; the grade stays 10 / 10" in status(ann)[1]
        with (course / "grades.csv").open() as f:  # serve's grades.csv, kept current
            rows = {r["student_id"]: r for r in csv.DictReader(f)}
        assert float(rows[ANN]["score"]) == 10.0 and "Late" in rows[ANN]["note"], rows[ANN]
        assert float(rows[BEN]["score"]) == 10.0, rows[BEN]

        # a manual score for ben, as formgrader sets it; stock feedback regenerated, released
        given = teacher.run(teacher.env.python, "-c", MANUAL_SCORE, BEN, cwd=course)
        assert given.stdout.split()[-1] == "9.0", given.stdout + given.stderr
        teacher.nbgrader("generate_feedback", "backward", "--force", cwd=course)
        released = teacher.nbgrader("release_feedback", "backward", cwd=course)
        assert released.stderr.count("Releasing feedback for student") == 2, released.stderr
        assert score(newest_page(ben, 2)) == (9.0, 10.0)
        # ann's on-time page is regenerated (10 / 10, nbgrader's), her late page stays as it was
        newest_page(ann, 2)
        on_time_page, late_page = (p.read_text() for p in sorted(
            (ann.work / "backward" / "feedback").glob("*/backward.html")))
        assert score(on_time_page) == (10.0, 10.0) and "Late" not in on_time_page
        assert late_page == late

        # the export: the grades that count
        teacher.nbgrader("export", "--to", "term.csv", cwd=course)
        with (course / "term.csv").open() as f:
            grades = {r["student_id"]: r for r in csv.DictReader(f)
                      if r["assignment"] == "backward"}
        assert sorted(grades) == [ANN, BEN], grades
        assert (float(grades[ANN]["score"]), float(grades[ANN]["max_score"])) == (10.0, 10.0)
        assert float(grades[ANN]["late_submission_penalty"]) == 0.0, grades[ANN]
        assert (float(grades[BEN]["score"]), float(grades[BEN]["max_score"])) == (9.0, 10.0)
