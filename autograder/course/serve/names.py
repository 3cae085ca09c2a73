"""A hand-in's folder name in the exchange, read (the student's: shown, never trusted), and
how far a time the student wrote may be from the server's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

#: How far the student's times (the folder's name, `timestamp.txt`) may be from the server's
#: before the log says so (nbgrader's submit takes its time before it copies the files).
DISAGREE_SECONDS = 60.0

@dataclass
class Submission:
    name: str
    student: str
    assignment: str
    claimed: datetime  # what its name says (the student's: shown, never used)
    at: float = 0.0  # the server's time of it (see `Server.scan`), time.time()'s scale
    handed: float = 0.0  # when the student handed it in, for the log alone (`handed_in`)

    @property
    def timestamp(self) -> datetime:
        """`at` as nbgrader keeps times: naive UTC."""
        return utc(self.at)


def utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, timezone.utc).replace(tzinfo=None)


def parse(name: str) -> Submission | None:
    """A submission folder's name in `inbound/`: student+assignment+timestamp+random (nbgrader's;
    the student's name may hold a `+`, as nbgrader's collect allows), or without the random."""
    from nbgrader.utils import parse_utc

    for parts in (name.rsplit("+", 3), name.rsplit("+", 2)):  # with nbgrader's random, without
        if len(parts) < 3 or not all(parts[:3]):
            continue
        try:
            when = parse_utc(parts[2])
        except Exception:  # noqa: BLE001 - dateutil raises several kinds; not this layout
            continue
        return Submission(name, parts[0], parts[1], when)
    return None


def not_a_student(student: str) -> str | None:
    """Why a name's student part cannot be a student's folder and gradebook id, or None."""
    if student in (".", ".."):
        return "its student part is a folder's dot"
    try:
        student.encode("utf-8")
    except UnicodeEncodeError:
        return "its student part is not UTF-8 text"
    return None



def far(claimed: datetime, server: datetime) -> bool:
    """Whether a time the student wrote is further from the server's than a submit takes."""
    return abs((claimed - server).total_seconds()) > DISAGREE_SECONDS


#: The longest a submit may take (nbgrader writes `timestamp.txt` before it copies the files):
#: a student's time earlier than the server's by more is not believed, even in the log.
MAX_SUBMIT_SECONDS = 600.0


def handed_in(sub: Submission, in_file: datetime | None) -> float:
    """When the student handed `sub` in, for the log's wait (never for a grade, the rate limit
    or the due date): the time nbgrader's submit wrote in `timestamp.txt` (else in the folder's
    name) as it began, where that is no later than the server's time of it and no more than
    MAX_SUBMIT_SECONDS earlier; the server's time otherwise."""
    for claimed in (in_file, sub.claimed):
        if claimed is None:
            continue
        at = claimed.replace(tzinfo=timezone.utc).timestamp()
        if sub.at - MAX_SUBMIT_SECONDS <= at <= sub.at:
            return at
    return sub.at
