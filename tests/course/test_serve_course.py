"""`autograder serve` in a course's term: beside `grade`, grades.csv and Gradescope's files, its
log's waits, and the late policy.

Before it: `grade` on a lesson while `serve` ran on the same SQLite gradebook was neither refused
nor warned about (exit 0); `serve` wrote no grades.csv or Gradescope files; its log measured a
wait from when it first saw a hand-in, not from the hand-in itself; and a late hand-in replaced
an on-time grade.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.course import samples
from autograder.course.release import release
from autograder.course.serve import Server
from tests.conftest import BACKWARD, CORRECT, run_cli
from tests.support.courseusers import COURSE_ID, submit_as

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("serve")]

NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    top = tmp_path_factory.mktemp(COURSE_ID)
    course = top / "course"
    released = release(course, COURSE_ID, assignment="backward", exchange=top / "exchange")[0]
    return {"course": course, "exchange": top / "exchange", "work": top / "students",
            "released": json.loads(released.read_text()),
            "inbound": top / "exchange" / COURSE_ID / "inbound",
            "db": f"sqlite:///{course / 'gradebook.db'}"}


def hand_in(course: dict, student: str, answers: dict | None = None) -> str:
    nb = samples.fill(course["released"], {**CORRECT, **(answers or {})})
    return submit_as(course["exchange"], student, nb, course["work"])


def rounds(server: Server) -> None:
    while server.round():
        pass
    server.round()  # the idle round


def journal(course: dict) -> dict[str, dict]:
    lines = (course["course"] / "serve" / "journal.jsonl").read_text().splitlines()
    return {e["name"]: e for e in map(json.loads, lines)}


def csv_score(course: dict, student: str) -> float:
    with (course["course"] / "grades.csv").open() as f:
        return float(next(r for r in csv.DictReader(f) if r["student_id"] == student)["score"])


def test_grade_beside_serve_on_sqlite_is_refused_in_one_line(course):
    server = Server(course["course"], log=lambda line: None)
    try:
        done = run_cli("grade", "--course", str(course["course"]))
    finally:
        server.close()
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "`autograder serve` is grading" in done.stderr and "SQLite" in done.stderr
    # a serve killed with -9 leaves its lock file, never a lock: grade goes on
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    serve = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--course",
                              str(course["course"]), "--poll", "0.2"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        end = time.monotonic() + 300
        while run_cli("grade", "--course", str(course["course"])).returncode == 0:
            assert time.monotonic() < end and serve.poll() is None, "serve did not start"
            time.sleep(1)
    finally:
        os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
    done = run_cli("grade", "--course", str(course["course"]))
    assert done.returncode == 0, done.stderr


def test_serve_keeps_grades_csv_and_gradescopes_files_current(course):
    server = Server(course["course"], workers=1, log=lambda line: None)
    try:
        hand_in(course, "csv-ann")
        rounds(server)
        assert csv_score(course, "csv-ann") == 10.0
        results = course["course"] / "gradescope" / "csv-ann" / "backward" / "results.json"
        assert json.loads(results.read_text())["score"] == 10.0
        hand_in(course, "csv-ann", NO_FACTOR_2)
        rounds(server)
        assert csv_score(course, "csv-ann") == 8.0
        assert json.loads(results.read_text())["score"] == 8.0
    finally:
        server.close()


def test_the_log_counts_the_wait_from_the_hand_in_and_says_when_it_came_before_serve(course):
    name = hand_in(course, "slow-submit")
    # nbgrader's submit wrote timestamp.txt as it began; the files landed 40 s later (a slow
    # submit), and serve first saw them after that
    handed = datetime.now(timezone.utc) - timedelta(seconds=40)
    (course["inbound"] / name / "timestamp.txt").write_text(
        handed.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    lines: list[str] = []
    server = Server(course["course"], workers=1, log=lines.append)
    try:
        rounds(server)
    finally:
        server.close()
    [line] = [x for x in lines if x.startswith("graded slow-submit")]
    waited = float(re.search(r"page released ([\d.]+) s after it was handed in", line)[1])
    assert waited >= 40.0, line
    assert "before this serve started" in line, line


def test_serve_follows_the_late_policy_the_on_time_grade_stays(course):
    server = Server(course["course"], workers=1, log=lambda line: None)
    try:
        hand_in(course, "late-lou")
        rounds(server)
        with Gradebook(course["db"], COURSE_ID) as gb:
            due = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=1)
            gb.update_or_create_assignment("backward", duedate=due)
        server.duedates.clear()
        time.sleep(1.5)
        late = hand_in(course, "late-lou", NO_FACTOR_2)
        rounds(server)
    finally:
        server.close()
        with Gradebook(course["db"], COURSE_ID) as gb:
            gb.update_or_create_assignment("backward", duedate=None)
    entry = journal(course)[late]
    assert entry["state"] == "graded" and entry.get("counted") is False and "Late" in entry["late"]
    with Gradebook(course["db"], COURSE_ID) as gb:
        assert float(gb.find_submission("backward", "late-lou").score) == 10.0
    page = (course["exchange"] / COURSE_ID / "feedback" / f"{entry['feedback']}.html").read_text()
    assert "graded for feedback only" in page and "would score 8 / 10" in page
    assert "the grade stays 10 / 10" in page
