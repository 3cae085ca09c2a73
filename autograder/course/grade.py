"""`autograder grade --course DIR`: grade every submission of a class through nbgrader.

For each `DIR/submitted/<student>/backward/backward.ipynb`, one short pipeline:

    read (one-line reasons) -> sanitize (nbgrader's own preprocessors, gradebook's cells and points)
        -> grade_submission (the isolated engine; in a pool of N at once)
        -> record (nbgrader's Autograde converter, IsolatedCheck in place of Execute:
                   gradebook, late penalty, autograded/ notebook)
    then, for the class: feedback (nbgrader generate_feedback), grades.csv (nbgrader's CSV
    export), Gradescope results.json.

Every gradebook write happens in this process, one at a time (SQLite). A submission that cannot
be graded is recorded as 0 with its reason, and the others are graded as usual.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning
from traitlets.config import Config, PyFileConfigLoader
from traitlets.utils.importstring import import_item

from .. import notebook, spec
from ..engine import grade_submission, solutions_path
from ..report import Report
from . import put_python_on_path
from .preprocessor import gradebook_points, plain, student_seed

NOTEBOOK_ID = spec.NOTEBOOK_NAME.removesuffix(".ipynb")
ISOLATED_CHECK = "autograder.course.preprocessor.IsolatedCheck"


class GradeError(RuntimeError):
    """The course cannot be graded at all; the message says why in one line."""


class Unusable(ValueError):
    """This submission cannot be graded; the message is the one-line reason."""


@dataclass
class Outcome:
    """What a class table shows for one student (scores as the gradebook holds them)."""

    student: str
    score: float
    max_score: float
    report: Report | None = None
    reason: str | None = None  # why it could not be graded (then it is recorded as 0)
    late_penalty: float = 0.0
    seconds_late: float = 0.0

    @property
    def mistakes(self) -> list[str]:
        return self.report.mistakes() if self.report else []


# --- the course's nbgrader configuration --------------------------------------------------------

def course_config(course: Path) -> Config:
    """The course's `nbgrader_config.py`, made sure to grade with IsolatedCheck."""
    cfg = Config()
    if (course / "nbgrader_config.py").is_file():
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", str(course)).load_config())
    cfg.CourseDirectory.root = str(course)
    db_url = cfg.CourseDirectory.get("db_url", f"sqlite:///{course / 'gradebook.db'}")
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{course / db_url.removeprefix('sqlite:///')}"
    cfg.CourseDirectory.db_url = db_url
    cfg.OverwriteCells.add_missing_cells = True
    steps = list(cfg.Autograde.get("autograde_preprocessors", Autograde.autograde_preprocessors.default()))
    steps = [ISOLATED_CHECK if name_of(s) == "nbgrader.preprocessors.execute.Execute" else s
             for s in steps]
    if ISOLATED_CHECK not in [name_of(s) for s in steps]:
        steps.insert(0, ISOLATED_CHECK)
    cfg.Autograde.autograde_preprocessors = steps
    return cfg


def name_of(step) -> str:
    cls = import_item(step) if isinstance(step, str) else step
    return f"{cls.__module__}.{cls.__qualname__}"


def quiet_log() -> logging.Logger:
    """nbgrader's log, kept off the terminal (a progress bar is there); errors give reasons."""
    log = logging.getLogger("autograder.nbgrader")
    log.propagate = False
    log.setLevel(logging.WARNING)
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


