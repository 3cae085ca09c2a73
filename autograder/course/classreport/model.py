"""The class as the class report sees it: who handed in, their scores and mistakes, and what is
computed from them once for every writer (the mistakes ranked, the statistics of each target)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ...present.report import reference_notes
from .kept import KeptCheck

TOP_MISTAKES = 10  # in the figure and the terminal summary (the page lists them all)


@dataclass
class Row:
    """One student who handed the assignment in."""

    student: str
    score: float  # the gradebook's, late penalty taken off
    max_score: float
    scores: dict[str, tuple[float, float]]  # target -> (score, max score), manual scores win
    checks: list[KeptCheck] = field(default_factory=list)
    reason: str | None = None  # why it could not be graded
    problem: str | None = None  # why its kept report is missing or not used as it is
    reference: list[str] = field(default_factory=list)  # what its grading found of the reference
    late: str | None = None  # its late hand-in and what became of it, as its feedback page says

    def mistakes(self, target: str) -> list[str]:
        codes = [m for c in self.checks if c.target == target and not c.passed for m in c.mistakes]
        return list(dict.fromkeys(codes))

    def named(self, target: str) -> list[str]:
        """What the ranking counts: the specific codes where the checks name one (the general
        kind that comes with them, `lin_grad.wrong_values`, says nothing more), else the
        general ones."""
        from ...judge.diagnose import GENERAL

        codes = self.mistakes(target)
        return [c for c in codes if c.split(".", 1)[-1] not in GENERAL] or codes

    def all_mistakes(self, targets: list[str]) -> list[str]:
        """Its mistake codes, target after target."""
        return [m for t in targets for m in self.mistakes(t)]


@dataclass
class Mistake:
    code: str
    target: str
    students: list[str]
    message: str  # what its students' first check with it said, the most common of those


@dataclass(frozen=True)
class TargetStats:
    """One target's scores over the graded students."""

    target: str
    out_of: float
    counts: Counter  # score -> how many graded students have it

    @property
    def graded(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float:
        n = self.graded
        return sum(v * k for v, k in self.counts.items()) / n if n else 0.0

    @property
    def full_marks(self) -> int:
        return self.counts.get(self.out_of, 0)

    @property
    def zero(self) -> int:
        return self.counts.get(0.0, 0)

    @property
    def spread(self) -> str:
        """"points: students" for each score, lowest first: `0: 2, 2.4: 1, 3: 4`."""
        return ", ".join(f"{v:g}: {self.counts[v]}" for v in sorted(self.counts))


@dataclass
class ClassReport:
    course: Path
    assignment: str
    targets: list[str]
    rows: list[Row]
    made: str = ""
    page: Path | None = None
    csv: Path | None = None

    @property
    def graded(self) -> list[Row]:
        return [r for r in self.rows if r.reason is None]

    @property
    def not_graded(self) -> list[Row]:
        return [r for r in self.rows if r.reason is not None]

    @property
    def late(self) -> list[Row]:
        """Who handed in after the due date (whether or not that hand-in counts)."""
        return [r for r in self.rows if r.late]

    @property
    def mean_score(self) -> float:
        graded = self.graded
        return sum(r.score for r in graded) / len(graded) if graded else 0.0

    @property
    def max_score(self) -> float:
        return max((r.max_score for r in self.rows), default=0.0)

    @cached_property
    def mistakes(self) -> list[Mistake]:
        """Each mistake code of the graded, most students first."""
        who: dict[str, list[str]] = {}
        target_of: dict[str, str] = {}
        said: dict[str, Counter] = {}
        for row in self.graded:
            for target in self.targets:
                for code in row.named(target):
                    who.setdefault(code, []).append(row.student)
                    target_of.setdefault(code, target)
            first: dict[str, str] = {}  # a target's first failing check says most (no-autograd's)
            for c in row.checks:
                if not c.passed:
                    for code in c.mistakes:
                        first.setdefault(code, c.message)
            for code, message in first.items():
                said.setdefault(code, Counter())[message] += 1
        found = [Mistake(code, target_of[code], students, said[code].most_common(1)[0][0])
                 for code, students in who.items()]
        order = {t: i for i, t in enumerate(self.targets)}
        return sorted(found, key=lambda m: (-len(m.students), order.get(m.target, 0), m.code))

    def reference_notes(self) -> dict[str, list[str]]:
        """Each note on the lesson's reference (it disagrees with autograd), with the students
        whose grading met it: the instructor's bug, said once."""
        return reference_notes((r.student, r.reference) for r in self.rows)

    @cached_property
    def per_target(self) -> list[TargetStats]:
        """Each target's statistics, in the report's order."""
        return [TargetStats(t, self.out_of(t),
                            Counter(r.scores[t][0] for r in self.graded if t in r.scores))
                for t in self.targets]

    def out_of(self, target: str) -> float:
        return max((r.scores[target][1] for r in self.rows if target in r.scores), default=0.0)
