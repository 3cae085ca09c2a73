"""`autograder serve` under hostile hand-ins: whatever a hand-in's files and name hold, it costs
that hand-in only; its time is the server's, never the one the student wrote; the log shows the
student's control characters as escapes.

Each hand-in is made as a student can: with nbgrader's own submit, then changed by hand (the
student owns the folder), or a folder made in `inbound/` by hand. The course is real (released
with nbgrader into its own exchange), as in tests/course/test_serve.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from autograder.course import samples
from autograder.course.serve import Server
from tests.conftest import CORRECT
from tests.course.test_serve import (
    NO_FACTOR_2,
    decided,
    hand_in,
    journal,
    released_course,
    released_page,
    serve_until_idle,
)
from tests.support.courseusers import COURSE_ID

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("serve")]

#: nbgrader's format for a submission's time (its name and timestamp.txt).
NBGRADER_TIME = "%Y-%m-%d %H:%M:%S.%f UTC"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course of its own, released into its own exchange."""
    return released_course(tmp_path_factory, "serve-hostile")


def inbound(course):
    return course["exchange"] / COURSE_ID / "inbound"


def gradebook(course):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{course['course'] / 'gradebook.db'}", COURSE_ID)



def test_a_secret_that_is_not_utf8_costs_its_own_page_only_and_a_restart_goes_on(course):
    not_utf8 = hand_in(course, "badsecret")
    (inbound(course) / not_utf8 / "submission_secret.txt").write_bytes(b"\xff\xfe\x00secret")
    empty = hand_in(course, "emptysecret")  # nbgrader's hash of an empty secret is an assert
    (inbound(course) / empty / "submission_secret.txt").write_bytes(b"")
    odd_time = hand_in(course, "oddtime")  # grading never reads the student's timestamp.txt
    (inbound(course) / odd_time / "timestamp.txt").write_bytes(b"\xff\xfe" + b"9" * 5000)
    neighbour = hand_in(course, "neighbour")  # graded in the same round
    lines: list[str] = []
    serve_until_idle(course, lines)
    for name in (not_utf8, empty):
        entry = decided(course, name)
        assert (entry["state"], entry["score"], entry["feedback"]) == ("graded", 10.0, None)
        assert "submission_secret.txt" in entry["note"]
    said = [line for line in lines if line.startswith("graded badsecret ")]
    assert len(said) == 1 and "submission_secret.txt is not UTF-8 text" in said[0], lines
    for name in (odd_time, neighbour):
        assert decided(course, name)["state"] == "graded"
        assert decided(course, name)["score"] == 10.0
        assert "Score" in released_page(course, decided(course, name))
    # the restart meets the same folders again, all decided: nothing more, and no crash
    before = journal(course)
    restarted: list[str] = []
    serve_until_idle(course, restarted)
    assert journal(course) == before
    assert not any("submission_secret" in line for line in restarted), restarted


def set_due_date(course, due: datetime | None) -> None:
    """The lesson's due date (naive UTC, the gradebook's, as formgrader sets it)."""
    with gradebook(course) as gb:
        gb.update_or_create_assignment("backward", duedate=due)


@pytest.fixture
def past_due(course):
    """The lesson's due date an hour ago."""
    due = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)
    set_due_date(course, due)
    yield due
    set_due_date(course, None)


@pytest.fixture
def due_date(course):
    """Set the lesson's due date; none again after the test."""
    yield lambda due: set_due_date(course, due)
    set_due_date(course, None)


def forge(course, real: str, student: str, claimed: datetime, tag: str, move: bool = False) -> str:
    """What a student can make by hand: `real` (a hand-in of theirs) under a name and with a
    timestamp.txt that say `claimed`."""
    name = f"{student}+backward+{claimed.strftime(NBGRADER_TIME)}+{tag}"
    if move:
        os.rename(inbound(course) / real, inbound(course) / name)
    else:
        shutil.copytree(inbound(course) / real, inbound(course) / name)
    (inbound(course) / name / "timestamp.txt").write_text(claimed.strftime(NBGRADER_TIME))
    return name


