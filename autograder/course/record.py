"""Recording: each graded submission goes into nbgrader's gradebook and `autograded/`.

The recorder is nbgrader's own `Autograde` converter, one instance for the whole class, doing what
stock `nbgrader autograde` does for each student, with two differences that change no result:

- The notebook it records was sanitized before it was graded (`grade.read_and_sanitize` runs
  nbgrader's sanitize steps, so that the engine grades what nbgrader restored): the converter's
  own sanitize pass, a second read and run of the same steps, is skipped.
- The gradebook is opened once for the class, and each submission is committed once. Stock
  nbgrader opens it ten times per student (each time a new SQLAlchemy engine: every query is
  compiled again) and commits about thirty times. Its steps that open it use this one instead
  (`nbgrader_parts.py`, which also compiles nbgrader's metadata schema once for the class).

Everything else is nbgrader's: the student and submission rows, the timestamp and late penalty,
the source folder's files, `IsolatedCheck` writing each grade cell's result, `SaveAutoGrades`
and the course's other configured steps and hooks, file permissions, the clean-up on failure.
tests/course/test_course.py checks that stock `nbgrader autograde` records the same, file for file.

All of it runs in the grading process, one submission at a time, one transaction each (on
SQLite's file or the database server the course names).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from .. import files
from ..lesson.model import Lesson
from ..present.report import Report
from . import nbgrader_parts
from .preprocessor import IsolatedCheck, notes_cell

# What of a student's other files is copied to autograded/ (and so to feedback/): never more.
MAX_OTHER_FILE_BYTES = 64 << 20  # each
MAX_OTHER_FILES = 1000
MAX_OTHER_BYTES = 256 << 20  # in all


def read_timestamp(course: Path, student: str, assignment: str):
    """The submission's `timestamp.txt` as a date, read without following a link; None where
    there is none. Raises `files.Refused` (a link, too large...) or ValueError (not a date)."""
    raw = files.read_under(course, ("submitted", student, assignment, "timestamp.txt"),
                           1024)
    text = (raw or b"").decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return utils.parse_utc(text)
    except Exception:  # noqa: BLE001 - nbgrader 0.9.6 itself crashes on one (CourseDirectory.fail)
        raise ValueError("not a date") from None


def submitted_timestamp(course: Path, student: str, assignment: str):
    """`read_timestamp`, or None where it cannot be read (the submission was then recorded as
    not graded, with the reason)."""
    try:
        return read_timestamp(course, student, assignment)
    except ValueError:  # files.Refused is one
        return None


def quiet_log() -> logging.Logger:
    """nbgrader's log, kept off the terminal (a progress bar is there); errors give reasons."""
    log = logging.getLogger("autograder.nbgrader")
    log.propagate = False
    log.setLevel(logging.WARNING)
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class _Remember(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class SanitizedAutograde(Autograde):
    """nbgrader's Autograde for notebooks already sanitized and graded (see the module's doc)."""

    def __init__(self, gradebook: Gradebook, lesson: Lesson, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gradebook, self.lesson = gradebook, lesson
        self.ready: dict[str, tuple[nbformat.NotebookNode, Report]] = {}  # student -> (nb, report)

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        """What `Autograde.init_assignment` does, on the open gradebook, never through a link
        (`nbgrader_parts.init_autograde_assignment`)."""
        self.copy_other_files(assignment_id, student_id)
        nbgrader_parts.init_autograde_assignment(
            self, self.gradebook, assignment_id, student_id,
            submitted_timestamp(Path(self.coursedir.root), student_id, assignment_id),
            self.lesson.notebook)

    def copy_other_files(self, assignment_id: str, student_id: str) -> None:
        """What `BaseConverter.init_assignment` does with a student's other files (copy them to
        `autograded/`), in one walk of the submission, for plain files only: a link (to another
        student's work, to the source, to /etc/shadow) or a FIFO in the submission is left where
        it is. At most `MAX_OTHER_FILES` files and `MAX_OTHER_BYTES` are copied; what the caps
        leave out is one note of the report (on the graded notebook and the feedback page)."""
        left_out = files.copy_plain(
            Path(self._format_source(assignment_id, student_id)),
            Path(self._format_dest(assignment_id, student_id)), self.coursedir.ignore,
            MAX_OTHER_FILES, MAX_OTHER_BYTES, MAX_OTHER_FILE_BYTES)
        if left_out and student_id in self.ready:
            self.ready[student_id][1].notes.append(left_out)

    def prepare_exporter(self, report: Report) -> None:
        """A fresh exporter with the configured autograde steps, registered through nbconvert's
        public `register_preprocessor` (stock empties its one exporter's private list of them):
        the gradebook's on the open gradebook, the check with the report already made."""
        self.exporter = self.exporter_class(parent=self, config=self.config, preprocessors=[])
        for configured in self.autograde_preprocessors:
            step = nbgrader_parts.step_for(configured, self.gradebook, parent=self.exporter)
            if isinstance(step, IsolatedCheck):
                step.report, step.lesson = report, self.lesson
            self.exporter.register_preprocessor(step)

    def convert_single_notebook(self, notebook_filename: str) -> None:
        """The notebook as it was sanitized and graded, through the autograde steps, written to
        `autograded/`: stock reads it from `submitted/`, sanitizes it, writes it, reads it back
        and runs the steps."""
        resources = self.init_single_notebook_resources(notebook_filename)
        info = resources["nbgrader"]
        nb, report = self.ready[info["student"]]
        self.prepare_exporter(report)
        nbgrader_parts.as_from_filename(resources, resources["unique_key"],
                                        self._format_dest(info["assignment"], info["student"]))
        with utils.setenv(NBGRADER_EXECUTION="autograde"):
            output, resources = self.exporter.from_notebook_node(nb, resources)
        self.write_single_notebook(output, resources)


def write_not_graded(course: Path, student: str, reason: str, lesson: Lesson) -> Path:
    """`autograded/<student>/<id>/<id>.ipynb` for a submission that could not be graded, so that
    formgrader lists it in Manual Grading (it lists the notebooks it finds there) and shows why:
    the released notebook, the reason at the top, in each answer cell and under each grade cell.
    A manual score given there counts as for any submission. Where the released notebook cannot
    be read, the reason alone."""
    try:
        nb = nbformat.read(course / "release" / lesson.id / lesson.notebook, as_version=4)
    except Exception:  # noqa: BLE001 - the instructor's file, gone or changed: the reason alone
        nb = nbformat.v4.new_notebook()
    said = f"Not graded: {reason}"
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader"):
            continue
        if cell.metadata.nbgrader.get("solution"):
            cell.source = "# " + " ".join(said.split())
        elif cell.metadata.nbgrader.get("grade"):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=said + "\n")]
    nb.cells.insert(0, notes_cell(nb, "Not graded", [reason]))
    path = course / "autograded" / student / lesson.id / lesson.notebook
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# --- the recorder ---------------------------------------------------------------------------------