class Remember(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# --- one submission ------------------------------------------------------------------------------

def read_and_sanitize(path: Path, student: str, cfg: Config) -> dict:
    """The notebook after nbgrader's sanitize steps, as plain JSON data. Raises `Unusable`."""
    if not path.is_file():
        folder = path.parent
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise Unusable(f"no {path.name} in submitted/{student}/{spec.ASSIGNMENT_ID}"
                       + (f" (found: {', '.join(found[:5])})" if found else " (the folder is empty)"))
    stamp = path.parent / "timestamp.txt"
    if stamp.is_file() and stamp.read_text().strip():
        try:
            parse_utc(stamp.read_text().strip())
        except Exception:  # noqa: BLE001 - nbgrader 0.9.6 itself crashes on one (CourseDirectory.fail)
            raise Unusable(f"submitted/{student}/{spec.ASSIGNMENT_ID}/timestamp.txt is not a date "
                           f"({one_line(Exception(stamp.read_text()))!r}): fix or delete it, "
                           "then grade again") from None
    try:
        raw = notebook.read_notebook(path)  # one-line reasons for what nbformat only complains about
    except notebook.NotebookError as exc:
        raise Unusable(str(exc).replace(str(path), spec.NOTEBOOK_NAME)) from None
    ids = [notebook.nbgrader_meta(c).get("grade_id") for c in raw["cells"]]
    twice = sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1})
    if twice:
        # nbgrader's DeduplicateIds then OverwriteCells(add_missing_cells) fail on these (0.9.6)
        raise Unusable(f"{spec.NOTEBOOK_NAME} has {len(twice)} nbgrader cell(s) twice "
                       f"({', '.join(twice)}), e.g. a copied cell: delete the copies and submit again")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds; the reason is one line
        raise Unusable(f"{spec.NOTEBOOK_NAME} cannot be read as a notebook: {one_line(exc)}") from None
    resources = {"nbgrader": {"student": student, "assignment": spec.ASSIGNMENT_ID,
                              "notebook": NOTEBOOK_ID, "db_url": cfg.CourseDirectory.db_url}}
    steps = cfg.Autograde.get("sanitize_preprocessors", Autograde.sanitize_preprocessors.default())
    for step in steps:
        cls = import_item(step) if isinstance(step, str) else step
        try:
            nb, resources = cls(config=cfg, log=quiet_log())(nb, resources)
        except Exception as exc:  # noqa: BLE001 - e.g. CheckCellMetadata's ValidationError
            raise Unusable(f"nbgrader cannot sanitize {spec.NOTEBOOK_NAME} ({cls.__name__}): "
                           f"{one_line(exc)}") from None
    return plain(nb)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def record(cfg: Config, student: str, report: Report) -> str | None:
    """Run nbgrader's Autograde converter for one student, with the report already computed.

    Returns None when nbgrader recorded it, else the one-line reason it could not.
    """
    cfg.IsolatedCheck.reports = {student: report.to_dict()}
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id, coursedir.student_id = spec.ASSIGNMENT_ID, student
    log = quiet_log()
    remember = Remember()
    log.addHandler(remember)
    try:
        app = Autograde(coursedir=coursedir, config=cfg, log=log)
        app.force, app.create_student = True, True
        app.start()
    except Exception as exc:  # noqa: BLE001 - nbgrader logs the cause, raises a summary
        # nbgrader logs the traceback, then raises a summary: the traceback's last line says why
        causes = [m.strip().splitlines()[-1] for m in remember.lines if "Traceback" in m]
        return f"nbgrader could not record it: {one_line(Exception(causes[0])) if causes else one_line(exc)}"
    finally:
        log.removeHandler(remember)
        cfg.IsolatedCheck.reports = {}
    return None


def record_unusable(course: Path, cfg: Config, student: str, reason: str) -> None:
    """0 for every grade cell (a manual score still wins), the reason as each cell's comment."""
    coursedir = CourseDirectory(config=cfg)
    try:
        timestamp = coursedir.get_existing_timestamp(str(course / "submitted" / student / spec.ASSIGNMENT_ID))
    except BaseException:  # noqa: BLE001 - a bad timestamp.txt fails there; the grade is 0 anyway
        timestamp = None
    with Gradebook(cfg.CourseDirectory.db_url, coursedir.course_id) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(spec.ASSIGNMENT_ID, student,
                                       **({"timestamp": timestamp} if timestamp else {}))
        submitted = gb.find_submission_notebook(NOTEBOOK_ID, spec.ASSIGNMENT_ID, student)
        for grade in submitted.grades:
            grade.auto_score = 0.0
            grade.needs_manual_grade = grade.manual_score is not None
        for comment in submitted.comments:
            comment.auto_comment = f"Not graded: {reason}"
        gb.db.commit()
    # An earlier graded notebook must not stand for this submission in formgrader or feedback.
    for folder in ("autograded", "feedback"):
        shutil.rmtree(course / folder / student / spec.ASSIGNMENT_ID, ignore_errors=True)


