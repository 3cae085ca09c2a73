"""The server: each round scans inbound/, grades at most one hand-in per student (those who have
waited longest first), journals it and releases its page (see the package's doc)."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from ...present.terminal import visible
from ..exchange import root_of, submission_owner_ok
from .buckets import Buckets, next_result_note
from .journal import Journal
from .lock import hold
from .names import Submission, far, handed_in, not_a_student, parse
from .pages import add_note, notebook_hash
from .stage import claimed_in_file, last_change, read_secret, stage, write_server_time
from .status import Statuses

#: The longest grades.csv lags behind the gradebook while submissions keep arriving (seconds).
EXPORT_EVERY = 60.0


class ServeError(RuntimeError):
    """The course cannot be served; the message says why in one line."""



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

        from .. import put_python_on_path
        from ..grade import GradeError, course_config, course_lessons

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
        from ..exchange import whose

        taken = whose(root_of(self.cfg), self.course_id, self.course)
        if taken is not None:
            raise ServeError(f"not serving {self.course} from nbgrader's exchange "
                             f"{root_of(self.cfg)}: {taken}; give this course an id of its own "
                             "(c.CourseDirectory.course_id in its nbgrader_config.py) and "
                             f"release it again (`autograder release --course {self.course}`)")
        if not self.inbound.is_dir():
            raise ServeError(f"no {self.inbound}: release the course into its exchange first "
                             f"(`autograder release --course {self.course}`)")
        self.workers = workers or os.cpu_count() or 1
        self.batch = batch or max(8, 4 * self.workers)
        self.poll, self._log = poll, log
        state = self.course / "serve"
        self.lock = hold(self.course)  # `grade` on a SQLite gradebook looks at it
        if self.lock is None:
            raise ServeError(f"another `autograder serve` serves {self.course}")
        self.journal = Journal(state / "journal.jsonl")
        self.buckets = Buckets(state / "buckets.json", burst, every_minutes * 60.0).load()
        self.seen: dict[str, tuple[float, float]] = {}  # name: (its last change, first seen)
        self._graded: tuple[int, dict] | None = None  # (journal size, last_graded's answers)
        self.warm = True
        self.started = time.time()
        self.exported, self.exported_at = True, time.time()  # grades.csv: nothing new yet
        self.duedates: dict[str, datetime | None] = {}
        self.status = Statuses(self.inbound, self.feedback,  # what each student can read of it
                               {id: lesson.notebook_id for id, lesson in self.lessons.items()})
        self.release_missing_pages()
        self.pool = None  # grade.Pool: a Dask cluster's, kept open while serving
        self.closing = ExitStack()
        if scheduler is not None:
            from ..grade import executor_for

            try:
                self.pool = self.closing.enter_context(executor_for(self.workers, scheduler))
            except GradeError as exc:
                self.close()
                raise ServeError(str(exc)) from None
            self.workers = self.pool.slots
            self.batch = batch or max(8, 4 * self.workers)

    def close(self) -> None:
        if not self.journal.file.closed:
            self.write_grades_csv()
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
        from ..record import one_line

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
        """Grade what is waiting (one round); the number of submissions graded. A round with
        nothing to grade, or one EXPORT_EVERY seconds after the last export, brings grades.csv
        up to date."""
        now = time.time()
        waiting = self.scan()
        work = self.pick(waiting, now)
        self.say_where_each_stands(lambda: self.status.waiting(
            waiting, work, self.buckets, now, self.journal.entries))
        by_lesson: dict[str, list[tuple[Submission, list[Submission]]]] = {}
        for item in work:
            by_lesson.setdefault(item[0].assignment, []).append(item)
        done = sum(self.grade(assignment, items) for assignment, items in by_lesson.items())
        self.say_where_each_stands(lambda: self.status.decided(self.journal.entries))
        if done == 0 or time.time() - self.exported_at > EXPORT_EVERY:
            self.write_grades_csv()
        return done

    def say_where_each_stands(self, say: Callable[[], None]) -> None:
        """`status.py`'s pages and files for the students; trouble there stops no grading."""
        try:
            say()
        except Exception as exc:  # noqa: BLE001 - a status is news, never a grade
            from ..record import one_line

            self.log(f"cannot write the students' status: {one_line(exc)}")

    def grade(self, assignment: str, items: list[tuple[Submission, list[Submission]]]) -> int:
        """Stage, grade and release `items` of one lesson; each hand-in in its own guard."""
        from ..record import one_line

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
        sub.handed = handed_in(sub, in_file)
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
                         **({"late": outcome.late} if outcome.late else {}),
                         **({} if outcome.counted else {"counted": False}),
                         **({"note": f"page not released: {why_not}"} if why_not else {}))
        for old in older:
            self.journal.add(name=old.name, state="superseded", student=sub.student,
                             assignment=sub.assignment, timestamp=str(old.timestamp),
                             by=sub.name)
        self.release(page, checksum)
        self.write_gradescope(outcome)
        self.exported = False
        self.log(f"graded {sub.student} {sub.assignment}: {outcome.score:g} / "
                 f"{outcome.max_score:g}{' (' + outcome.reason + ')' if outcome.reason else ''}"
                 f", {self.waited(sub, older)}"
                 + (f"; {outcome.late}" if outcome.late else "")
                 + (f", {len(older)} older superseded" if older else "")
                 + (f"; its page is not released: {why_not} (it stays in the course)"
                    if why_not else ""))
        return 1

    def waited(self, sub: Submission, older: list[Submission]) -> str:
        """How long the student waited for this page, from their hand-in (`handed_in`; the
        first of those it supersedes where one waited longer) to now, its release; and whether
        it was handed in before this server started (regraded or graded late at start-up)."""
        now, own = time.time(), sub.handed or sub.at
        first = min([own] + [o.handed or o.at for o in older])
        said = f"page released {max(0.0, now - own):.1f} s after it was handed in"
        if first < own:
            said += (f", {max(0.0, now - first):.1f} s after the first of the {len(older)} it "
                     "supersedes")
        if first < self.started:
            said += (f" ({self.started - first:.0f} s before this serve started: it waited for "
                     "the server)")
        return said

    def write_gradescope(self, outcome) -> None:
        """The student's `gradescope/<student>/<assignment>/results.json`, as `grade
        --gradescope` writes it."""
        from ..gradescope import write_all
        from ..record import one_line

        if not outcome.counted:  # a late hand-in kept out of the grade: not sent
            return
        try:
            write_all(self.course, [outcome])
        except Exception as exc:  # noqa: BLE001 - the page is out; this file costs itself only
            self.log(f"cannot write the Gradescope results of {outcome.student} "
                     f"{outcome.assignment}: {one_line(exc)}")

    def write_grades_csv(self) -> None:
        """`grades.csv`, as `autograder grade` writes it (nbgrader's export and the note of each
        submission that could not be graded), where something was graded since it was last
        written. Called when a round finds nothing to grade, and at least every
        `EXPORT_EVERY` seconds in a long burst: not on the path a student waits on."""
        from ..export import grades_csv
        from ..record import one_line

        if self.exported:
            return
        notes: dict[tuple[str, str], str] = {}
        for entry in sorted(self.journal.entries.values(), key=lambda e: e.get("at", 0.0)):
            if entry.get("state") == "graded":
                notes[(entry["assignment"], entry["student"])] = \
                    entry.get("reason") or entry.get("late") or ""
        try:
            grades_csv(self.course, self.cfg, {k: v for k, v in notes.items() if v})
        except Exception as exc:  # noqa: BLE001 - the export's trouble stops no grading
            self.log(f"cannot write grades.csv: {one_line(exc)}")
        self.exported, self.exported_at = True, time.time()

    def _grade_lesson(self, lesson, students: list[str]):
        from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
        from sqlalchemy.exc import SAWarning

        from ..grade import _grade_lesson

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
        from ..feedback import page

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
                        not self.status.released(checksum):  # (a status page is not its page)
                    self.release(self.page(self.lessons[assignment], student), checksum)
                    self.log(f"released again {student} {assignment}: its page had not reached "
                             "the exchange")
            except Exception as exc:  # noqa: BLE001 - one page's trouble stops no restart
                from ..record import one_line

                self.log(f"cannot release again {student} {assignment}: {one_line(exc)}")

    # -- forever --------------------------------------------------------------------------------

    def serve(self, until: Callable[[], bool] = lambda: False) -> None:
        while not until():
            if self.round() == 0:
                time.sleep(self.poll)
