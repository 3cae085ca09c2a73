"""The reports `autograder grade` keeps for the class report: one JSON file per student,
`reports/<assignment>/students/<student>.json`, written in one step and read back field by field.

The kept reports are written by the grader's trusted side, but a course folder is only files:
each is read without following a link, at most `MAX_KEPT_BYTES`, and checked field by field
before anything of it is used. One that is not right is named, in one line, on the page.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ... import files
from ...present.report import REFERENCE_NOTE, Report

FORMAT = 1  # of a kept report
MAX_KEPT_BYTES = 4 << 20
MAX_CHECKS = 1000
MAX_TEXT = 4000  # characters of a message, a reason or a note
MAX_CODES = 50  # mistake codes on one check
MAX_NOTES = 100
#: A mistake code or a target, as the catalogue writes them: plain names, dots and dashes.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


class Unreadable(ValueError):
    """A kept report that is not one; the message says why, in one line."""


def folder(course: Path, assignment: str) -> Path:
    """Where an assignment's class report is written, its kept reports under it."""
    return Path(course) / "reports" / assignment


def _kept_parts(assignment: str, student: str) -> tuple[str, ...] | None:
    if not student or "/" in student or student in (".", "..") or "/" in assignment:
        return None
    return ("reports", assignment, "students", f"{student}.json")


def keep(course: Path, assignment: str, student: str, report: Report | None,
         reason: str | None) -> None:
    """Keep what grading found for `student`: `reports/<assignment>/students/<student>.json`, the
    report as `autograder check --json` gives it (every note: the instructor's log, the sandbox's
    layers too), or the reason it could not be graded. Replaces the last one in one step; where it
    cannot be written, the class report says so for this student, and grading goes on."""
    parts = _kept_parts(assignment, student)
    if parts is None:
        return
    path = Path(course).joinpath(*parts)
    data = {"format": FORMAT, "student": student, "assignment": assignment, "reason": reason,
            "report": report.to_dict() if report is not None else None}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True)
class KeptCheck:
    """What the class report uses of one check."""

    target: str
    passed: bool
    points: float
    max_points: float
    message: str
    mistakes: tuple[str, ...]


@dataclass
class Kept:
    reason: str | None
    checks: list[KeptCheck]
    reference: list[str] = field(default_factory=list)  # its notes on the lesson's reference


def read_kept(course: Path, assignment: str, student: str) -> Kept | None:
    """`student`'s kept report, checked; None where there is none. Raises `Unreadable`."""
    parts = _kept_parts(assignment, student)
    if parts is None:
        return None
    try:
        raw = files.read_under(Path(course), parts, MAX_KEPT_BYTES)
    except files.Refused as exc:  # its reason speaks of submissions: keep what it says of the file
        raise Unreadable(str(exc).split(":")[0]) from None
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Unreadable(f"{'/'.join(parts)} is not JSON") from None
    try:
        return parse_kept(data, assignment, student)
    except Unreadable as exc:
        raise Unreadable(f"{'/'.join(parts)} is not a report of `autograder grade`: {exc}") from None


def parse_kept(data, assignment: str, student: str) -> Kept:
    """A kept report from its JSON data, each field checked (type, size, form)."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise Unreadable(what)

    def text(value, what: str) -> str:
        need(isinstance(value, str) and len(value) <= MAX_TEXT, f"{what} is not a short text")
        return value

    def number(value, what: str) -> float:
        need(isinstance(value, (int, float)) and not isinstance(value, bool)
             and math.isfinite(value), f"{what} is not a number")
        return float(value)

    need(isinstance(data, dict), "not an object")
    need(data.get("format") == FORMAT, f"format is not {FORMAT}")
    need(data.get("student") == student, "it is another student's")
    need(data.get("assignment") == assignment, "it is another assignment's")
    reason = data.get("reason")
    if reason is not None:
        reason = text(reason, "reason")
    report = data.get("report")
    need(report is None or isinstance(report, dict), "report is not an object")
    need((report is None) != (reason is None), "it holds neither a report nor a reason, or both")
    if report is None:
        return Kept(reason, [])
    raw_checks = report.get("checks")
    need(isinstance(raw_checks, list) and len(raw_checks) <= MAX_CHECKS,
         f"checks is not a list of at most {MAX_CHECKS}")
    notes = report.get("notes", [])
    need(isinstance(notes, list) and len(notes) <= MAX_NOTES, "notes is not a short list")
    for note in notes:
        text(note, "a note")
    said = [n for n in notes if n.startswith(REFERENCE_NOTE)]
    checks = []
    for i, c in enumerate(raw_checks):
        need(isinstance(c, dict), f"check {i} is not an object")
        target = text(c.get("target"), f"check {i}'s target")
        need(bool(NAME.fullmatch(target)), f"check {i}'s target is not a name")
        need(isinstance(c.get("passed"), bool), f"check {i}'s passed is not true or false")
        codes = c.get("mistakes")
        need(isinstance(codes, list) and len(codes) <= MAX_CODES
             and all(isinstance(m, str) and NAME.fullmatch(m) for m in codes),
             f"check {i}'s mistakes are not a short list of codes")
        points, out_of = number(c.get("points"), f"check {i}'s points"), number(
            c.get("max_points"), f"check {i}'s max_points")
        need(0 <= points <= out_of, f"check {i}'s points are not between 0 and max_points")
        checks.append(KeptCheck(target, c["passed"], points, out_of,
                            text(c.get("message"), f"check {i}'s message"), tuple(codes)))
    return Kept(None, checks, said)
