"""What `serve` says of each waiting hand-in (serve/status.py), read back as the student reads it:
nbgrader's hash of the hand-in's own secret names its files in the exchange's feedback folder."""

from __future__ import annotations

import time
from pathlib import Path

from autograder.course.serve.buckets import Buckets
from autograder.course.serve.names import parse
from autograder.course.serve.status import Statuses, lines_for_student, read_status


def hand_in(inbound: Path, cache: Path, student: str, when: str, secret: str):
    """A hand-in as nbgrader's submit leaves it: in inbound/ (with its random part) and in the
    student's cache, the same secret in both."""
    name = f"{student}+backward+2026-12-08 {when}.000000 UTC"
    for folder in (inbound / f"{name}+{secret[:6]}", cache / "backprop" / name):
        folder.mkdir(parents=True)
        (folder / "submission_secret.txt").write_text(secret)
        (folder / "backward.ipynb").write_text("{}")
    sub = parse(f"{name}+{secret[:6]}")
    sub.at = time.time() - 100 + int(when[-2:])
    return sub


def test_the_queue_the_rate_limit_and_a_newer_hand_in_are_each_said(tmp_path):
    inbound, feedback, cache = tmp_path / "inbound", tmp_path / "backprop" / "feedback", \
        tmp_path / "cache"
    feedback.parent.mkdir()  # the course's folder in the exchange, as `release` makes it
    subs = {key: hand_in(inbound, cache / student, student, when, f"{key}-secret-0123456789")
            for key, student, when in (("a1", "ann", "10:00:01"), ("b1", "ben", "10:00:02"),
                                       ("a2", "ann", "10:00:03"), ("c1", "cat", "10:00:04"),
                                       ("d1", "dan", "10:00:05"))}
    buckets = Buckets(tmp_path / "buckets.json", burst=1, every=3600.0)
    now = time.time()
    buckets.take("dan", now)  # dan had his one result: his next waits an hour
    statuses = Statuses(inbound, feedback, {"backward": "backward"})
    statuses.waiting(list(subs.values()), [(subs["b1"], [])], buckets, now, decided={})

    def said(student: str) -> list[str]:
        return [line.split(" UTC: ", 1)[1]
                for line in lines_for_student(cache / student, tmp_path, "backprop")]

    assert said("ben") == ["being graded now"]
    assert said("ann") == [
        "waiting: your hand-in of 2026-12-08 10:00:03 UTC, newer, is graded in its place (your "
        "latest counts)",
        "waiting to be graded: 1st in the queue"]  # ann has waited longest
    assert said("cat") == ["waiting to be graded: 2nd in the queue"]
    [dan] = said("dan")
    assert dan.startswith("held by the rate limit until ") and "one every 60 minutes" in dan
    # Each says it once: a second look, with nothing changed, writes nothing.
    pages = sorted(feedback.iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in pages}
    time.sleep(0.05)
    statuses.waiting(list(subs.values()), [(subs["b1"], [])], buckets, now, decided={})
    assert {p: p.stat().st_mtime_ns for p in pages} == stamps
    assert len(pages) == 2 * len(subs)  # a page and a status file each, nothing else
    assert all(read_status(p) is not None for p in pages if p.suffix == ".json")


def test_a_hand_in_with_a_link_for_a_secret_gets_no_word_and_costs_nothing(tmp_path):
    inbound, feedback = tmp_path / "inbound", tmp_path / "backprop" / "feedback"
    feedback.parent.mkdir()
    sub = hand_in(inbound, tmp_path / "cache", "eve", "10:00:01", "eve-secret-0123456789")
    secret = inbound / sub.name / "submission_secret.txt"
    secret.unlink()
    secret.symlink_to("/dev/zero")
    Statuses(inbound, feedback, {"backward": "backward"}).waiting(
        [sub], [], Buckets(tmp_path / "b.json"), time.time(), decided={})
    assert not feedback.exists()
