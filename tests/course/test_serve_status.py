"""A student can always learn where each hand-in stands, in their own words: waiting (its place in
the queue), graded, superseded by which, or held by the rate limit until when. Through nbgrader's
own Fetch Feedback (ExchangeFetchFeedback, what the Assignment List runs) and `autograder status`
in the student's terminal.

Before, Fetch Feedback before grading brought nothing and said nothing, and a superseded hand-in
never had any word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course.serve import Server
from tests.conftest import CORRECT
from tests.course.test_serve import NO_FACTOR_2, hand_in, released_course
from tests.support.courseusers import COURSE_ID

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("serve")]


def fetch_feedback(course, student: str) -> dict[str, str]:
    """What the student's Fetch Feedback brings (nbgrader's own ExchangeFetchFeedback): each
    hand-in's page by the time it was handed in (its folder in the student's nbgrader cache)."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeFetchFeedback
    from traitlets.config import Config

    work = course["work"]
    cfg = Config()
    cfg.CourseDirectory.course_id = COURSE_ID
    cfg.CourseDirectory.student_id = student
    cfg.CourseDirectory.assignment_id = "backward"
    cfg.Exchange.root = str(course["exchange"])
    cfg.Exchange.cache = str(work / student / ".cache")
    cfg.Exchange.assignment_dir = str(work / student)
    ExchangeFetchFeedback(coursedir=CourseDirectory(config=cfg), config=cfg,
                          authenticator=Authenticator(config=cfg)).start()
    fetched = work / student / "backward" / "feedback"
    return {p.parent.name: p.read_text() for p in fetched.glob("*/backward.html")}


def status_in_terminal(course, student: str) -> list[str]:
    """`autograder status`, as the student runs it: their nbgrader_config.py names the course,
    the exchange and (here, for a student of the test) their cache."""
    folder = course["work"] / student
    (folder / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(course['exchange'])!r}\n"
        f"c.Exchange.cache = {str(folder / '.cache')!r}\n")
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run([sys.executable, "-m", "autograder", "status"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def handed_in(name: str) -> str:
    """A hand-in's time as the student's cache folder (and the status) shows it."""
    return name.split("+")[2][:19] + " UTC"


def the_page_says(page: str) -> str:
    return page.split('id="autograder-status"><strong>', 1)[1].split("</strong>", 1)[0]


def test_each_hand_in_says_where_it_stands(tmp_path_factory):
    course = released_course(tmp_path_factory, "status")
    first = hand_in(course, "wren", {**CORRECT, **NO_FACTOR_2})
    # Nothing serves yet: the terminal says there is no word, not nothing.
    [line] = status_in_terminal(course, "wren")
    assert line.startswith(f"{COURSE_ID} backward, handed in {handed_in(first)}: no word from "
                           "the grader yet"), line
    hand_in(course, "yves")
    second = hand_in(course, "wren")
    third = hand_in(course, "zoe")
    server = Server(course["course"], workers=1, batch=1, burst=1, every_minutes=60,
                    log=lambda line: None)
    try:
        assert server.round() == 1  # one a round: wren's latest, who has waited longest
        pages = fetch_feedback(course, "wren")
        # The older hand-in is superseded by the newer one, which is graded: both said.
        assert the_page_says(pages[first.split("+")[2]]) == (
            f"superseded by your hand-in of {handed_in(second)}: only your latest is graded")
        assert "Score" in pages[second.split("+")[2]]
        # The others wait, each with its place.
        [yves] = fetch_feedback(course, "yves").values()
        [zoe] = fetch_feedback(course, "zoe").values()
        assert the_page_says(yves) == "waiting to be graded: 1st in the queue"
        assert the_page_says(zoe) == "waiting to be graded: 2nd in the queue"
        assert status_in_terminal(course, "zoe") == [
            f"{COURSE_ID} backward, handed in {handed_in(third)}: waiting to be graded: 2nd in "
            "the queue"]
        # wren hands in again: the bucket (1 result, then one an hour) holds it, and says until
        # when.
        fourth = hand_in(course, "wren", {**CORRECT, **NO_FACTOR_2})
        assert server.round() == 1  # yves
        assert server.round() == 1  # zoe
        assert server.round() == 0  # wren's fourth waits for the bucket
        lines = status_in_terminal(course, "wren")
        assert lines[0] == (f"{COURSE_ID} backward, handed in {handed_in(first)}: superseded by "
                            f"your hand-in of {handed_in(second)}: only your latest is graded")
        assert lines[1] == (f"{COURSE_ID} backward, handed in {handed_in(second)}: graded: "
                            "10 / 10; Fetch Feedback for its page")
        assert lines[2].startswith(f"{COURSE_ID} backward, handed in {handed_in(fourth)}: held "
                                   "by the rate limit until "), lines
        assert "1 result at once, then one every 60 minutes" in lines[2]
        pages = fetch_feedback(course, "wren")
        assert the_page_says(pages[fourth.split("+")[2]]).startswith("held by the rate limit")
        assert status_in_terminal(course, "zoe") == [
            f"{COURSE_ID} backward, handed in {handed_in(third)}: graded: 10 / 10; Fetch "
            "Feedback for its page"]
    finally:
        server.close()
    # A restart releases no status page as a graded one, and says nothing new.
    server = Server(course["course"], workers=1, burst=1, every_minutes=60, log=lambda line: None)
    try:
        assert "Score" in fetch_feedback(course, "wren")[second.split("+")[2]]
    finally:
        server.close()
