"""The class, read from the gradebook (who handed in, each grade cell's score, manual ones
included) and each student's kept report (their mistakes, or why they could not be graded)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from ...lesson.model import Target
from ..config import ConfigError, GradebookError, course_config, late_policy, open_gradebook
from .kept import Unreadable, read_kept
from .lateness import late_words
from .model import ClassReport, Row

NOT_GRADED = "Not graded: "  # how record.py's comment in the gradebook starts


class ReportError(RuntimeError):
    """No class report can be made; the message says why, in one line."""


def target_of(grade_cell: str) -> str:
    prefix = Target("", "", "", 0.0, ()).grade_cell  # "check_": a grade cell is named after its target
    return grade_cell.removeprefix(prefix) if grade_cell.startswith(prefix) else grade_cell


def _gradebook(course: Path):
    """The course's gradebook, open (a context manager), and its configuration. Raises
    `ReportError`."""
    from nbgrader.coursedir import CourseDirectory

    if not (course / "nbgrader_config.py").is_file():
        raise ReportError(f"{course} is not a course: run `autograder release --course {course}` "
                          "first")
    cfg = course_config(course)
    db_url = cfg.CourseDirectory.db_url
    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"{course} has no gradebook: run `autograder release --course {course}` "
                          "and `autograder grade` first")
    try:
        return open_gradebook(db_url, CourseDirectory(config=cfg).course_id), cfg
    except GradebookError as exc:
        raise ReportError(str(exc)) from None


def assignments(course: str | Path) -> list[str]:
    """The gradebook's assignments that someone has handed in, by name. Raises `ReportError`
    where there is none."""
    course = Path(course).resolve()
    opened, _ = _gradebook(course)
    with opened as gb:
        names = sorted(a.name for a in gb.assignments)
        handed_in = [n for n in names if gb.find_assignment(n).submissions]
    if not names:
        raise ReportError(f"the gradebook has no assignments: run `autograder release --course "
                          f"{course}`")
    if not handed_in:
        raise ReportError(f"nobody has handed in {' or '.join(map(repr, names))} in the "
                          f"gradebook: run `autograder grade --course {course}` first")
    return handed_in


def collect(course: str | Path, assignment: str | None = None) -> ClassReport:
    """The class as the gradebook and the kept reports hold it. Raises `ReportError`."""
    course = Path(course).resolve()
    opened, cfg = _gradebook(course)
    with opened as gb:
        names = sorted(a.name for a in gb.assignments)
        if assignment is None:
            if len(names) != 1:
                raise ReportError(f"the gradebook has {len(names)} assignments"
                                  + (f" ({', '.join(names)}): choose one with --assignment ID"
                                     if names else f": run `autograder release --course {course}`"))
            assignment = names[0]
        elif assignment not in names:
            raise ReportError(f"the gradebook has no assignment {assignment!r}"
                              + (f" (it has: {', '.join(names)})" if names else ""))
        try:
            policy = late_policy(cfg, assignment)
        except ConfigError as exc:
            raise ReportError(str(exc)) from None
        found = gb.find_assignment(assignment)
        cells = sorted({target_of(c.name) for nb in found.notebooks for c in nb.grade_cells})
        rows = [_row(course, assignment, sub) for sub in found.submissions]
        for row, sub in zip(rows, found.submissions, strict=True):
            row.late = late_words(course, assignment, sub, found.duedate, policy, row.score)
    if not rows:
        raise ReportError(f"nobody has handed in {assignment!r} in the gradebook: run "
                          f"`autograder grade --course {course}` first")
    rows.sort(key=lambda r: r.student)
    # The lesson's order, as the checks come; grade cells no report names, after them.
    seen = [c.target for r in rows for c in r.checks]
    targets = [t for t in dict.fromkeys(seen) if t in cells] + [t for t in cells if t not in seen]
    return ClassReport(course, assignment, targets, rows,
                       made=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))


def _row(course: Path, assignment: str, sub) -> Row:
    student = sub.student.id
    grades = [g for nb in sub.notebooks for g in nb.grades]
    penalty = float(sub.late_submission_penalty or 0.0)
    row = Row(student, max(0.0, float(sub.score) - penalty), float(sub.max_score),
              {target_of(g.name): (float(g.score), float(g.max_score)) for g in grades})
    try:
        kept = read_kept(course, assignment, student)
    except Unreadable as exc:
        kept, row.problem = None, str(exc)
    comments = [c.auto_comment for nb in sub.notebooks for c in nb.comments
                if (c.auto_comment or "").startswith(NOT_GRADED)]
    if kept is None:  # the gradebook's comment still says why it was not graded
        row.reason = comments[0].removeprefix(NOT_GRADED) if comments else None
        if row.reason is None and row.problem is None:
            row.problem = ("no report of `autograder grade` is kept for this student (graded by "
                           "stock `nbgrader autograde`?): its mistakes are not counted; grade "
                           "with `autograder grade` to count them")
        return row
    row.reason, row.checks, row.reference = kept.reason, kept.checks, kept.reference
    # A kept report from an earlier grading than the gradebook's scores: say so.
    auto = {target_of(g.name): float(g.auto_score or 0.0) for g in grades}
    expected = Counter()
    for c in kept.checks:
        expected[c.target] += c.points
    if any(abs(expected.get(t, 0.0) - score) > 1e-6 for t, score in auto.items()):
        row.problem = ("its kept report does not give the gradebook's automatic scores (graded "
                       "again since by stock `nbgrader autograde`?): grade with `autograder grade` "
                       "to bring them together")
    return row
