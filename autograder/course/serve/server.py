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
  can write into `inbound/`) or that is a link is refused and journaled, never graded. Each
  hand-in is decided inside its own guard: whatever its files hold, a failure is journaled as
  its result with one line for the instructor, the round goes on, and a restart never meets it
  again.
* The time of a hand-in is the server's: when its folder or anything in it last changed (the
  ctimes, which only root can set back), or when this server first saw that content, whichever
  is earlier. Never the folder's name or its `timestamp.txt`, which the student writes: the rate
  limit, the due date and the gradebook's timestamp (the staged `timestamp.txt`, from which
  nbgrader computes lateness) all use it, and the log says where the student's times disagree.
* Every line of the log has its control characters shown as escapes (`terminal.visible`, as
  `check` and `grade` show student text): a folder name is the student's.
"""

from __future__ import annotations

import fcntl
import html
import itertools
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

from .. import files
from ..present.terminal import visible
from .exchange import root_of, submission_owner_ok

#: What a submission may bring into the course (the rest is left in the exchange).
MAX_FILES, MAX_FILE_BYTES, MAX_DEPTH = 100, 20 * 1024 * 1024, 4
#: Entries looked at for a hand-in's time, each round it waits (more than staging copies).
MAX_ENTRIES_TIMED = 4 * MAX_FILES
#: How far the student's times (the folder's name, `timestamp.txt`) may be from the server's
#: before the log says so (nbgrader's submit takes its time before it copies the files).
DISAGREE_SECONDS = 60.0
#: The largest `submission_secret.txt` read (nbgrader writes a short line).
MAX_SECRET_BYTES = 4096


class ServeError(RuntimeError):
    """The course cannot be served; the message says why in one line."""


@dataclass
class Submission:
    name: str
    student: str
    assignment: str
    claimed: datetime  # what its name says (the student's: shown, never used)
    at: float = 0.0  # the server's time of it (see `Server.scan`), time.time()'s scale

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

def open_submission(inbound: Path, name: str) -> int:
    """A descriptor of `inbound/name`, a folder opened without following a link."""
    parent = os.open(inbound, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    finally:
        os.close(parent)


def last_change(inbound: Path, name: str) -> float:
    """When the submission folder or anything in it last changed: the latest ctime of the folder
    and of its first MAX_ENTRIES_TIMED entries (MAX_DEPTH folders down, no link followed). A
    student can make it later (touch a file), never earlier: only root sets a ctime back.
    Raises OSError where the folder cannot be opened."""
    top = open_submission(inbound, name)
    latest = os.fstat(top).st_ctime
    left = MAX_ENTRIES_TIMED
    stack = [(top, 0)]
    try:
        while stack and left > 0:
            fd, depth = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in itertools.islice(entries, left):
                        left -= 1
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        latest = max(latest, st.st_ctime)
                        if stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
                            try:
                                stack.append((os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY
                                                      | os.O_NOFOLLOW, dir_fd=fd), depth + 1))
                            except OSError:
                                continue
            except OSError:
                pass
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return latest


def stage(inbound: Path, sub: Submission, dest: Path) -> float:
    """Copy the submission's plain files (at most MAX_FILES, each at most MAX_FILE_BYTES, at most
    MAX_DEPTH folders down) into a fresh `dest`, opening each folder and file without following a
    link: the student owns the folder and may change it while it is copied. Returns the latest
    ctime of what was copied (and of the folders it was in): when that content last changed."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    top = open_submission(inbound, sub.name)
    copied = [0]
    latest = [os.fstat(top).st_ctime]

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
                    latest[0] = max(latest[0], os.fstat(sub_fd).st_ctime)
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
                    # after the read: a write while it was read is a change, too
                    latest[0] = max(latest[0], os.fstat(src.fileno()).st_ctime)
                if len(data) <= MAX_FILE_BYTES:
                    (out / name).write_bytes(data)
                    copied[0] += 1

    try:
        copy_dir(top, dest, 0)
    finally:
        os.close(top)
    return latest[0]


def read_secret(folder: Path) -> tuple[str | None, str | None]:
    """(the staged `submission_secret.txt`'s text, None) or (None, why there is none usable): the
    student wrote it, and nbgrader reads it as UTF-8 text."""
    path = folder / "submission_secret.txt"
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SECRET_BYTES + 1)
    except FileNotFoundError:
        return None, "it has no submission_secret.txt"
    except OSError as exc:
        return None, f"its submission_secret.txt cannot be read ({exc.strerror})"
    if len(raw) > MAX_SECRET_BYTES:
        return None, f"its submission_secret.txt is over {MAX_SECRET_BYTES} bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "its submission_secret.txt is not UTF-8 text"
    if not text:
        return None, "its submission_secret.txt is empty"
    return text, None


