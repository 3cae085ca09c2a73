"""`autograder serve`: each submission graded as it lands in nbgrader's exchange, its page released.

One course, released into its own exchange (real nbgrader), shared by the module; submissions
made by nbgrader's own ExchangeSubmit (what `nbgrader submit` and the Assignment List run). The
server runs in this process for the queue, the rate limit and the hostile submissions, and as the
`autograder serve` command for the kill and restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.course.release import release
from autograder.course.serve import ServeError, Server
from tests.conftest import BACKWARD, CORRECT
from tests.support.courseusers import COURSE_ID, submit_as

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("serve")]

#: The factor 2 of d/dx (x - t)^2 left out: 2 points off.
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]


def released_course(tmp_path_factory, name: str) -> dict:
    """A course of its own, the backward lesson released into its own exchange."""
    top = tmp_path_factory.mktemp(name)
    released = release(top / "course", COURSE_ID, assignment="backward",
                       exchange=top / "exchange")[0]
    return {"course": top / "course", "exchange": top / "exchange", "work": top / "students",
            "released": json.loads(released.read_text())}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return released_course(tmp_path_factory, "serve")


def serve_until_idle(course, lines: list[str] | None = None, **options) -> None:
    """`serve`'s rounds in this process until one finds nothing to do; its log into `lines`."""
    server = Server(course["course"], workers=2,
                    log=(lambda line: None) if lines is None else lines.append, **options)
    try:
        while server.round():
            pass
    finally:
        server.close()


def hand_in(course, student: str, answers: dict[str, str] | None = None, raw: bytes | None = None) -> str:
    nb = samples.fill(course["released"], CORRECT if answers is None else answers)
    name = submit_as(course["exchange"], student, nb, course["work"])
    if raw is not None:
        (course["exchange"] / COURSE_ID / "inbound" / name / "backward.ipynb").write_bytes(raw)
    return name


def journal(course) -> list[dict]:
    path = course["course"] / "serve" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def released_page(course, entry: dict) -> str:
    return (course["exchange"] / COURSE_ID / "feedback" / f"{entry['feedback']}.html").read_text()


def decided(course, name: str) -> dict:
    found = [e for e in journal(course) if e["name"] == name]
    assert len(found) == 1, found
    return found[0]


def test_the_latest_counts_and_twenty_resubmissions_never_delay_another_students_first(course):
    greedy = [hand_in(course, "greedy", {**CORRECT, **NO_FACTOR_2}) for _ in range(19)]
    greedy.append(hand_in(course, "greedy"))
    first = hand_in(course, "newcomer")
    server = Server(course["course"], workers=2, batch=2, log=lambda line: None)
    try:
        assert server.round() == 2  # one each: greedy's latest, newcomer's first
        assert server.round() == 0
    finally:
        server.close()
    assert decided(course, first)["state"] == "graded"
    assert decided(course, greedy[-1])["state"] == "graded"
    assert decided(course, greedy[-1])["score"] == 10.0  # the latest, not the 19 before it
    assert all(decided(course, g)["state"] == "superseded" for g in greedy[:-1])
    assert "Score" in released_page(course, decided(course, first))


def test_the_rate_limit_says_when_the_next_result_comes_and_the_deadline_still_grades_the_last(course):
    from nbgrader.api import Gradebook

    server = Server(course["course"], workers=1, burst=2, every_minutes=60, log=lambda line: None)
    try:
        one = hand_in(course, "eager")
        assert server.round() == 1
        assert "next official result" not in released_page(course, decided(course, one))
        two = hand_in(course, "eager", {**CORRECT, **NO_FACTOR_2})
        assert server.round() == 1
        page = released_page(course, decided(course, two))
        assert "Your next official result comes at" in page and "one every 60 minutes" in page
        three = hand_in(course, "eager")
        assert server.round() == 0  # the bucket is empty: it waits
        assert [e["name"] for e in journal(course) if e["name"] == three] == []
    finally:
        server.close()
    due = datetime.now(timezone.utc) + timedelta(seconds=1)
    with Gradebook(f"sqlite:///{course['course'] / 'gradebook.db'}", COURSE_ID) as gb:
        gb.update_or_create_assignment("backward", duedate=due.replace(tzinfo=None))
    time.sleep(1.5)
    late = hand_in(course, "eager", {**CORRECT, **NO_FACTOR_2})  # after the due date
    server = Server(course["course"], workers=1, burst=2, every_minutes=60, log=lambda line: None)
    try:
        assert server.round() == 1  # the last before the due date, whatever the bucket
        assert decided(course, three)["state"] == "graded"
        assert decided(course, three)["score"] == 10.0
        assert server.round() == 0  # the late one is rate-limited as any other
        assert [e for e in journal(course) if e["name"] == late] == []
    finally:
        server.close()
        with Gradebook(f"sqlite:///{course['course'] / 'gradebook.db'}", COURSE_ID) as gb:
            gb.update_or_create_assignment("backward", duedate=None)


