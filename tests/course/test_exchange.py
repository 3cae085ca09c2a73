"""nbgrader's exchange, the whole stock cycle, as real users on one machine (no browser).

An instructor who is not root releases with `autograder release` (generate_assignment, then
nbgrader's release_assignment into the exchange); two students `fetch_assignment`, fill the
notebook in, `submit`; the instructor `collect`s, grades with `autograder grade`,
`release_feedback`; each student `fetch_feedback` and reads their own page. Then what a student
can try by hand against the other, the course and the exchange (nbgrader issue 978).
"""

from __future__ import annotations

import re

import pytest

from autograder.course import samples
from autograder.lesson import model as lessons
from tests.conftest import REPO
from tests.support.courseusers import COURSE_ID, read_json, shared_server, why_no_users

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("exchange"),
              pytest.mark.skipif(why_no_users() is not None, reason=str(why_no_users()))]

BACKWARD = lessons.load(REPO / "assignments" / "backward")
CORRECT = samples.of(BACKWARD).CORRECT
#: The factor 2 of d/dx (x - t)^2 left out: a typical mistake, 2 points off.
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]
TEACHER, ALICE, BOB = "hub-teacher", "hub-alice", "hub-bob"


@pytest.fixture(scope="module")
def cycle():
    with shared_server(TEACHER, [ALICE, BOB]) as (teacher, students, exchange):
        course = teacher.work / "course"
        done = teacher.run(teacher.env.python, "-m", "autograder", "release", "--course",
                           str(course), "--assignment", "backward", "--exchange", str(exchange),
                           "--course-id", COURSE_ID)
        listed = students[ALICE].nbgrader("list")
        for name, answers in ((ALICE, CORRECT), (BOB, {**CORRECT, **NO_FACTOR_2})):
            student = students[name]
            student.nbgrader("fetch_assignment", "backward")
            mine = student.work / "backward" / "backward.ipynb"
            student.write_notebook(mine, samples.fill(read_json(mine), answers))
            if name == ALICE:
                validated = student.nbgrader("validate", "backward/backward.ipynb")
                assert "Success" in validated.stdout + validated.stderr, validated
            student.nbgrader("submit", "backward")
        teacher.nbgrader("collect", "backward", cwd=course)
        graded = teacher.run(teacher.env.python, "-m", "autograder", "grade", "--course",
                             str(course), "--assignment", "backward", "--workers", "2")
        released = teacher.nbgrader("release_feedback", "backward", cwd=course)
        assert released.stderr.count("Releasing feedback for student") == 2, released.stderr
        for student in students.values():
            student.nbgrader("fetch_feedback", "backward")
        yield {"teacher": teacher, "students": students, "exchange": exchange,
               "course": course, "release": done, "listed": listed, "graded": graded}


def feedback_page(student) -> str:
    pages = list((student.work / "backward" / "feedback").glob("*/backward.html"))
    assert len(pages) == 1, pages
    return pages[0].read_text()


def test_release_puts_the_lesson_in_the_exchange_and_students_see_it(cycle):
    outbound = cycle["exchange"] / COURSE_ID / "outbound" / "backward" / "backward.ipynb"
    assert outbound.is_file()
    assert "NotImplementedError" in outbound.read_text()  # stubs, never the solutions
    listed = cycle["listed"].stdout + cycle["listed"].stderr  # nbgrader logs it on stderr
    assert "Released assignments:" in listed and f"{COURSE_ID} backward" in listed, listed
    assert "c.Exchange.root" in (cycle["course"] / "nbgrader_config.py").read_text()
    # what formgrader's Manage Assignments shows (its own API, as the instructor, in the course)
    teacher = cycle["teacher"]
    shown = teacher.run(teacher.env.python, "-c", FORMGRADER, cwd=cycle["course"])
    assert shown.stdout.split() == ["released", "False"], shown.stdout + shown.stderr


FORMGRADER = """
from nbgrader.apps import NbGrader
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
app = NbGrader()
app.load_config_file()
api = NbGraderAPI(CourseDirectory(config=app.config), config=app.config)
print(api.get_assignment("backward")["status"], api.exchange_missing)
"""


