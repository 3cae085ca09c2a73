"""`autograder serve --course DIR`: the official grade seconds after a student submits.

A long-running grader for one course (run it as the instructor, or as a JupyterHub service that
runs as the instructor). It watches the course's nbgrader exchange (`<root>/<course>/inbound`,
where stock `nbgrader submit` and the Assignment List hand in), and for each submission of a
lesson that lands there:

    stage (inbound -> submitted/<student>/<id>/, plain files only, no link followed)
      -> grade.py's `_grade_lesson` (the same engine and records as `autograder grade`:
         gradebook, autograded/, feedback page, the class report's kept report)
      -> release that student's page into the exchange (what nbgrader's release_feedback does)

so that the student's Assignment List (`fetch_feedback`) shows the official score and page.

* The latest submission counts, as in nbgrader: a student's older submissions still waiting are
  superseded by the newest (never graded), and a resubmission's result replaces the last.
* A rate limit per student (a token bucket: `burst` results at once, then one per `every`
  minutes); a page graded with the bucket empty says when the next result comes. Once the
  assignment's due date (the gradebook's) has passed, the last submission before it is graded
  whatever the bucket holds.
* A fair queue: each round grades at most one submission per student, those who have waited
  longest first: one student's twenty resubmissions never delay another's first.
* Restart-safe: every decision is appended to `DIR/serve/journal.jsonl` (fsynced) before its
  page is released, and a submission is graded only where the journal has no word of it; on
  start, a page the journal says was graded but which is not in the exchange is released again.
  Stopped or killed mid-round, nothing is lost (what arrived while it was down is in `inbound/`)
  and nothing whose grade was recorded is graded again.
* A bad or hostile submission costs that submission only: one that cannot be graded gets 0 and
  a page that says why (as `autograder grade` does); one whose name is another student's (anyone
  can write into `inbound/`) or that is a link is refused and journaled, never graded.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shutil
import stat
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .exchange import root_of, submission_owner_ok

#: What a submission may bring into the course (the rest is left in the exchange).
MAX_FILES, MAX_FILE_BYTES, MAX_DEPTH = 100, 20 * 1024 * 1024, 4


class ServeError(RuntimeError):
    """The course cannot be served; the message says why in one line."""


@dataclass
class Submission:
    name: str
    student: str
    assignment: str
    timestamp: datetime
    seen: float  # when this server first saw it (time.time())


def parse(name: str, seen: float) -> Submission | None:
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
        return Submission(name, parts[0], parts[1], when, seen)
    return None


# --- the journal and the buckets: what survives a restart --------------------------------------

class Journal:
    """`serve/journal.jsonl`: one JSON line per submission decided (graded, superseded, refused,
    failed), appended and fsynced before anything is released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["name"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill: that submission is decided again
        self.file = path.open("a")

    def add(self, **entry) -> None:
        entry["at"] = time.time()
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.entries[entry["name"]] = entry

    def close(self) -> None:
        self.file.close()


@dataclass
class Buckets:
    """A token bucket per student: `burst` results at once, then one per `every` seconds
    (`every` 0: no limit). Kept in `serve/buckets.json`: a restart refills nothing."""

    path: Path
    burst: int = 3
    every: float = 0.0
    state: dict[str, list[float]] = field(default_factory=dict)  # student: [tokens, as of]

    def load(self) -> Buckets:
        try:
            self.state = {k: [float(v[0]), float(v[1])]
                          for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            self.state = {}
        return self

    def tokens(self, student: str, now: float) -> float:
        if self.every <= 0:
            return float(self.burst)
        tokens, since = self.state.get(student, [float(self.burst), now])
        return min(float(self.burst), tokens + max(0.0, now - since) / self.every)

    def take(self, student: str, now: float) -> None:
        if self.every > 0:
            self.state[student] = [max(0.0, self.tokens(student, now) - 1.0), now]

    def next_at(self, student: str, now: float) -> float | None:
        """When the student's next result can come (None: at once)."""
        have = self.tokens(student, now)
        return None if have >= 1.0 else now + (1.0 - have) * self.every

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)


# --- staging: inbound -> submitted/, without following a link ----------------------------------

def stage(inbound: Path, sub: Submission, dest: Path) -> None:
    """Copy the submission's plain files (at most MAX_FILES, each at most MAX_FILE_BYTES, at most
    MAX_DEPTH folders down) into a fresh `dest`, opening each folder and file without following a
    link: the student owns the folder and may change it while it is copied."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    top = os.open(sub.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                  dir_fd=os.open(inbound, os.O_RDONLY | os.O_DIRECTORY))
    copied = [0]

    def copy_dir(fd: int, out: Path, depth: int) -> None:
        try:
            names = sorted(os.listdir(fd))
        except OSError:
            return
        for name in names:
            if copied[0] >= MAX_FILES:
                return
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
                try:
                    sub_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue
                try:
                    (out / name).mkdir()
                    copy_dir(sub_fd, out / name, depth + 1)
                finally:
                    os.close(sub_fd)
            elif stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES:
                try:
                    file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
                except OSError:
                    continue  # unreadable (the student's chmod): left out, the grader says so
                with os.fdopen(file_fd, "rb") as src:
                    if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                        continue
                    data = src.read(MAX_FILE_BYTES + 1)
                if len(data) <= MAX_FILE_BYTES:
                    (out / name).write_bytes(data)
                    copied[0] += 1

    try:
        copy_dir(top, dest, 0)
    finally:
        os.close(top)


# --- the server -----------------------------------------------------------------------------------

class Server:
    """Grades a course's submissions as they land in its exchange (see the module's doc)."""

    def __init__(self, course: str | Path, burst: int = 3, every_minutes: float = 0.0,
                 workers: int | None = None, poll: float = 0.5,
                 log: Callable[[str], None] = print, batch: int | None = None,
                 scheduler: str | None = None) -> None:
        """`scheduler` (a dask.distributed address): grade on that cluster's workers, which
        need only this package installed (as `autograder grade --scheduler`); the gradebook,
        pages and journal are written here."""
        from nbgrader.coursedir import CourseDirectory

        from . import put_python_on_path
        from .grade import GradeError, course_config, course_lessons

        put_python_on_path()
        self.course = Path(course).resolve()
        if not (self.course / "nbgrader_config.py").is_file():
            raise ServeError(f"{self.course} is not a course: run `autograder release --course "
                             f"{self.course}` first")
        self.cfg = course_config(self.course)
        self.course_id = CourseDirectory(config=self.cfg).course_id
        try:
            self.lessons = {lesson.id: lesson for lesson in course_lessons(self.course, self.cfg)}
        except GradeError as exc:
            raise ServeError(str(exc)) from None
        self.exchange = root_of(self.cfg) / self.course_id
        self.inbound = self.exchange / "inbound"
        self.feedback = self.exchange / "feedback"
        if not self.inbound.is_dir():
            raise ServeError(f"no {self.inbound}: release the course into its exchange first "
                             f"(`autograder release --course {self.course}`)")
        self.workers = workers or os.cpu_count() or 1
        self.batch = batch or max(8, 4 * self.workers)
        self.poll, self.log = poll, log
        state = self.course / "serve"
        state.mkdir(exist_ok=True)
        self.lock = (state / "lock").open("w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServeError(f"another `autograder serve` serves {self.course}") from None
        self.journal = Journal(state / "journal.jsonl")
        self.buckets = Buckets(state / "buckets.json", burst, every_minutes * 60.0).load()
        self.seen: dict[str, float] = {}
        self._graded: tuple[int, dict] | None = None  # (journal size, last_graded's answers)
        self.warm = True
        self.duedates: dict[str, datetime | None] = {}
        self.release_missing_pages()
        self.pool = None  # grade.Pool: a Dask cluster's, kept open while serving
        self.closing = ExitStack()
        if scheduler is not None:
            from .grade import executor_for

            try:
                self.pool = self.closing.enter_context(executor_for(self.workers, scheduler))
            except GradeError as exc:
                self.close()
                raise ServeError(str(exc)) from None
            self.workers = self.pool.slots
            self.batch = batch or max(8, 4 * self.workers)

    def close(self) -> None:
        self.journal.close()
        self.lock.close()
        self.closing.close()

    # -- what is waiting ------------------------------------------------------------------------

    def scan(self) -> list[Submission]:
        """The submissions of a lesson that the journal has no word of (refusing, once, those
        whose owner is not the student they name)."""
        now = time.time()
        try:
            names = os.listdir(self.inbound)
        except OSError as exc:
            self.log(f"cannot list {self.inbound}: {exc}")
            return []
        waiting = []
        for name in names:
            if name in self.journal.entries:
                continue
            sub = parse(name, self.seen.setdefault(name, now))
            if sub is None or sub.assignment not in self.lessons:
                continue  # not a submission of a lesson: stock `nbgrader collect` is for it
            if not submission_owner_ok(self.inbound / name, sub.student):
                self.journal.add(name=name, state="refused", student=sub.student,
                                 assignment=sub.assignment,
                                 note="not a folder owned by the student it names")
                self.log(f"refused {name}: not a folder owned by {sub.student}")
                continue
            waiting.append(sub)
        return waiting

    def last_graded(self, student: str, assignment: str) -> tuple[datetime, str] | None:
        """(timestamp, name) of the student's latest graded submission of `assignment`."""
        from nbgrader.utils import parse_utc

        if self._graded is None or self._graded[0] != len(self.journal.entries):
            latest: dict[tuple[str, str], tuple[datetime, str]] = {}
            for e in self.journal.entries.values():
                if e.get("state") == "graded":
                    key, when = (e["student"], e["assignment"]), parse_utc(e["timestamp"])
                    if key not in latest or when > latest[key][0]:
                        latest[key] = (when, e["name"])
            self._graded = (len(self.journal.entries), latest)
        return self._graded[1].get((student, assignment))

    def duedate(self, assignment: str) -> datetime | None:
        if assignment not in self.duedates:
            from nbgrader.api import Gradebook

            with Gradebook(self.cfg.CourseDirectory.db_url, self.course_id) as gb:
                due = gb.find_assignment(assignment).duedate
            self.duedates[assignment] = due  # naive UTC, as nbgrader keeps times
        return self.duedates[assignment]

    def pick(self, waiting: list[Submission], now: float) -> list[tuple[Submission, list[Submission]]]:
        """This round's work: (the submission to grade, those it supersedes), one per student and
        lesson, those who have waited longest first, at most `batch`."""
        by_key: dict[tuple[str, str], list[Submission]] = {}
        for sub in waiting:
            by_key.setdefault((sub.student, sub.assignment), []).append(sub)
        chosen = []
        for (student, assignment), subs in by_key.items():
            subs.sort(key=lambda s: s.timestamp)
            graded = self.last_graded(student, assignment)
            stale = [s for s in subs if graded is not None and s.timestamp <= graded[0]]
            fresh = [s for s in subs if s not in stale]
            for s in stale:  # older than the result the student already has (a restart
                # between a grade's line and its superseded lines leaves such a submission)
                self.journal.add(name=s.name, state="superseded", student=student,
                                 assignment=assignment, timestamp=str(s.timestamp),
                                 by=graded[1])
            if not fresh:
                continue
            latest = fresh[-1]
            if self.buckets.tokens(student, now) < 1.0:
                due = self.duedate(assignment)
                if due is None or datetime.now(timezone.utc).replace(tzinfo=None) < due:
                    continue  # waits for the next token
                on_time = [s for s in fresh if s.timestamp <= due]
                if not on_time:
                    continue  # late, and rate-limited as any other
                latest = on_time[-1]  # the last before the due date: graded whatever the bucket
            older = [s for s in fresh if s.timestamp < latest.timestamp]
            chosen.append((latest, older, min(s.seen for s in fresh)))
        chosen.sort(key=lambda c: c[2])
        return [(latest, older) for latest, older, _ in chosen[:self.batch]]

    # -- one round ------------------------------------------------------------------------------

    def round(self) -> int:
        """Grade what is waiting (one round); the number of submissions graded."""
        now = time.time()
        work = self.pick(self.scan(), now)
        by_lesson: dict[str, list[tuple[Submission, list[Submission]]]] = {}
        for item in work:
            by_lesson.setdefault(item[0].assignment, []).append(item)
        return sum(self.grade(assignment, items) for assignment, items in by_lesson.items())

    def grade(self, assignment: str, items: list[tuple[Submission, list[Submission]]]) -> int:
        from .record import one_line

        lesson = self.lessons[assignment]
        staged = []
        for sub, older in items:
            folder = self.course / "submitted" / sub.student / assignment
            try:
                stage(self.inbound, sub, folder)
            except OSError as exc:
                self.journal.add(name=sub.name, state="refused", student=sub.student,
                                 assignment=assignment, note=f"cannot be read: {one_line(exc)}")
                self.log(f"refused {sub.name}: cannot be read ({one_line(exc)})")
                continue
            staged.append((sub, older))
        if not staged:
            return 0
        try:
            outcomes = self._grade_lesson(lesson, [s.student for s, _ in staged])
        except Exception as exc:  # noqa: BLE001 - one at a time, so that it costs one
            if len(staged) > 1:
                return sum(self.grade(assignment, [item]) for item in items
                           if item in staged)
            sub = staged[0][0]
            self.journal.add(name=sub.name, state="failed", student=sub.student,
                             assignment=assignment, timestamp=str(sub.timestamp),
                             note=one_line(exc))
            self.log(f"failed {sub.name}: {one_line(exc)}")
            return 0
        now = time.time()
        for (sub, older), outcome in zip(staged, outcomes, strict=True):
            self.buckets.take(sub.student, now)
            self.buckets.save()  # before the journal: a restart never gives a result back free
            page = self.page(lesson, sub.student)
            next_at = self.buckets.next_at(sub.student, now)
            if next_at is not None and page.is_file():
                add_note(page, next_result_note(next_at, self.buckets))
            checksum = self.checksum(sub, lesson)
            self.journal.add(name=sub.name, state="graded", student=sub.student,
                             assignment=assignment, timestamp=str(sub.timestamp),
                             score=outcome.score, max_score=outcome.max_score,
                             reason=outcome.reason, feedback=checksum)
            for old in older:
                self.journal.add(name=old.name, state="superseded", student=sub.student,
                                 assignment=assignment, timestamp=str(old.timestamp),
                                 by=sub.name)
            self.release(page, checksum)
            self.log(f"graded {sub.student} {assignment}: {outcome.score:g} / "
                     f"{outcome.max_score:g}{' (' + outcome.reason + ')' if outcome.reason else ''}"
                     f", {now - sub.seen:.1f} s after it arrived"
                     + (f", {len(older)} older superseded" if older else ""))
        return len(staged)

    def _grade_lesson(self, lesson, students: list[str]):
        from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
        from sqlalchemy.exc import SAWarning

        from .grade import _grade_lesson

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            warnings.simplefilter("ignore", DuplicateCellId)
            outcomes = _grade_lesson(self.course, self.cfg, self.course_id, lesson, students,
                                     min(self.workers, len(students)), lambda *a: None,
                                     self.pool, warm=self.warm)
        self.warm = False
        return outcomes

    # -- feedback into the exchange -------------------------------------------------------------

    def page(self, lesson, student: str) -> Path:
        from .feedback import page

        return page(self.course, student, lesson)

    def checksum(self, sub: Submission, lesson) -> str | None:
        """The page's name in the exchange: nbgrader's hash of the submission's secret (which the
        student's own cache holds: no one else can find the page)."""
        from nbgrader.utils import notebook_hash

        secret = self.course / "submitted" / sub.student / sub.assignment / "submission_secret.txt"
        try:
            return notebook_hash(secret=secret.read_text(), notebook_id=lesson.notebook_id)
        except OSError:
            return None  # no secret: no one could fetch the page (written in the course only)

    def release(self, page: Path, checksum: str | None) -> None:
        """What nbgrader's release_feedback does for one page: `feedback/<hash>.html`, whole or
        not at all."""
        if checksum is None or not page.is_file():
            return
        if not self.feedback.is_dir():
            self.feedback.mkdir()
            self.feedback.chmod(0o711)  # as nbgrader makes it: not listable
        tmp = self.feedback / f"{checksum}-tmp.html"
        shutil.copyfile(page, tmp)
        tmp.chmod(0o644)
        os.replace(tmp, self.feedback / f"{checksum}.html")

    def release_missing_pages(self) -> None:
        """After a stop between journal and release: the last graded page of each student, where
        the exchange does not have it yet."""
        last: dict[tuple[str, str], dict] = {}
        for entry in self.journal.entries.values():
            if entry.get("state") == "graded":
                key = (entry["student"], entry["assignment"])
                if key not in last or entry["timestamp"] > last[key]["timestamp"]:
                    last[key] = entry
        for (student, assignment), entry in last.items():
            checksum = entry.get("feedback")
            if checksum and assignment in self.lessons and \
                    not (self.feedback / f"{checksum}.html").is_file():
                self.release(self.page(self.lessons[assignment], student), checksum)
                self.log(f"released again {student} {assignment}: its page had not reached "
                         "the exchange")

    # -- forever --------------------------------------------------------------------------------

    def serve(self, until: Callable[[], bool] = lambda: False) -> None:
        while not until():
            if self.round() == 0:
                time.sleep(self.poll)


def next_result_note(next_at: float, buckets: Buckets) -> str:
    when = datetime.fromtimestamp(next_at, timezone.utc).strftime("%H:%M UTC on %d %b")
    every = buckets.every / 60.0
    return (f"Your next official result comes at {when} at the earliest: {buckets.burst} results "
            f"come at once, then one every {every:g} minutes. Submit as often as you like: your "
            "latest submission is the one graded then, and your last submission before the due "
            "date is always graded.")


def add_note(page: Path, note: str) -> None:
    """The rate limit's note, at the top of the page."""
    text = page.read_text()
    banner = (f'<div class="autograder-next" style="border:2px solid #c60;padding:0.5em;'
              f'margin:0.5em">{html.escape(note)}</div>')
    match = re.search(r"<body[^>]*>", text)
    at = match.end() if match else 0
    page.write_text(text[:at] + banner + text[at:])