def test_a_submission_left_behind_by_a_kill_is_superseded_by_the_graded_one_it_names(course):
    older, newer = hand_in(course, "killed"), hand_in(course, "killed")
    server = Server(course["course"], workers=1, log=lambda line: None)
    try:
        [(latest, behind)] = [item for item in server.pick(server.scan(), time.time())
                              if item[0].student == "killed"]
        assert (latest.name, [s.name for s in behind]) == (newer, [older])
        server.grade("backward", [(latest, [])])  # its grade's line, then the kill: no more
        server.round()  # the restart's first round (another student's may be graded in it)
    finally:
        server.close()
    assert decided(course, newer)["state"] == "graded"
    assert decided(course, older)["state"] == "superseded"
    assert decided(course, older)["by"] == newer  # the result that stands for it, by name


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder another owner")
def test_a_bad_or_hostile_submission_costs_that_submission_only(course):
    broken = hand_in(course, "breaker", raw=b"{not json")
    fine = hand_in(course, "bystander")
    inbound = course["exchange"] / COURSE_ID / "inbound"
    # a link in inbound, named after a student: it would make the grader read the course
    link = inbound / "bystander+backward+2030-01-01 00:00:00.000000 UTC+link"
    link.symlink_to(course["course"])
    # a submission named after another student but owned by someone else
    forged = inbound / "bystander+backward+2030-01-01 00:00:00.000000 UTC+forged"
    forged.mkdir()
    nobody = 65534
    os.chown(forged, nobody, nobody)
    serve_until_idle(course)
    assert decided(course, broken)["state"] == "graded"
    assert decided(course, broken)["score"] == 0.0 and decided(course, broken)["reason"]
    assert "could not be graded" in released_page(course, decided(course, broken))
    assert decided(course, fine)["state"] == "graded" and decided(course, fine)["score"] == 10.0
    assert decided(course, link.name)["state"] == "refused"
    assert decided(course, forged.name)["state"] == "refused"


def test_one_server_per_course(course):
    server = Server(course["course"], log=lambda line: None)
    try:
        with pytest.raises(ServeError, match="another `autograder serve`"):
            Server(course["course"], log=lambda line: None)
    finally:
        server.close()


def start_serve(course, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--course",
                             str(course["course"]), "--workers", "2", "--batch", "3",
                             "--poll", "0.2"], stdout=log.open("a"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def stop_serve(server: subprocess.Popen) -> None:
    """What an administrator does: SIGTERM, then SIGKILL to its group after 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def wait_for(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, f"{what}: not within {seconds} s"
        time.sleep(0.1)


def test_killed_mid_burst_and_restarted_every_submission_is_graded_exactly_once(course, tmp_path):
    log = tmp_path / "serve.log"
    students = [f"burst{i}" for i in range(8)]
    names = [hand_in(course, s) for s in students] + [hand_in(course, students[0])]
    server = start_serve(course, log)
    try:
        wait_for(lambda: any(e["name"] in names and e["state"] == "graded"
                             for e in journal(course)), 240, "a first page")
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # mid-burst: no goodbye
        server.wait()
    graded_before = {e["name"] for e in journal(course) if e["state"] == "graded"} & set(names)
    assert len(graded_before) < len(set(names) - {names[0]}), "the kill came after the burst"
    names += [hand_in(course, s) for s in ("burst1", "while-down")]  # while it is down
    server = start_serve(course, log)
    try:
        wait_for(lambda: {e["name"] for e in journal(course)} >= set(names), 240,
                 f"every submission decided ({log.read_text()[-2000:]})")
    finally:
        stop_serve(server)
    lines = [e for e in journal(course) if e["name"] in names]
    assert sorted(e["name"] for e in lines) == sorted(names)  # each decided once, none lost
    graded = [e for e in lines if e["state"] == "graded"]
    latest = {}
    for name in names:
        latest[name.split("+")[0]] = name  # each student's last submission
    assert {e["name"] for e in graded} >= set(latest.values()), (graded, latest)
    assert graded_before <= {e["name"] for e in graded}  # what was graded stays graded, once
    for e in graded:  # each page in the exchange, under the name its student's secret gives
        assert "Score" in released_page(course, e)
    for e in lines:  # only a submission with a later one graded is superseded
        assert e["state"] in ("graded", "superseded"), e
        if e["state"] == "superseded":
            assert e["by"] in {g["name"] for g in graded} and e["by"] > e["name"], e
    # grades.csv and Gradescope's files kept current by the server (tests/course/test_serve_course.py)
    assert (course["course"] / "grades.csv").is_file()
    assert (course["course"] / "gradescope").is_dir()


def test_the_attacks_of_round_4_earn_nothing_from_serve(course, ample_deadlines):
    # (ample deadlines: a hand-in's 0 must be the attack's, not a busy machine's time limit)
    from tests.support.cheats import ROUND_4, ROUND_4_COMPUTED

    names = {hand_in(course, "mallory-" + how, {**CORRECT, **answers}): how
             for how, answers in (("read", ROUND_4), ("computed", ROUND_4_COMPUTED))}
    serve_until_idle(course)
    for name in names:  # module_backward is right; the three targets that used autograd earn 0
        entry = decided(course, name)
        assert entry["state"] == "graded"
        assert entry["score"] == 3.0, (entry, released_page(course, entry)[-3000:])
