"""A hand-in after its lesson's due date, under the lesson's late policy (`config.late_policy`).

`latest` is stock nbgrader: the hand-in is recorded and counts, nbgrader flags it late (the
gradebook's timestamp, which formgrader and `nbgrader export` show) and takes off the penalty its
`LateSubmissionPlugin` gives; its feedback page opens with a line that says "Late". `refuse` and
`feedback-only` leave the gradebook and `autograded/` as they are: the grade stays the on-time
hand-in's, and the student's feedback page says so, with (feedback-only) what this hand-in would
have scored. Where nothing came on time, `refuse` records nothing, and `feedback-only` records the
late hand-in as `latest` does, for the instructor to decide in formgrader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from ..lesson.model import Lesson
from ..present.report import Report
from .record import submitted_timestamp


@dataclass
class Late:
    """A late hand-in: when, the due date, the policy, and the on-time grade the gradebook keeps
    (`kept`: (score, max score, when handed in), None where nothing was handed in on time)."""

    policy: str
    handed: datetime
    due: datetime
    kept: tuple[float, float, datetime] | None

    @property
    def counts(self) -> bool:
        """Whether it is recorded and counts: under `latest`, and under `feedback-only` where
        nothing came on time (then the gradebook flags it late, as nbgrader does, and formgrader
        shows it for the instructor to decide)."""
        return self.policy == "latest" or (self.policy == "feedback-only" and self.kept is None)

    @property
    def seconds(self) -> float:
        return (self.handed - self.due).total_seconds()

    def said(self) -> str:
        """One line: when it came, and what became of it."""
        when = (f"Late: handed in {how_long(self.seconds)} after the due date "
                f"({self.due:%Y-%m-%d %H:%M:%S} UTC)")
        if self.policy == "latest":
            return f"{when}; it counts, with the course's late penalty, if any"
        if self.counts:
            return (f"{when}; nothing was handed in on time, so it counts, with the course's "
                    "late penalty, if any")
        done = ("not graded: the course does not accept late hand-ins" if self.policy == "refuse"
                else "graded for feedback only")
        return f"{when}: {done}; {self.grade_words()}"

    def grade_words(self) -> str:
        if self.kept is None:
            return "nothing was handed in on time, so no grade counts yet"
        score, max_score, when = self.kept
        return (f"the grade stays {score:g} / {max_score:g}, from the hand-in of "
                f"{when:%Y-%m-%d %H:%M:%S} UTC")


def how_long(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds / size
            return f"{n:.1f} {unit}s" if n != 1 else f"1 {unit}"
    return f"{seconds:.0f} s"


def judge(gradebook: Gradebook, course: Path, student: str, lesson: Lesson,
          policy: str) -> Late | None:
    """The student's hand-in in `submitted/` as late, or None where it is on time (or the lesson
    has no due date, or the hand-in no readable time: then it is graded as usual)."""
    handed = submitted_timestamp(course, student, lesson.id)
    try:
        due = gradebook.find_assignment(lesson.id).duedate
    except MissingEntry:
        return None
    if handed is None or due is None or handed <= due:
        return None
    kept = None
    try:
        sub = gradebook.find_submission(lesson.id, student)
    except MissingEntry:
        sub = None
    if sub is not None and sub.timestamp is not None and sub.timestamp <= due:
        kept = (max(0.0, float(sub.score) - float(sub.late_submission_penalty or 0.0)),
                float(sub.max_score), sub.timestamp)
    return Late(policy, handed, due, kept)


def write_page(path: Path, lesson: Lesson, late: Late, report: Report | None,
               max_score: float, reason: str | None = None) -> None:
    """The feedback page of a late hand-in that does not count: what became of it, the grade that
    stays, and (feedback-only) its report, target by target, as a graded notebook shows it."""
    from .pages import render
    from .preprocessor import graded_output

    blocks = []
    if report is not None:
        targets = list(dict.fromkeys(c.target for c in report.checks))
        blocks = [graded_output(report, t).data["text/html"] for t in targets]
    score = late.kept[0] if late.kept else 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render("late.html.j2", lesson=lesson, late=late, said=late.said(),
                           score=score, max_score=max_score, report=report, blocks=blocks,
                           reason=reason),
                    encoding="utf-8")
