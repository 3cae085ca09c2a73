"""The report of one notebook: per-check results, points, messages, mistake codes (see docs/contract.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

#: How a note on the lesson's reference begins (it disagrees with autograd: `plan.build_plan`).
REFERENCE_NOTE = "reference:"
#: Notes that only the instructor reads (the jail's layers, the reference's bugs): never in what a
#: student sees.
INSTRUCTOR_ONLY = ("sandbox:", REFERENCE_NOTE)


def for_students(note: str) -> bool:
    return not note.startswith(INSTRUCTOR_ONLY)


def reference_notes(notes_of: Iterable[tuple[str, Iterable[str]]]) -> dict[str, list[str]]:
    """Each distinct note on the reference, with the students whose grading met it, from
    (student, notes) pairs: what a class summary says once, not once per student."""
    found: dict[str, list[str]] = {}
    for student, notes in notes_of:
        for note in dict.fromkeys(notes):
            if note.startswith(REFERENCE_NOTE):
                found.setdefault(note, []).append(student)
    return found


@dataclass(frozen=True)
class Verdict:
    """How one call fared: passed, a one-line message, mistake codes."""

    passed: bool
    message: str = ""
    mistakes: tuple[str, ...] = ()
    picture: object = field(default=None, compare=False, repr=False)  # picture.Picture or None


@dataclass
class CheckResult:
    id: str
    target: str
    passed: bool
    points: float
    max_points: float
    message: str
    mistakes: list[str] = field(default_factory=list)
    #: Where its `.g` differs from the truth (`picture.Picture`), for the pages: never in the JSON.
    picture: object = field(default=None, compare=False, repr=False)


@dataclass
class Report:
    checks: list[CheckResult]
    reference: str = "autograd"  # what the gradients were compared with
    seed: int | None = None
    notes: list[str] = field(default_factory=list)
    output: str = ""  # what the student's code printed (never part of the JSON)
    devices: dict = field(default_factory=dict)  # per device lane: what ran, what it found
    lesson: str = ""  # the lesson's id (its nbgrader assignment)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 6)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def target_score(self, target: str) -> tuple[float, float]:
        mine = [c for c in self.checks if c.target == target]
        return round(sum(c.points for c in mine), 6), round(sum(c.max_points for c in mine), 6)

    def mistakes(self, target: str | None = None) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.checks:
            if target is None or c.target == target:
                seen.update(dict.fromkeys(c.mistakes))
        return list(seen)

    def to_dict(self) -> dict:
        return {"lesson": self.lesson, "score": self.score, "max_score": self.max_score,
                "checks": [{k: v for k, v in asdict(replace(c, picture=None)).items()
                            if k != "picture"} for c in self.checks],
                "reference": self.reference, "seed": self.seed, "notes": self.notes,
                "devices": self.devices}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def grouped(self, target: str) -> tuple[list[tuple[list[str], str, list[str]]], list[str]]:
        """What a student reads about one target, as `check` and the self-check show it: each
        distinct mistake once, as (the checks it fails, the first one's message, its codes), and
        the names of the checks that pass. Checks that fail for the same mistakes share one line
        (the JSON keeps every check's own message: their shapes and numbers differ)."""
        failing: dict[object, list[CheckResult]] = {}
        passing = []
        for c in self.checks:
            if c.target != target:
                continue
            if c.passed:
                passing.append(c.id.split("/", 1)[1])
            else:
                failing.setdefault(tuple(c.mistakes) or c.message, []).append(c)
        return ([([c.id.split("/", 1)[1] for c in checks], checks[0].message, checks[0].mistakes)
                 for checks in failing.values()], passing)

    def student_text(self, target: str, width: int = 88) -> str:
        """The self-check's words on one target: a head line, a line per distinct mistake (its
        codes on a line of their own, so that a narrow notebook never breaks one), and what
        passes. Plain text, wrapped at `width`."""
        import textwrap

        mine = [c for c in self.checks if c.target == target]
        failed, passing = self.grouped(target)
        failing = sum(len(names) for names, _, _ in failed)
        lines = [f"{target}: " + (f"{failing} of {len(mine)} checks fail" if failing
                                  else f"all {len(mine)} checks pass")]
        for names, message, codes in failed:
            lines += textwrap.wrap(f"FAIL {', '.join(names)}: {message}", width,
                                   initial_indent="  ", subsequent_indent="       ",
                                   break_long_words=False, break_on_hyphens=False)
            if codes:
                lines.append(f"       mistakes: {', '.join(codes)}")
        if failed and passing:
            lines += textwrap.wrap(f"pass: {', '.join(passing)}", width, initial_indent="  ",
                                   subsequent_indent="        ", break_on_hyphens=False)
        return "\n".join(lines)

    def target_text(self, target: str, points: bool = True) -> str:
        """The lines a student reads about one target: the same words everywhere."""
        mine = [c for c in self.checks if c.target == target]
        if points:
            got, out_of = self.target_score(target)
            head = f"{target}: {got:g} / {out_of:g}"
        else:
            failing = sum(not c.passed for c in mine)
            head = f"{target}: " + (f"{failing} of {len(mine)} checks fail" if failing
                                    else f"all {len(mine)} checks pass")
        lines = [head]
        for c in mine:
            mark = "PASS" if c.passed else "FAIL"
            score = f" ({c.points:g}/{c.max_points:g})" if points else ""
            codes = f"  [{', '.join(c.mistakes)}]" if c.mistakes else ""
            lines.append(f"  {mark} {c.id}{score}: {c.message}{codes}")
        return "\n".join(lines)

    def text(self) -> str:
        targets = list(dict.fromkeys(c.target for c in self.checks))
        body = "\n".join(self.target_text(t) for t in targets)
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return f"{body}\nscore: {self.score:g} / {self.max_score:g}{notes}"
