"""`autograder grade --course DIR [--assignment ID]`: grade every submission of a class through nbgrader.

For each lesson of the course (its copy in `DIR/lessons/`, released into the gradebook), and for
each `DIR/submitted/<student>/<id>/<id>.ipynb`, one short pipeline:

    read (one-line reasons) -> sanitize (nbgrader's own preprocessors, gradebook's cells and points)
        -> grade_submission (the isolated engine; in a pool of N at once)
        -> record (record.py: nbgrader's Autograde converter, one for the class, IsolatedCheck in
                   place of Execute: gradebook, late penalty, autograded/ notebook)
        -> feedback (feedback.py: nbgrader's generate_feedback, in batches, in one process per
                     eight workers, while the others are graded)
    then, for the class: grades.csv (nbgrader's CSV export), with `--gradescope` Gradescope's
    results.json; each student's report is kept for `autograder report` (classreport/kept.py).

Every gradebook write of a class happens in this process, one submission at a time, each in one
transaction (the course's database: SQLite's file, or the server `c.CourseDirectory.db_url` names,
where `serve` and formgrader may write at the same time). A submission that cannot be graded is
recorded as 0 with its reason, and the others are graded as usual.
"""

from __future__ import annotations

import heapq
import itertools
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from sqlalchemy.exc import SAWarning
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from .. import files
from ..answer import notebook
from ..engine import grade_submission, source_notebook, warm_up
from ..lesson import model as lessons
from ..lesson import resolve
from ..lesson.bundle import bundle
from ..lesson.model import Lesson
from ..present.report import Report
from . import gradescope, put_python_on_path
from .config import ConfigError, GradebookError, course_config, late_policy, open_gradebook
from .local_pool import GradingPool
from .nbgrader_parts import step_for
from .preprocessor import gradebook_points, plain
from .record import Recorder, one_line, quiet_log, read_timestamp


class GradeError(RuntimeError):
    """The course cannot be graded at all; the message says why in one line."""


#: How the reason of a submission the grader itself failed on begins (its bug, not the student's).
GRADER_FAILED = "the grader failed"


class Unusable(ValueError):
    """This submission cannot be graded; the message is the one-line reason."""


@dataclass
class Outcome:
    """What a class table shows for one student (scores as the gradebook holds them)."""

    student: str
    score: float
    max_score: float
    report: Report | None = None
    assignment: str = ""
    reason: str | None = None  # why it could not be graded (then it is recorded as 0)
    late_penalty: float = 0.0
    seconds_late: float = 0.0
    late: str = ""  # where it came after the due date: what became of it (late.Late.said)
    counted: bool = True  # False: a late hand-in the late policy keeps out of the gradebook

    @property
    def mistakes(self) -> list[str]:
        return self.report.mistakes() if self.report else []


# --- one submission ------------------------------------------------------------------------------

def check_timestamp(course: Path, student: str, assignment: str) -> None:
    """Raise `Unusable` where the submission's `timestamp.txt` is a link, too large or not a
    date (the reason never quotes the file)."""
    try:
        read_timestamp(course, student, assignment)
    except files.Refused as exc:
        raise Unusable(f"{exc}: fix or delete it, then grade again") from None
    except ValueError:
        raise Unusable(f"submitted/{student}/{assignment}/timestamp.txt is not a date: fix "
                       "or delete it, then grade again") from None


def first_names(folder: Path, shown: int = 5, looked_at: int = 10_000) -> list[str]:
    """The first `shown` names in `folder` (none where it cannot be read), in one pass over at
    most `looked_at` of them: a folder of a million files costs no more."""
    try:
        with os.scandir(folder) as entries:
            return heapq.nsmallest(shown, (e.name for e in itertools.islice(entries, looked_at)))
    except OSError:
        return []