def claimed_in_file(course: Path, sub: Submission) -> datetime | None:
    """What the staged `timestamp.txt` says (the student's; shown, never used), None where it says
    no date."""
    from nbgrader.utils import parse_utc

    try:
        raw = files.read_under(course, ("submitted", sub.student, sub.assignment,
                                        "timestamp.txt"), 1024)
        return parse_utc(raw.decode("utf-8", "replace").strip()) if raw else None
    except Exception:  # noqa: BLE001 - a link, too large, not a date: dateutil raises several kinds
        return None


def write_server_time(folder: Path, sub: Submission) -> None:
    """The staged `timestamp.txt`, which nbgrader's gradebook timestamp (and so its lateness)
    comes from: the server's time of the hand-in, in nbgrader's own format."""
    path = folder / "timestamp.txt"
    path.unlink(missing_ok=True)  # (stage copies plain files only: never a link here)
    path.write_text(sub.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


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
        self.poll, self._log = poll, log
        state = self.course / "serve"
        state.mkdir(exist_ok=True)
        self.lock = (state / "lock").open("w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServeError(f"another `autograder serve` serves {self.course}") from None
        self.journal = Journal(state / "journal.jsonl")
        self.buckets = Buckets(state / "buckets.json", burst, every_minutes * 60.0).load()
        self.seen: dict[str, tuple[float, float]] = {}  # name: (its last change, first seen)
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

    def log(self, line: str) -> None:
        """One line for the instructor: a name in it is the student's, so every control character
        is shown as its escape (as `check` and `grade` show student text), and a name that is not
        UTF-8 as its bytes' escapes."""
        self._log(visible(line, lines=False).encode("utf-8", "backslashreplace").decode("utf-8"))

    # -- what is waiting ------------------------------------------------------------------------

    def scan(self) -> list[Submission]:
        """The submissions of a lesson that the journal has no word of (refusing, once, those
        whose owner is not the student they name), each with the server's time of it."""
        from .record import one_line

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
            try:
                sub = self.look_at(name, now)
            except Exception as exc:  # noqa: BLE001 - whatever the folder holds, it costs itself
                self.decide(name, None, "failed", f"cannot be looked at: {one_line(exc)}")
                continue
            if sub is not None:
                waiting.append(sub)
        for name in set(self.seen) - {sub.name for sub in waiting}:
            del self.seen[name]  # decided, or gone from inbound/
        return waiting

    def look_at(self, name: str, now: float) -> Submission | None:
        """The submission `name` is, with its time: when its content last changed (`last_change`)
        or when this server first saw that content, whichever is earlier. None where it is not a
        submission of a lesson (stock `nbgrader collect` is for it) or was refused."""
        sub = parse(name)
        if sub is None or sub.assignment not in self.lessons:
            return None
        why = not_a_student(sub.student)
        if why is not None:
            self.decide(name, sub, "refused", why)
            return None
        if not submission_owner_ok(self.inbound / name, sub.student):
            self.decide(name, sub, "refused", f"not a folder owned by {sub.student}")
            return None
        try:
            changed = last_change(self.inbound, name)
        except OSError:
            return None  # gone, or a link put in its place: the next round sees which
        known = self.seen.get(name)
        first_seen = known[1] if known is not None and known[0] == changed else now
        self.seen[name] = (changed, first_seen)
        sub.at = min(changed, first_seen)
        return sub

    def decide(self, name: str, sub: Submission | None, state: str, note: str) -> None:
        """Journal a hand-in that is not graded (refused or failed), with one line for the
        instructor."""
        about = {} if sub is None else {"student": sub.student, "assignment": sub.assignment}
        if sub is not None and sub.at:
            about["timestamp"] = str(sub.timestamp)
        self.journal.add(name=name, state=state, **about, note=note)
        self.log(f"{state} {name}: {note}")

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
            subs.sort(key=lambda s: (s.at, s.name))
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
            older = fresh[:fresh.index(latest)]
            chosen.append((latest, older, min(s.at for s in fresh)))
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
        """Stage, grade and release `items` of one lesson; each hand-in in its own guard."""
        from .record import one_line

        lesson = self.lessons[assignment]
        staged = []
        for sub, older in items:
            try:
                if self.stage(sub):
                    staged.append((sub, older))
            except OSError as exc:
                self.decide(sub.name, sub, "refused", f"cannot be read ({one_line(exc)})")
            except Exception as exc:  # noqa: BLE001 - whatever it holds, it costs itself only
                self.decide(sub.name, sub, "failed", f"cannot be staged: {one_line(exc)}")
        if not staged:
            return 0
        try:
            outcomes = self._grade_lesson(lesson, [s.student for s, _ in staged])
        except Exception as exc:  # noqa: BLE001 - one at a time, so that it costs one
            if len(staged) > 1:
                return sum(self.grade(assignment, [item]) for item in items
                           if item in staged)
            self.decide(staged[0][0].name, staged[0][0], "failed", one_line(exc))
            return 0
        now = time.time()
        done = 0
        for (sub, older), outcome in zip(staged, outcomes, strict=True):
            try:
                done += self.finish(lesson, sub, older, outcome, now)
            except Exception as exc:  # noqa: BLE001 - graded; what failed after costs it alone
                if sub.name in self.journal.entries:  # journaled as graded: a restart releases it
                    self.log(f"graded {sub.name}, but its page was not released: "
                             f"{one_line(exc)}")
                else:
                    self.decide(sub.name, sub, "failed", f"graded, but not recorded here: "
                                                         f"{one_line(exc)}")
        return done

    def stage(self, sub: Submission) -> bool:
        """Copy the hand-in into `submitted/`, its `timestamp.txt` the server's time of it. False
        where it changed after the due date while the bucket is empty (decided again next
        round, as late)."""
        folder = self.course / "submitted" / sub.student / sub.assignment
        changed = stage(self.inbound, sub, folder)
        if changed > sub.at:  # changed since it was looked at: that is its time
            sub.at = min(changed, time.time())
            due = self.duedate(sub.assignment)
            if due is not None and sub.timestamp > due and \
                    self.buckets.tokens(sub.student, time.time()) < 1.0:
                self.log(f"waits {sub.name}: it changed after the due date while it was staged")
                return False
        in_file = claimed_in_file(self.course, sub)
        write_server_time(folder, sub)
        said = [f"its name says {sub.claimed}"] if far(sub.claimed, sub.timestamp) else []
        if in_file is not None and far(in_file, sub.timestamp):
            said.append(f"its timestamp.txt says {in_file}")
        if said:
            self.log(f"note {sub.name}: handed in at {sub.timestamp} UTC by the server's clock, "
                     f"which counts; {' and '.join(said)}")
        return True

    def finish(self, lesson, sub: Submission, older: list[Submission], outcome, now: float) -> int:
        """Journal one graded hand-in (and those it supersedes), release its page, say so."""
        self.buckets.take(sub.student, now)
        self.buckets.save()  # before the journal: a restart never gives a result back free
        page = self.page(lesson, sub.student)
        next_at = self.buckets.next_at(sub.student, now)
        if next_at is not None and page.is_file():
            add_note(page, next_result_note(next_at, self.buckets))
        secret, why_not = read_secret(self.course / "submitted" / sub.student / sub.assignment)
        checksum = None if secret is None else \
            notebook_hash(secret=secret, notebook_id=lesson.notebook_id)
        self.journal.add(name=sub.name, state="graded", student=sub.student,
                         assignment=sub.assignment, timestamp=str(sub.timestamp),
                         claimed=str(sub.claimed), seconds_late=outcome.seconds_late,
                         score=outcome.score, max_score=outcome.max_score,
                         reason=outcome.reason, feedback=checksum,
                         **({"note": f"page not released: {why_not}"} if why_not else {}))
        for old in older:
            self.journal.add(name=old.name, state="superseded", student=sub.student,
                             assignment=sub.assignment, timestamp=str(old.timestamp),
                             by=sub.name)
        self.release(page, checksum)
        self.log(f"graded {sub.student} {sub.assignment}: {outcome.score:g} / "
                 f"{outcome.max_score:g}{' (' + outcome.reason + ')' if outcome.reason else ''}"
                 f", {max(0.0, now - sub.at):.1f} s after it arrived"
                 + (f", {outcome.seconds_late:g} s late" if outcome.seconds_late else "")
                 + (f", {len(older)} older superseded" if older else "")
                 + (f"; its page is not released: {why_not} (it stays in the course)"
                    if why_not else ""))
        return 1

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
            try:
                if checksum and assignment in self.lessons and \
                        not (self.feedback / f"{checksum}.html").is_file():
                    self.release(self.page(self.lessons[assignment], student), checksum)
                    self.log(f"released again {student} {assignment}: its page had not reached "
                             "the exchange")
            except Exception as exc:  # noqa: BLE001 - one page's trouble stops no restart
                from .record import one_line

                self.log(f"cannot release again {student} {assignment}: {one_line(exc)}")

    # -- forever --------------------------------------------------------------------------------

    def serve(self, until: Callable[[], bool] = lambda: False) -> None:
        while not until():
            if self.round() == 0:
                time.sleep(self.poll)


def notebook_hash(secret: str, notebook_id: str) -> str:
    """The page's name in the exchange: nbgrader's hash of the submission's secret (which the
    student's own cache holds: no one else can find the page)."""
    from nbgrader.utils import notebook_hash as nbgrader_hash

    return nbgrader_hash(secret=secret, notebook_id=notebook_id)


def far(claimed: datetime, server: datetime) -> bool:
    """Whether a time the student wrote is further from the server's than a submit takes."""
    return abs((claimed - server).total_seconds()) > DISAGREE_SECONDS


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
