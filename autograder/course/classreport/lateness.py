"""Which students handed in late, in the words of their feedback page (`late.Late.said`).

The gradebook holds the hand-in that counts: where its timestamp is after the due date, it was
late and counts (`latest`, or `feedback-only` where nothing came on time). Under `feedback-only`
and `refuse` a late hand-in that came after an on-time one is kept out of the gradebook: it is the
one in `submitted/` (its `timestamp.txt` after the due date, not the gradebook's), and the
on-time grade stands.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..late import Late
from ..record import submitted_timestamp


def late_words(course: Path, assignment: str, sub, due: datetime | None, policy: str,
               score: float) -> str | None:
    """One line on the student's late hand-in (`sub`: nbgrader's submission row, `score`: its
    grade, late penalty taken off), or None where nothing of theirs came after the due date."""
    if due is None:
        return None
    counted = sub.timestamp
    if counted is not None and counted > due:  # the gradebook's grade is the late hand-in's
        return Late("feedback-only" if policy == "feedback-only" else "latest",
                    counted, due, None).said()
    if policy == "latest":  # a later one in submitted/ is not graded yet: the grade is on time
        return None
    handed = submitted_timestamp(course, sub.student.id, assignment)
    if handed is None or handed <= due or handed == counted:
        return None
    kept = (score, float(sub.max_score), counted) if counted is not None else None
    return Late(policy, handed, due, kept).said()
