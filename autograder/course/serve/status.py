"""Where each hand-in stands, in the student's words, where the student can read it.

A student who hands in sees nothing of `serve` but the exchange. So for every hand-in it knows,
`serve` writes its state under the name nbgrader's `release_feedback` gives that hand-in's
feedback: `<root>/<course>/feedback/<hash>.json` (and, until it is graded, `<hash>.html`), where
the hash is nbgrader's of the hand-in's own submission secret, which only that student's
nbgrader cache holds (the folder is not listable): no one else can find it.

* waiting: its place in the queue; "being graded now"; or that a newer hand-in of theirs will be
  graded in its place (the latest counts);
* held by the rate limit, until when;
* graded: its score (and "late"), and where a later hand-in has been graded since;
* superseded: by which hand-in (its time, as the student's Assignment List shows it);
* not graded: that it could not be, in one line (the instructor's log says why).

Fetch Feedback on any hand-in then brings a page that says this (a graded one brings its graded
page), and `autograder status`, in the student's terminal, reads the same files from the
student's nbgrader cache (`lines_for_student`). Each file is written whole (a temporary file,
then a rename) and only when what it says changes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from ... import files
from .names import Submission, parse
from .stage import MAX_SECRET_BYTES

#: The largest status file `autograder status` reads (`serve` writes a few hundred bytes).
MAX_STATUS_BYTES = 64 * 1024


def clock(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M UTC on %d %b")


def stamp(claimed: datetime) -> str:
    """A hand-in's time as its name (and the student's Assignment List) has it, to the second."""
    return claimed.strftime("%Y-%m-%d %H:%M:%S UTC")


def ordinal(n: int) -> str:
    tail = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{tail}"


def of_name(name: str) -> str:
    """The time a hand-in's name says, as the student knows it (their own cache's folder)."""
    sub = parse(name)
    return stamp(sub.claimed) if sub is not None else name


class Statuses:
    """What `serve` has said of each hand-in, and the writing of it into the exchange."""

    def __init__(self, inbound: Path, feedback: Path, notebook_ids: dict[str, str]) -> None:
        self.inbound, self.feedback, self.notebook_ids = inbound, feedback, notebook_ids
        self.hashes: dict[str, str | None] = {}
        self.said: dict[str, dict] = {}
        self.journal_size = -1

    # -- what to say ------------------------------------------------------------------------------

    def waiting(self, waiting: list[Submission], work: list, buckets, now: float,
                decided: dict[str, dict]) -> None:
        """The hand-ins still waiting after this round's pick: `work` is being graded now, the
        rest wait in the queue (its order: who has waited longest), for the rate limit, or for a
        newer hand-in of theirs."""
        chosen = {sub.name for sub, _ in work}
        groups: dict[tuple[str, str], list[Submission]] = {}
        for sub in waiting:
            if sub.name not in decided:
                groups.setdefault((sub.student, sub.assignment), []).append(sub)
        queue = []
        for (student, _), subs in groups.items():
            subs.sort(key=lambda s: (s.at, s.name))
            latest = next((s for s in subs if s.name in chosen), subs[-1])
            for sub in subs:
                if sub is latest:
                    continue
                before = f"your hand-in of {stamp(latest.claimed)}"
                self.say(sub, "waiting", f"waiting: {before}, newer, is graded in its place "
                         "(your latest counts)" if sub.at <= latest.at else
                         f"waiting: to be graded after {before}")
            if latest.name in chosen:
                self.say(latest, "waiting", "being graded now")
            elif buckets.tokens(student, now) < 1.0:
                until = buckets.next_at(student, now) or now
                results = f"{buckets.burst} result{'s' if buckets.burst != 1 else ''}"
                self.say(latest, "held", f"held by the rate limit until {clock(until)}: "
                         f"{results} at once, then one every {buckets.every / 60.0:g} minutes; "
                         "your latest hand-in is graded then", until=until)
            else:
                queue.append((min(s.at for s in subs), latest.name, latest))
        queue.sort(key=lambda q: q[:2])
        for place, (_, _, sub) in enumerate(queue, 1):
            self.say(sub, "waiting", f"waiting to be graded: {ordinal(place)} in the queue",
                     place=place)

    def decided(self, entries: dict[str, dict]) -> None:
        """Each hand-in the journal has decided (graded, superseded, refused, failed); only where
        the journal grew since the last time."""
        if len(entries) == self.journal_size:
            return
        self.journal_size = len(entries)
        latest: dict[tuple[str, str], dict] = {}
        for entry in entries.values():
            if entry.get("state") == "graded" and entry.get("counted", True):
                key, when = (entry.get("student"), entry.get("assignment")), \
                    str(entry.get("timestamp"))
                if key not in latest or when > str(latest[key].get("timestamp")):
                    latest[key] = entry
        for name, entry in entries.items():
            sub = parse(name)
            if sub is None or entry.get("assignment") not in self.notebook_ids:
                continue
            state = entry.get("state")
            if state == "graded" and not entry.get("counted", True):
                # kept out of the grade by the late policy: its line is the one its page opens
                # with (late.Late.said: when it came, what became of it, the grade that stays)
                said = str(entry.get("late") or "Late: kept out of your grade")
                self.say(sub, "graded", f"{said}; Fetch Feedback for its page",
                         score=entry.get("score"), max_score=entry.get("max_score"))
            elif state == "graded":
                last = latest.get((entry.get("student"), entry.get("assignment")), entry)
                late = " (late)" if entry.get("seconds_late") else ""
                since = ("" if last is entry else
                         f"; your hand-in of {of_name(last['name'])} has been graded since")
                self.say(sub, "graded", f"graded: {entry.get('score', 0):g} / "
                         f"{entry.get('max_score', 0):g}{late}{since}; Fetch Feedback for "
                         "its page", score=entry.get("score"), max_score=entry.get("max_score"))
            elif state == "superseded":
                by = entry.get("by", "")
                self.say(sub, "superseded", f"superseded by your hand-in of {of_name(by)}: only "
                         "your latest is graded", by=of_name(by))
            elif state in ("refused", "failed"):
                self.say(sub, "not graded", "not graded: it could not be read as a hand-in of "
                         "yours (your instructor's log says why); hand in again")

    # -- writing it -------------------------------------------------------------------------------

    def say(self, sub: Submission, state: str, line: str, **more) -> None:
        """Write what is said of `sub` where its student's Fetch Feedback looks (a page, unless
        graded, whose page is its feedback), where it changed."""
        status = {"state": state, "line": line, "assignment": sub.assignment,
                  "handed_in": stamp(sub.claimed), **more}
        if self.said.get(sub.name) == status:
            return
        checksum = self.hash_of(sub)
        if checksum is None:
            self.said[sub.name] = status  # no secret: there is nowhere to say it
            return
        where = self.feedback / f"{checksum}.json"
        if sub.name not in self.said and read_status(where) == status:  # said before a restart
            self.said[sub.name] = status
            return
        if not self.feedback.is_dir():
            self.feedback.mkdir()
            self.feedback.chmod(0o711)  # as nbgrader makes it: not listable
        if state != "graded":
            from ..pages import render

            notebook = f"{self.notebook_ids[sub.assignment]}.ipynb"
            write_whole(self.feedback / f"{checksum}.html", render(
                "hand_in_status.html.j2", notebook=notebook, line=line,
                state="held by the rate limit" if state == "held" else state,
                handed_in=status["handed_in"], as_of=clock(time.time())))
        write_whole(where, json.dumps(status))
        self.said[sub.name] = status

    def hash_of(self, sub: Submission) -> str | None:
        """nbgrader's name for `sub`'s feedback: the hash of its submission secret (read from
        `inbound/`, no link followed, at most MAX_SECRET_BYTES), None where it has none."""
        if sub.name not in self.hashes:
            from nbgrader.utils import notebook_hash

            try:
                raw = files.read_under(self.inbound, (sub.name, "submission_secret.txt"),
                                       MAX_SECRET_BYTES)
                secret = raw.decode("utf-8") if raw else None
            except (files.Refused, UnicodeDecodeError):
                secret = None
            notebook_id = self.notebook_ids.get(sub.assignment)
            self.hashes[sub.name] = None if not secret or notebook_id is None else \
                notebook_hash(secret=secret, notebook_id=notebook_id)
        return self.hashes[sub.name]

    def released(self, checksum: str) -> bool:
        """Whether `feedback/<checksum>.html` is a graded page, not one of these status pages
        (whose mark is in their first MARK_WITHIN bytes; a graded page's are nbconvert's head)."""
        try:
            with (self.feedback / f"{checksum}.html").open("rb") as page:
                return STATUS_MARK not in page.read(MARK_WITHIN)
        except OSError:
            return False


#: What marks a status page (the template's), and how far into a page it is looked for.
STATUS_MARK = b'id="autograder-status"'
MARK_WITHIN = 8192


def write_whole(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.stem}-tmp{path.suffix}")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def read_status(path: Path) -> dict | None:
    """A status file, or None where there is none usable (at most MAX_STATUS_BYTES)."""
    try:
        raw = files.read_under(path.parent, (path.name,), MAX_STATUS_BYTES)
        status = json.loads(raw) if raw else None
    except (files.Refused, ValueError):
        return None
    return status if isinstance(status, dict) else None


# --- the student's side: `autograder status` ---------------------------------------------------

def lines_for_student(cache: Path, root: Path, course: str | None = None) -> Iterator[str]:
    """One line per hand-in in the student's nbgrader cache (of `course`, or of every course
    there): when it was handed in and where it stands, as `serve` said it in the exchange."""
    from nbgrader.utils import notebook_hash

    courses = [cache / course] if course else sorted(p for p in cache.iterdir() if p.is_dir()) \
        if cache.is_dir() else []
    for folder in courses:
        if not folder.is_dir():
            continue
        for hand_in in sorted(folder.iterdir(), key=lambda p: p.name.split("+")[-1]):
            parts = hand_in.name.split("+")
            if len(parts) != 3 or not hand_in.is_dir():
                continue
            _, assignment, when = parts
            try:
                raw = files.read_under(hand_in, ("submission_secret.txt",), MAX_SECRET_BYTES)
                secret = raw.decode("utf-8") if raw else None
            except (files.Refused, UnicodeDecodeError):
                secret = None
            said = []
            for notebook in sorted(hand_in.glob("*.ipynb")) if secret else []:
                checksum = notebook_hash(secret=secret, notebook_id=notebook.stem)
                feedback = root / folder.name / "feedback"
                status = read_status(feedback / f"{checksum}.json")
                if status is not None and isinstance(status.get("line"), str):
                    said.append(status["line"])
                elif (feedback / f"{checksum}.html").is_file():
                    said.append("graded: Fetch Feedback for its page")
            head = f"{folder.name} {assignment}, handed in {short(when)}"
            yield f"{head}: " + ("; ".join(said) if said else
                                 "no word from the grader yet (it may not be running: ask "
                                 "your instructor if this lasts)")


def short(when: str) -> str:
    """nbgrader's timestamp in a cache folder's name, to the second."""
    from nbgrader.utils import parse_utc

    try:
        return stamp(parse_utc(when))
    except Exception:  # noqa: BLE001 - dateutil raises several kinds: shown as it is
        return when