def test_the_instructor_grades_what_students_submitted_and_each_reads_their_own_page(cycle):
    out = cycle["graded"].stdout
    assert ALICE in out and BOB in out, out
    alice, bob = (feedback_page(cycle["students"][s]) for s in (ALICE, BOB))
    score = re.compile(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)")
    assert score.search(alice).groups() == ("10.0", "10.0"), score.search(alice)
    got = score.search(bob).groups()
    assert float(got[0]) < 10.0 and got[1] == "10.0", got


def test_the_course_folder_is_the_instructors_alone(cycle):
    course = cycle["course"]
    assert course.stat().st_mode & 0o777 == 0o700
    bob = cycle["students"][BOB]
    for target in ("gradebook.db", "solutions/backward/reference.py", "submitted",
                   f"feedback/{ALICE}/backward/backward.html", "nbgrader_config.py"):
        assert (course / target).exists(), target  # there, and out of a student's reach
        tried = bob.shell(f"cat '{course / target}' || ls '{course / target}'")
        assert tried.returncode != 0 and "Permission denied" in tried.stderr, (target, tried)


def test_a_student_cannot_list_read_or_change_what_others_handed_in(cycle):
    exchange, bob = cycle["exchange"] / COURSE_ID, cycle["students"][BOB]
    alice = cycle["students"][ALICE]
    tries = {
        "list the submissions": f"ls '{exchange / 'inbound'}'",
        "read a submission by a pattern": f"cat '{exchange}'/inbound/{ALICE}+*/backward.ipynb",
        "list the feedback": f"ls '{exchange / 'feedback'}'",
        "read alice's folder (her cache: the names and secrets)": f"ls -R '{alice.work}'",
        "change the released lesson": f"echo x > '{exchange / 'outbound' / 'backward' / 'backward.ipynb'}'",
        "add to the released lesson": f"touch '{exchange / 'outbound' / 'backward' / 'x.py'}'",
        "move the course's folder away": f"mv '{exchange}' '{exchange}-old'",
        "remove the course's folder": f"rm -rf '{exchange}'",
    }
    for what, script in tries.items():
        tried = bob.shell(script)
        assert tried.returncode != 0, (what, tried.stdout, tried.stderr)
        assert re.search("Permission denied|Operation not permitted|No such file", tried.stderr), \
            (what, tried.stderr)
    assert (exchange / "outbound" / "backward" / "backward.ipynb").is_file()
    # her own page is still hers, and his is his
    assert "Score" in feedback_page(alice)


def test_serve_as_the_instructor_grades_a_resubmission_and_refuses_a_forged_one(cycle):
    """`autograder serve` run by the instructor (not root): alice resubmits a mistake and gets
    her new page through the Assignment List's fetch_feedback; bob's folder named after alice
    (anyone can write into inbound/) is refused, never graded as hers."""
    teacher, exchange, course = cycle["teacher"], cycle["exchange"], cycle["course"]
    alice, bob = cycle["students"][ALICE], cycle["students"][BOB]
    mine = alice.work / "backward" / "backward.ipynb"
    alice.write_notebook(mine, samples.fill(read_json(mine), {**CORRECT, **NO_FACTOR_2}))
    alice.nbgrader("submit", "backward")
    inbound = exchange / COURSE_ID / "inbound"
    forged = f"{ALICE}+backward+2030-01-01 00:00:00.000000 UTC+forged"
    made = bob.shell(f"mkdir '{inbound / forged}' && cp '{bob.work}/backward/backward.ipynb' "
                     f"'{inbound / forged}/'")
    assert made.returncode == 0, made.stderr  # stock nbgrader lets him: serve must not believe it
    served = teacher.run(teacher.env.python, "-m", "autograder", "serve", "--course",
                         str(course), "--once", "--workers", "2")
    assert f"refused {forged}" in served.stdout, served.stdout
    assert f"graded {ALICE} backward: 8 / 10" in served.stdout, served.stdout
    alice.nbgrader("fetch_feedback", "backward")
    pages = sorted((alice.work / "backward" / "feedback").glob("*/backward.html"))
    assert len(pages) == 2 and "Score: 8.0 / 10.0" in pages[-1].read_text(), pages