class Recorder:
    """The class's gradebook, open while a lesson's submissions are graded; `record` each graded
    submission into it."""

    def __init__(self, course: Path, cfg: Config, lesson: Lesson) -> None:
        self.course, self.lesson = course, lesson
        self.assignment, self.notebook_id = lesson.id, lesson.notebook_id
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id = lesson.id
        self.gradebook = Gradebook(cfg.CourseDirectory.db_url, coursedir.course_id)
        self.gradebook.db = nbgrader_parts.OneCommit(self.gradebook.db)
        self.app = SanitizedAutograde(self.gradebook, lesson, coursedir=coursedir,
                                      config=cfg, log=quiet_log())
        self.app.update_config(nbgrader_parts.validate_once())
        self.app.force, self.app.create_student = True, True

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.gradebook.close()

    def enroll(self, students: list[str]) -> None:
        """A row for each student, in this order, before any is graded: nbgrader's export lists
        students as the gradebook holds them, so `grades.csv` keeps one order, whoever finishes
        first."""
        known = {s.id for s in self.gradebook.students}
        for student in students:
            if student not in known:
                self.gradebook.add_student(student)
        self.gradebook.db.commit_now()

    def record(self, student: str, nb: nbformat.NotebookNode, report: Report) -> str | None:
        """Record `nb` (as `grade.read_and_sanitize` left it) graded as `report`.

        Returns None when nbgrader recorded it, else the one-line reason it could not (then
        nothing of it is left in `autograded/` or in the gradebook's scores).
        """
        self.app.coursedir.student_id = student
        self.app.ready = {student: (nb, report)}
        remember = _Remember()
        self.app.log.addHandler(remember)
        try:
            self.app.start()
            self.gradebook.db.commit_now()
        except Exception as exc:  # noqa: BLE001 - nbgrader logs the cause, raises a summary
            self.gradebook.db.rollback()
            # nbgrader logs the traceback, then raises a summary: the traceback's last line says why
            causes = [m.strip().splitlines()[-1] for m in remember.lines if "Traceback" in m]
            return ("nbgrader could not record it: "
                    + (one_line(Exception(causes[0])) if causes else one_line(exc)))
        finally:
            self.app.log.removeHandler(remember)
            self.app.ready = {}
        return None

    def record_unusable(self, student: str, reason: str) -> None:
        """0 for every grade cell (a manual score still wins), the reason as each cell's comment,
        and a notebook in `autograded/` that says why (`write_not_graded`)."""
        gb = self.gradebook
        timestamp = submitted_timestamp(self.course, student, self.assignment)
        gb.update_or_create_student(student)
        gb.update_or_create_submission(self.assignment, student,
                                       **({"timestamp": timestamp} if timestamp else {}))
        submitted = gb.find_submission_notebook(self.notebook_id, self.assignment, student)
        for grade in submitted.grades:
            grade.auto_score = 0.0
            grade.needs_manual_grade = grade.manual_score is not None
        for comment in submitted.comments:
            comment.auto_comment = f"Not graded: {reason}"
        gb.db.commit_now()
        # An earlier graded notebook must not stand for this submission in formgrader or feedback.
        for folder in ("autograded", "feedback"):
            shutil.rmtree(self.course / folder / student / self.assignment, ignore_errors=True)
        write_not_graded(self.course, student, reason, self.lesson)

    def scores(self, student: str) -> tuple[float, float, float, float]:
        """(score, max score, late penalty, seconds late) as the gradebook holds them."""
        sub = self.gradebook.find_submission(self.assignment, student)
        return (float(sub.score), float(sub.max_score), float(sub.late_submission_penalty or 0.0),
                float(sub.total_seconds_late or 0.0))