def outcome(cfg: Config, student: str, report: Report | None, reason: str | None) -> Outcome:
    with Gradebook(cfg.CourseDirectory.db_url, CourseDirectory(config=cfg).course_id) as gb:
        sub = gb.find_submission(spec.ASSIGNMENT_ID, student)
        penalty = float(sub.late_submission_penalty or 0.0)
        return Outcome(student, max(0.0, float(sub.score) - penalty), float(sub.max_score),
                       report, reason, penalty, float(sub.total_seconds_late or 0.0))


# --- the class -----------------------------------------------------------------------------------

def submissions(course: Path) -> list[str]:
    folder = course / "submitted"
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if (d / spec.ASSIGNMENT_ID).is_dir())


def grade_course(course: str | Path, workers: int | None = None,
                 on_progress: Callable[[int, Outcome | None], None] | None = None,
                 scheduler: str | None = None) -> list[Outcome]:
    """Grade every submission of `course`; write gradebook, autograded/, feedback/, grades.csv.

    `on_progress(total, outcome)` is called once with `(total, None)`, then after each student.
    `scheduler` (a dask.distributed address) grades on that cluster's workers instead of local
    ones; the gradebook is still written here, one submission at a time.
    """
    with warnings.catch_warnings():
        # nbgrader's own update_or_create_submission makes SQLAlchemy warn; nothing is lost
        warnings.simplefilter("ignore", SAWarning)
        # nbformat asks for cell ids that older notebooks lack; nbgrader reads them all the same
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        warnings.simplefilter("ignore", DuplicateCellId)  # nbformat gives a copied cell a new id
        return _grade_course(course, workers, on_progress, scheduler)


@contextmanager
def executor_for(workers: int | None, scheduler: str | None) -> Iterator[Executor]:
    """Where `grade_submission` runs: local threads (each starts its own student process), or
    the workers of a dask.distributed cluster (which need this package and its solutions/)."""
    if scheduler is None:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            yield pool
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
        yield client.get_executor(pure=False)  # a regrade must run again, not reuse a result


def _grade_course(course, workers, on_progress, scheduler) -> list[Outcome]:
    from . import export, feedback, gradescope

    put_python_on_path()
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise GradeError(f"{course} is not a course: run `autograder release --course {course}` first")
    cfg = course_config(course)
    course_id = CourseDirectory(config=cfg).course_id
    try:
        points = gradebook_points(cfg.CourseDirectory.db_url, NOTEBOOK_ID, spec.ASSIGNMENT_ID, course_id)
    except MissingEntry:
        raise GradeError(f"the gradebook of {course} has no assignment {spec.ASSIGNMENT_ID!r}: "
                         f"run `autograder release --course {course}` first") from None
    students = submissions(course)
    progress = on_progress or (lambda total, done: None)
    progress(len(students), None)
    seed = int(cfg.IsolatedCheck.get("seed", 0))
    solutions = str(solutions_path() or "") or None
    outcomes: dict[str, Outcome] = {}

    def unusable(student: str, reason: str) -> None:
        record_unusable(course, cfg, student, reason)
        outcomes[student] = outcome(cfg, student, None, reason)
        progress(len(students), outcomes[student])

    with executor_for(workers, scheduler) as pool:
        futures = {}
        for student in students:
            path = course / "submitted" / student / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME
            try:
                nb = read_and_sanitize(path, student, cfg)
            except Unusable as exc:
                unusable(student, str(exc))
                continue
            futures[pool.submit(grade_submission, nb, points, student_seed(seed, student),
                                solutions)] = student
        for future in as_completed(futures):
            student = futures[future]
            try:
                report = future.result()
            except notebook.NotebookError as exc:
                unusable(student, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - the grader's own failure, for this one only
                unusable(student, f"the grader failed: {type(exc).__name__}: {one_line(exc)}")
                continue
            reason = record(cfg, student, report)
            if reason:
                unusable(student, reason)
                continue
            outcomes[student] = outcome(cfg, student, report, None)
            progress(len(students), outcomes[student])

    ordered = [outcomes[s] for s in students]
    feedback.generate(course, cfg, ordered, workers or os.cpu_count() or 1)
    export.grades_csv(course, cfg, {o.student: o.reason for o in ordered if o.reason})
    gradescope.write_all(course, ordered)
    return ordered