def read_and_sanitize(course: Path, student: str, cfg: Config, lesson: Lesson,
                      gradebook: Gradebook | None = None) -> nbformat.NotebookNode:
    """The notebook after nbgrader's sanitize steps (what its Autograde converter would grade and
    record), those that read the gradebook on `gradebook` when given. Its file, and every folder
    on the way to it, is read without following a link. Raises `Unusable`."""
    name, assignment = lesson.notebook, lesson.id
    where = ("submitted", student, assignment, name)
    try:
        data = files.read_under(course, where, notebook.MAX_NOTEBOOK_BYTES)
    except files.Refused as exc:
        raise Unusable(str(exc)) from None
    if data is None:
        folder = course.joinpath(*where[:-1])
        renamed = [n for n in first_names(folder, shown=20) if n.endswith(".ipynb")]
        if renamed:  # the one rule of both routes: the student reads to rename it back
            raise Unusable(gradescope.renamed(name, renamed))
        found = first_names(folder)
        raise Unusable(f"no {name} in submitted/{student}/{assignment}"
                       + (f" (found: {', '.join(found)})" if found else " (the folder is empty)"))
    check_timestamp(course, student, assignment)
    try:
        raw = notebook.parse_notebook(data, name)  # one-line reasons
    except notebook.NotebookError as exc:
        raise Unusable(str(exc)) from None
    ids = [notebook.nbgrader_meta(c).get("grade_id") for c in raw["cells"]]
    counted = Counter(i for i in ids if isinstance(i, str))  # one pass: cells may be thousands
    twice = sorted(i for i, n in counted.items() if n > 1)
    if twice:
        # nbgrader's DeduplicateIds then OverwriteCells(add_missing_cells) fail on these (0.9.6)
        raise Unusable(f"{name} has {len(twice)} nbgrader cell(s) twice "
                       f"({', '.join(twice)}), e.g. a copied cell: delete the copies and submit again")
    try:
        nb = nbformat.reads(data.decode("utf-8", "replace"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds; the reason is one line
        raise Unusable(f"{name} cannot be read as a notebook: {one_line(exc)}") from None
    resources = {"nbgrader": {"student": student, "assignment": assignment,
                              "notebook": lesson.notebook_id, "db_url": cfg.CourseDirectory.db_url}}
    steps = cfg.Autograde.get("sanitize_preprocessors", Autograde.sanitize_preprocessors.default())
    for step in steps:
        cls = import_item(step) if isinstance(step, str) else step
        try:
            nb, resources = step_for(cls, gradebook, config=cfg, log=quiet_log())(nb, resources)
        except Exception as exc:  # noqa: BLE001 - e.g. CheckCellMetadata's ValidationError
            raise Unusable(f"nbgrader cannot sanitize {name} ({cls.__name__}): "
                           f"{one_line(exc)}") from None
    return nb


# --- the class -----------------------------------------------------------------------------------

def submissions(course: Path, assignment: str) -> list[str]:
    """The students who handed in `assignment`: each folder of `submitted/` with it in it, and
    each link there (graded as 0, with the reason)."""
    folder = course / "submitted"
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if d.is_symlink() or (
        d.is_dir() and os.path.lexists(d / assignment)))


def course_lessons(course: Path, cfg: Config, assignment: str | None = None) -> list[Lesson]:
    """The lessons to grade: the course's copies (DIR/lessons) of those its gradebook holds, or
    `assignment` alone."""
    try:
        gradebook = open_gradebook(cfg.CourseDirectory.db_url, CourseDirectory(config=cfg).course_id)
    except GradebookError as exc:
        raise GradeError(str(exc)) from None
    with gradebook as gb:
        released = [a.name for a in gb.assignments]
    found = lessons.available(course)
    if assignment is not None:
        if assignment not in found:
            raise GradeError(f"no lesson {assignment!r} in {course}: its lessons are "
                             f"{', '.join(found) or 'none'}")
        if assignment not in released:
            raise GradeError(f"the gradebook of {course} has no assignment {assignment!r}: run "
                             f"`autograder release --course {course} --assignment {assignment}` first")
        return [found[assignment]]
    chosen = [found[a] for a in found if a in released]
    if not chosen:
        raise GradeError(f"the gradebook of {course} has no assignment of a lesson here: "
                         f"run `autograder release --course {course}` first")
    return chosen


def grade_course(course: str | Path, workers: int | None = None,
                 on_progress: Callable[[int, Outcome | None], None] | None = None,
                 scheduler: str | None = None, require_isolation: bool = False,
                 assignment: str | None = None, gradescope: bool = False) -> list[Outcome]:
    """Grade every submission of `course` (of each of its lessons, or of `assignment`); write
    gradebook, autograded/, feedback/, grades.csv, and with `gradescope` each student's
    gradescope/<student>/<assignment>/results.json. Outcomes are in lesson, then student order.

    `on_progress(total, outcome)` is called once with `(total, None)`, then after each student.
    `scheduler` (a dask.distributed address) grades on that cluster's workers instead of local
    ones; the gradebook is still written here, one submission at a time. With
    `require_isolation` (or the course's `c.IsolatedCheck.require_isolation`), a machine where
    the sandbox's namespaces do not apply raises `GradeError` before anything is graded.
    """
    with warnings.catch_warnings():
        # nbgrader's own update_or_create_submission makes SQLAlchemy warn; nothing is lost
        warnings.simplefilter("ignore", SAWarning)
        # nbformat asks for cell ids that older notebooks lack; nbgrader reads them all the same
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        warnings.simplefilter("ignore", DuplicateCellId)  # nbformat gives a copied cell a new id
        return _grade_course(course, workers, on_progress, scheduler, require_isolation,
                             assignment, gradescope)


@dataclass
class Pool:
    """Where `grade_submission` runs (`executor`), how many at once (`slots`), and, on a Dask
    cluster, its `client`."""

    executor: Executor
    slots: int
    client: object | None = None  # a dask.distributed Client
    shipped: dict = field(default_factory=dict)  # lesson id -> (digest, its scattered bundle)

    def lesson(self, lesson: Lesson) -> object:
        """What a task is given for `lesson`: local threads its folder (read where it is, no
        copy); Dask workers its files as data (`bundle.LessonBundle`), sent to each worker once
        per version of the lesson, which the task then names."""
        if self.client is None:
            return str(lesson.folder)
        made = bundle(lesson)
        digest, future = self.shipped.get(lesson.id, (None, None))
        if digest != made.digest:
            future = self.client.scatter(made, broadcast=True)
            self.shipped[lesson.id] = (made.digest, future)
        return future


@contextmanager
def executor_for(workers: int, scheduler: str | None, class_size: int = 0,
                 lesson_folder: str = "") -> Iterator[Pool]:
    """Where `grade_submission` runs: `workers` local grading processes, threads for a class
    under `local_pool.PROCESSES_FROM` per worker (each starts its own students' processes, and
    reads the course's lessons/ where it is), or the workers of a dask.distributed
    cluster, which need only this package installed: each lesson's files travel to them as data
    (`Pool.lesson`), the submissions with their tasks; they need no disk shared with the
    grader. `GradeError` (one line) where the scheduler cannot be reached."""
    if scheduler is None:
        with GradingPool(workers, class_size, lesson_folder) as pool:
            yield Pool(pool, workers)
        return
    try:
        from distributed import Client
    except ImportError:
        raise GradeError("--scheduler needs dask.distributed: pip install distributed") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise GradeError(f"cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from None
    with client:
        # a regrade must run again, not reuse a result
        yield Pool(client.get_executor(pure=False), max(1, sum(client.nthreads().values())),
                   client)


def _grade_course(course, workers, on_progress, scheduler, require_isolation,
                  assignment=None, gradescope=False) -> list[Outcome]:
    from . import export

    put_python_on_path()
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise GradeError(f"{course} is not a course: run `autograder release --course {course}` first")
    cfg = course_config(course)
    refuse_beside_serve(course, cfg)
    if require_isolation or cfg.IsolatedCheck.get("require_isolation", False):
        from ..sandbox.layers import IsolationMissing
        from ..sandbox.layers import require_isolation as must_isolate

        try:
            must_isolate()
        except IsolationMissing as exc:
            raise GradeError(str(exc)) from None
    course_id = CourseDirectory(config=cfg).course_id
    chosen = course_lessons(course, cfg, assignment)
    classes = {lesson.id: submissions(course, lesson.id) for lesson in chosen}
    if assignment is None:  # a lesson nobody handed in is not graded (nothing to write)
        chosen = [lesson for lesson in chosen if classes[lesson.id]] or chosen[:1]
    progress = on_progress or (lambda total, done: None)
    progress(sum(len(classes[lesson.id]) for lesson in chosen), None)
    workers = workers or os.cpu_count() or 1
    ordered: list[Outcome] = []
    for number, lesson in enumerate(chosen):
        ordered += _grade_lesson(course, cfg, course_id, lesson, classes[lesson.id], workers,
                                 progress, scheduler, warm=number == 0)
    export.grades_csv(course, cfg, {(o.assignment, o.student): o.reason or o.late
                                    for o in ordered if o.reason or o.late})
    if gradescope:
        from .gradescope import write_all

        write_all(course, [o for o in ordered if o.counted])  # a late one kept out: not sent
    return ordered


def refuse_beside_serve(course: Path, cfg: Config) -> None:
    """`GradeError` where `autograder serve` runs on the course and its gradebook is SQLite's
    file: one writer at a time (a database server takes both)."""
    from .serve.lock import serving

    if cfg.CourseDirectory.db_url.startswith("sqlite:///") and serving(course):
        raise GradeError(f"`autograder serve` is grading {course} now, and its SQLite gradebook "
                         "takes one writer at a time: let serve grade (it keeps grades.csv "
                         "current), or stop it before `grade`")


def _grade_lesson(course: Path, cfg: Config, course_id: str, lesson: Lesson, students: list[str],
                  workers: int, progress, scheduler: str | Pool | None,
                  warm: bool) -> list[Outcome]:
    """Grade `students`' submissions of `lesson`, on local threads, the cluster at `scheduler`,
    or a `Pool` the caller keeps open (`serve`)."""
    from . import classreport, feedback, late

    try:
        points = gradebook_points(lesson, cfg.CourseDirectory.db_url, course_id)
    except MissingEntry:
        raise GradeError(f"the gradebook of {course} has no assignment {lesson.id!r}: "
                         f"run `autograder release --course {course}` first") from None
    try:
        policy = late_policy(cfg, lesson.id)
    except ConfigError as exc:
        raise GradeError(str(exc)) from None
    total = len(students)
    seed = int(cfg.IsolatedCheck.get("seed", 0))
    outcomes: dict[str, Outcome] = {}

    pages = feedback.Pages(course, cfg, lesson, total, workers)
    pool_kept = (nullcontext(scheduler) if isinstance(scheduler, Pool)
                 else executor_for(workers, scheduler, total, str(lesson.folder)))
    with pages, Recorder(course, cfg, lesson) as recorder, pool_kept as pool:
        local = pool.executor if isinstance(pool.executor, GradingPool) else None
        if local is not None and warm and not local.in_processes:
            warm_up(str(lesson.folder))  # (grading processes warm their own as they start)
        recorder.enroll(students)
        # The lesson's own cells run in place of the students' copies: local threads share the
        # parsed source notebook; Dask workers read it from the lesson's bundle, sent once.
        on_workers = pool.lesson(lesson)
        source = source_notebook(lesson) if pool.client is None else None

        def done(student: str, report: Report | None, reason: str | None = None) -> None:
            if reason is not None:
                recorder.record_unusable(student, reason)
            score, max_score, penalty, late = recorder.scores(student)
            outcomes[student] = Outcome(student, max(0.0, score - penalty), max_score, report,
                                        lesson.id, reason, penalty, late)
            classreport.keep(course, lesson.id, student, report, reason)
            if student in lateness:
                outcomes[student].late = lateness[student].said()
            progress(total, outcomes[student])

        def not_counted(student: str, report: Report | None, reason: str | None = None) -> None:
            """A late hand-in the policy keeps out of the gradebook: its page alone."""
            was = lateness[student]
            score, max_score = (was.kept[0], was.kept[1]) if was.kept else (0.0, sum(points.values()))
            outcomes[student] = Outcome(student, score, max_score, report, lesson.id, None,
                                        seconds_late=was.seconds, late=was.said(), counted=False)
            late.write_page(feedback.page(course, student, lesson), lesson, was, report,
                            max_score, reason)
            progress(total, outcomes[student])

        lateness: dict[str, late.Late] = {}

        # Read and sanitize as workers free up: a class of thousands is never all in memory.
        waiting, running = iter(students), {}
        while True:
            while len(running) < 4 * pool.slots and (student := next(waiting, None)) is not None:
                if (was := late.judge(recorder.gradebook, course, student, lesson, policy)):
                    lateness[student] = was
                if was and not was.counts and policy == "refuse":
                    not_counted(student, None)
                    continue
                try:
                    nb = read_and_sanitize(course, student, cfg, lesson, recorder.gradebook)
                except Unusable as exc:
                    if was and not was.counts:
                        not_counted(student, None, str(exc))
                    else:
                        done(student, None, str(exc))
                    continue
                future = pool.executor.submit(
                    grade_submission, plain(nb), on_workers, points,
                    resolve.seed(lesson, "grade", course_seed=seed, student=student), True,
                    source)
                running[future] = (student, nb)
            if not running:
                break
            for future in wait(running, return_when=FIRST_COMPLETED).done:
                student, nb = running.pop(future)
                if local is not None:
                    if local.died(future):  # its grading process, not its code: graded again
                        running[local.again(future)] = (student, nb)
                        continue
                    local.forget(future)
                try:
                    report = future.result()
                except notebook.NotebookError as exc:
                    done(student, None, str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - the grader's own failure, for this one only
                    done(student, None, f"{GRADER_FAILED}: {type(exc).__name__}: {one_line(exc)}")
                    continue
                if student in lateness and not lateness[student].counts:
                    not_counted(student, report)
                    continue
                reason = recorder.record(student, nb, report)
                done(student, None if reason else report, reason)
                if reason is None:
                    pages.add(student)

        ordered = [outcomes[s] for s in students]
        pages.finish(ordered)
    return ordered
