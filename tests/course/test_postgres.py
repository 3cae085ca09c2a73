"""A course whose gradebook is PostgreSQL (`autograder release --db postgresql://...`): the same
scores as on SQLite; `serve`, `grade` and a formgrader-like manual score writing at the same
time, nothing locked and no score lost; `report` reading it; a bad URL is one line.

The server is real (Debian's postgresql, tests/support/postgres.py), one for the session, a fresh
database for each course.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.course.grade import grade_course
from autograder.course.release import release
from tests.conftest import BACKWARD, CORRECT, run_cli
from tests.course.test_scale import MEMBERS, cell_scores, scores
from tests.course.test_serve import stop_serve
from tests.support.courseusers import COURSE_ID, submit_as
from tests.support.postgres import postgres  # noqa: F401 - the session's server (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

#: The factor 2 of d/dx (x - t)^2 left out: 2 points off.
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]


def gradebook_of(course: Path):
    from nbgrader.api import Gradebook

    from autograder.course.config import course_config

    return Gradebook(course_config(course).CourseDirectory.db_url, COURSE_ID)


# --- the same class, on SQLite and on PostgreSQL ------------------------------------------------

@pytest.fixture(scope="module")
def two_courses(tmp_path_factory, postgres):  # noqa: F811
    """One released course with a small class handed in (SQLite's gradebook), and its copy
    pointed at PostgreSQL (the same seed, so the same inputs), each graded."""
    top = tmp_path_factory.mktemp("postgres")
    on_sqlite = top / "sqlite"
    released = json.loads(release(on_sqlite, COURSE_ID, assignment="backward")[0].read_text())
    samples.write_class(released, on_sqlite, BACKWARD, MEMBERS)
    on_postgres = top / "postgres"
    shutil.copytree(on_sqlite, on_postgres)
    (on_postgres / "gradebook.db").unlink()
    url = postgres.create_database()
    release(on_postgres, COURSE_ID, assignment="backward", db=url)
    for course in (on_sqlite, on_postgres):
        grade_course(course, workers=2)
    return on_sqlite, on_postgres, url


def test_a_class_graded_on_postgresql_gets_exactly_the_scores_of_sqlite(two_courses):
    on_sqlite, on_postgres, url = two_courses
    assert f"c.CourseDirectory.db_url = {url!r}" in (on_postgres / "nbgrader_config.py").read_text()
    assert not (on_postgres / "gradebook.db").exists()  # nothing went to SQLite
    assert scores(on_postgres) == scores(on_sqlite)
    assert float(scores(on_postgres)["ada"][0]) == 10.0
    assert float(scores(on_postgres)["dee"][0]) == 0.0
    assert (on_postgres / "grades.csv").read_text() == (on_sqlite / "grades.csv").read_text()
    assert cell_scores(on_postgres) == cell_scores(on_sqlite)
    with gradebook_of(on_postgres) as gb:
        assert gb.engine.dialect.name == "postgresql"
        assert sorted(s.id for s in gb.students) == sorted(MEMBERS)


def test_report_reads_a_postgresql_gradebook_as_it_reads_sqlite(two_courses):
    on_sqlite, on_postgres, _ = two_courses
    for course in (on_sqlite, on_postgres):
        done = run_cli("report", "--course", str(course))
        assert done.returncode == 0, done.stderr
    mistakes = [(c / "reports" / "backward" / "mistakes.csv").read_text()
                for c in (on_sqlite, on_postgres)]
    assert mistakes[0] == mistakes[1]
    assert "mse_grad.sign_flipped" in mistakes[1]  # ben's mistake, read back from PostgreSQL


def test_stock_nbgrader_reads_the_course_s_postgresql_gradebook(two_courses):
    """What formgrader and the stock commands read: the URL in nbgrader_config.py."""
    _, on_postgres, _ = two_courses
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "db", "student", "list"],
                          cwd=on_postgres, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    for student in MEMBERS:
        assert student in done.stdout


# --- release --db, and a gradebook that cannot be opened ------------------------------------------

def test_release_with_db_keeps_the_url_and_the_stock_commands_use_it(tmp_path, postgres):  # noqa: F811
    url = postgres.create_database()
    course = tmp_path / "course"
    done = run_cli("release", "--course", str(course), "--assignment", "backward",
                   "--no-exchange", "--db", url)
    assert done.returncode == 0, done.stderr
    assert f"c.CourseDirectory.db_url = {url!r}" in (course / "nbgrader_config.py").read_text()
    assert not (course / "gradebook.db").exists()
    with gradebook_of(course) as gb:  # nbgrader's generate_assignment recorded it there
        assert [a.name for a in gb.assignments] == ["backward"]
        assert gb.find_assignment("backward").max_score == 10.0


def test_an_unreachable_database_is_one_line_that_names_it(tmp_path, postgres, two_courses):  # noqa: F811
    course = tmp_path / "course"
    unreachable = "postgresql://grader:s3cret@127.0.0.1:9/gradebook"
    done = run_cli("release", "--course", str(course), "--assignment", "backward",
                   "--no-exchange", "--db", unreachable)
    assert done.returncode == 2
    assert done.stderr.startswith("autograder: cannot open the gradebook "
                                  "postgresql://grader:***@127.0.0.1:9/gradebook: "), done.stderr
    assert "Connection refused" in done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not course.exists()  # nothing is left of it, no course pointing at that database

    done = run_cli("release", "--course", str(course), "--assignment", "backward",
                   "--no-exchange", "--db", "postgres://nowhere")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the gradebook postgres://nowhere is not a database SQLAlchemy knows" in done.stderr

    # a course whose configured database is gone: grade and report say so in one line
    shutil.copytree(two_courses[1], course)
    gone = postgres.url("dropped")
    with (course / "nbgrader_config.py").open("a") as config:
        config.write(f"c.CourseDirectory.db_url = {gone!r}\n")
    for command in ("grade", "report"):
        done = run_cli(command, "--course", str(course))
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"autograder: cannot open the gradebook {gone}: "), \
            done.stderr
        assert 'database "dropped" does not exist' in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# --- serve, grade and formgrader writing at once --------------------------------------------------

def journal(course: Path) -> list[dict]:
    path = course / "serve" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def wait_for(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, f"{what}: not within {seconds} s"
        time.sleep(0.1)


class ManualGrader(threading.Thread):
    """What formgrader does when an instructor types a manual score (its GradeHandler.put): one
    gradebook kept open, a grade found by id, its manual score set, committed; over and over,
    until stopped. `last` holds each grade's last manual score."""

    def __init__(self, course: Path, students: list[str]) -> None:
        super().__init__(daemon=True)
        self.course, self.students = course, students
        self.stop, self.last, self.errors, self.writes = threading.Event(), {}, [], 0

    def run(self) -> None:
        try:
            with gradebook_of(self.course) as gb:
                ids = {s: gb.find_grade("check_mse_grad", "backward", "backward", s).id
                       for s in self.students}
                gb.db.commit()
                score = 0.0
                while not self.stop.is_set():
                    for student, grade_id in ids.items():
                        score = (score + 0.25) % 2.0
                        grade = gb.find_grade_by_id(grade_id)
                        grade.manual_score = score
                        grade.needs_manual_grade = False
                        gb.db.commit()
                        self.last[student] = score
                        self.writes += 1
                    time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - said by the test
            self.errors.append(f"{type(exc).__name__}: {exc}")


def test_serve_grade_and_formgrader_write_at_once_nothing_locked_no_score_lost(tmp_path, postgres):  # noqa: F811
    top = tmp_path
    course, exchange, work = top / "course", top / "exchange", top / "students"
    url = postgres.create_database()
    released = json.loads(release(course, COURSE_ID, assignment="backward", exchange=exchange,
                                  db=url)[0].read_text())
    # the class `grade` grades (again, for the manual ones, graded once before)
    by_grade = {f"g{i}": ({**CORRECT, **NO_FACTOR_2} if i % 2 else {}, []) for i in range(8)}
    manual = {f"m{i}": ({}, []) for i in range(3)}
    samples.write_class(released, course, BACKWARD, {**by_grade, **manual})
    grade_course(course, workers=2)
    # the class `serve` grades: each hands in through nbgrader's exchange
    by_serve = {f"s{i}": ({**CORRECT, **NO_FACTOR_2} if i % 2 else CORRECT) for i in range(6)}

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = top / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--course",
                               str(course), "--workers", "1", "--batch", "2", "--poll", "0.1"],
                              stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    formgrader = ManualGrader(course, list(manual))
    grading = None
    try:
        wait_for(lambda: "serving" in log.read_text(), 120, f"serve to start ({log})")
        formgrader.start()
        grading = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "--course",
                                    str(course), "--workers", "1"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env)
        # hand in once `grade` has listed its class (its first notebook is recorded): the server
        # grades these while `grade` records its own
        wait_for(lambda: any((course / "autograded").glob("g*/backward/backward.ipynb")) and
                 grading.poll() is None or grading.poll() is not None, 120, "grade to start")
        names = {s: submit_as(exchange, s, samples.fill(released, answers), work)
                 for s, answers in by_serve.items()}
        graded_out, _ = grading.communicate(timeout=300)
        grade_ended = time.time()
        wait_for(lambda: {e["name"] for e in journal(course)} >= set(names.values()), 240,
                 f"serve to grade every submission ({log.read_text()[-2000:]})")
    finally:
        formgrader.stop.set()
        formgrader.join(30)
        stop_serve(server)
        if grading is not None and grading.poll() is None:
            grading.kill()
    said = graded_out + log.read_text()
    assert grading.returncode == 0, graded_out
    assert f"gradebook: {url} " in graded_out  # where the scores went, as grade says it
    assert "locked" not in said and "could not record" not in said, said
    assert formgrader.errors == [] and formgrader.writes > 0, formgrader.errors
    # serve: each submission graded once, its score the one its answers earn, some of them
    # while `grade` was still writing
    served = [e for e in journal(course) if e["name"] in names.values()]
    assert any(e["at"] < grade_ended for e in served), "serve graded nothing while grade ran"
    for student, name in names.items():
        [entry] = [e for e in journal(course) if e["name"] == name]
        assert entry["state"] == "graded", entry
        assert entry["score"] == (8.0 if int(student[1:]) % 2 else 10.0), entry
    # the gradebook: every score, the automatic ones and the last manual ones
    with gradebook_of(course) as gb:
        for student in [*by_grade, *by_serve]:
            expected = 8.0 if int(student[1:]) % 2 else 10.0
            assert gb.find_submission("backward", student).score == expected, student
        for student, score in formgrader.last.items():
            grade = gb.find_grade("check_mse_grad", "backward", "backward", student)
            assert grade.manual_score == score, (student, grade.manual_score, score)
            assert gb.find_submission("backward", student).score == 8.0 + score, student
    # grades.csv (grade's) holds its class; report reads the whole class back
    with open(course / "grades.csv") as f:
        rows = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    assert {s: rows[s] for s in by_grade} == {
        s: 8.0 if int(s[1:]) % 2 else 10.0 for s in by_grade}
    done = run_cli("report", "--course", str(course))
    assert done.returncode == 0, done.stderr
    with open(course / "reports" / "backward" / "mistakes.csv") as f:
        reported = {r["student_id"] for r in csv.DictReader(f)}
    assert reported == {*by_grade, *manual, *by_serve}