def test_forged_names_and_timestamps_do_not_beat_the_rate_limit(course, due_date):
    from nbgrader.utils import parse_utc

    options = {"workers": 1, "burst": 1, "every_minutes": 10, "log": lambda line: None}
    first = hand_in(course, "forger")  # on time; the bucket's one result
    server = Server(course["course"], **options)
    try:
        server.round()  # (another test's hand-ins left waiting may be decided in it)
    finally:
        server.close()
    assert decided(course, first)["state"] == "graded"
    due = datetime.now(timezone.utc).replace(tzinfo=None)  # the due date passes
    due_date(due)
    time.sleep(0.5)  # (a ctime is a clock tick behind: what follows is well after the due date)
    # Then, one at a time, a folder whose name and timestamp.txt say a time between the graded
    # hand-in and the due date: the last before the due date, were those times believed (graded
    # whatever the bucket). Late by the server's clock: the empty bucket holds each.
    graded_at = parse_utc(first.split("+")[2])
    server = Server(course["course"], **options)
    try:
        for i in range(3):
            claimed = graded_at + (due - graded_at) * (i + 1) / 4
            forged = forge(course, first, "forger", claimed, f"f{i}")
            server.round()
            assert [e for e in journal(course) if e["name"] == forged] == []
    finally:
        server.close()


def test_a_hand_in_rewritten_after_the_due_date_is_late_whatever_its_folder_says(course,
                                                                               due_date):
    """The folder (made before the due date, and waiting for a token) keeps its time when a file
    in it is rewritten; the file's own ctime does not: that is the content graded."""
    options = {"workers": 1, "burst": 1, "every_minutes": 10, "log": lambda line: None}
    server = Server(course["course"], **options)
    try:
        first = hand_in(course, "rewriter")
        server.round()  # the bucket's one result
        second = hand_in(course, "rewriter", {**CORRECT, **NO_FACTOR_2})
        server.round()  # waits for a token
        assert [e for e in journal(course) if e["name"] == second] == []
    finally:
        server.close()
    assert decided(course, first)["state"] == "graded"
    due_date(datetime.now(timezone.utc).replace(tzinfo=None))  # the due date passes
    time.sleep(0.5)  # (a ctime is a clock tick behind: what follows is well after the due date)
    notebook = inbound(course) / second / "backward.ipynb"
    with notebook.open("r+b") as fh:  # the student's fix, written into the waiting folder
        fixed = json.dumps(samples.fill(course["released"], CORRECT)).encode()
        fh.truncate(0)
        fh.write(fixed)
    server = Server(course["course"], **options)
    try:
        server.round()  # late: rate-limited as any other (another test's may be graded in it)
    finally:
        server.close()
    assert [e for e in journal(course) if e["name"] == second] == []


def test_forged_names_and_timestamps_do_not_beat_the_late_penalty(course, past_due):
    started = time.time()
    real = hand_in(course, "latecomer")
    forged = forge(course, real, "latecomer", past_due - timedelta(days=1), "f", move=True)
    lines: list[str] = []
    serve_until_idle(course, lines, burst=1, every_minutes=10)
    entry = decided(course, forged)
    assert entry["state"] == "graded"
    started = datetime.fromtimestamp(started, timezone.utc).replace(tzinfo=None)
    late = (started - past_due).total_seconds()
    # the server's time of it (a ctime may be a clock tick behind time.time)
    assert datetime.fromisoformat(entry["timestamp"]) >= started - timedelta(seconds=1)
    assert entry["seconds_late"] >= late - 1
    with gradebook(course) as gb:  # what formgrader and nbgrader's exports show
        submission = gb.find_submission("backward", "latecomer")
        assert submission.total_seconds_late >= late - 1
        assert submission.timestamp > past_due
    said = [line for line in lines if line.startswith(f"note {forged}")]
    assert len(said) == 1, lines
    assert "by the server's clock" in said[0]
    assert "its name says" in said[0] and "its timestamp.txt says" in said[0]


def test_the_log_shows_a_folder_names_control_characters_as_escapes(course, tmp_path):
    shown_as = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mevil"
    later = "2030-01-01 00:00:00.000000 UTC"  # a note says that it is not the server's time
    (inbound(course) / f"\x1b]0;pwned\x07\x1b[2J\x1b[31mevil+backward+{later}+x").mkdir()
    os.mkdir(bytes(inbound(course)) + f"/\xffbad+backward+{later}+y".encode("latin-1"))
    if os.geteuid() == 0:  # a folder whose owner is not the student it names: refused
        other = inbound(course) / f"\x1b]0;owned\x07\x1b[2Jnobody+backward+{later}+z"
        other.mkdir()
        os.chown(other, 65534, 65534)
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "autograder", "serve", "--course",
                           str(course["course"]), "--workers", "1", "--once"],
                          capture_output=True, env=env, timeout=900)
    out, err = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, out + err
    for raw in ("\x1b", "\x07"):
        assert raw not in out and raw not in err
    assert f"{shown_as}+backward+{later}+x" in out  # its note, and its result
    assert f"graded {shown_as} backward: 0 / 10" in out
    assert "\\udcffbad+backward" in out and "not UTF-8 text" in out  # refused
    if os.geteuid() == 0:
        assert "refused \\x1b]0;owned\\x07\\x1b[2Jnobody+backward" in out
