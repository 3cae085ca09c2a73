"""The report of one notebook: per-check results, points, messages, mistake codes (see docs/contract.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

#: How a note on the lesson's reference begins (it disagrees with autograd: `plan.build_plan`).
REFERENCE_NOTE = "reference:"
#: Notes that only the instructor reads (the jail's layers, the reference's bugs): never in what a
#: student sees.
INSTRUCTOR_ONLY = ("sandbox:", REFERENCE_NOTE)


def exact(number: float | int | Fraction) -> Fraction:
    """A lesson's weight or points, or the gradebook's, exactly as written: 0.1 is 1/10 (its
    shortest decimal), not the binary float nearest it. Points are summed as fractions and
    rounded once, where read (`Report.score`), to nbgrader's precision: a Python float, which
    the gradebook stores (a REAL column) and reads back (`float()` of a grade cell's output)
    unchanged, so that a perfect answer's points are the maximum itself, never 3.999999."""
    return number if isinstance(number, Fraction) else Fraction(repr(number))


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
    """How one call fared: passed, a one-line message, mistake codes; and, where it failed, the
    gradients (`.g` names) it still got right, which earn their share where the lesson gives
    credit per gradient (`scoring`). A failure that names none earns nothing."""

    passed: bool
    message: str = ""
    mistakes: tuple[str, ...] = ()
    right: tuple[str, ...] = ()
    picture: object = field(default=None, compare=False, repr=False)  # picture.Picture or None


#: The columns of every line a student reads in the self-check and `check`: a notebook's output
#: and a terminal of 88 columns show each line whole.
WIDTH = 88

#: A check's states (`CheckResult.state`).
PASSED, FAILED, WAITING = "passed", "failed", "waiting"
#: The codes of a failed gate: the checks it holds back wait for it, not for the right values.
GATE_CODES = ("uses_autograd", "not_allowed")


@dataclass
class CheckResult:
    """One check of one target. `passed`: it earned all its points (`points` may be a share
    of them where the lesson gives credit per gradient). `state`: "passed", "failed" (a mistake
    of its own) or "waiting": it earns nothing (or only the gradients that are right) until the
    check named by `waits_for` passes, and its mistake is that check's, said there."""

    id: str
    target: str
    passed: bool
    points: float
    max_points: float
    message: str
    mistakes: list[str] = field(default_factory=list)
    state: str = ""
    waits_for: str = ""  # the check's name (its target's), when waiting
    #: Where its `.g` differs from the truth (`picture.Picture`), for the pages: never in the JSON.
    picture: object = field(default=None, compare=False, repr=False)
    #: (points, max_points) as exact fractions (`scoring`), which sums add: never in the JSON.
    exact: tuple | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.state:
            self.state = PASSED if self.passed else FAILED

    @property
    def name(self) -> str:
        """The check's name without its target's: "values-float64"."""
        return self.id.split("/", 1)[-1]

    def exact_points(self) -> tuple[Fraction, Fraction]:
        """(points, max_points) exactly: as scoring gave them, else as the floats say."""
        return self.exact or (exact(self.points), exact(self.max_points))


def total(checks: Iterable[CheckResult]) -> tuple[float, float]:
    """(points, max points) of `checks`: summed exactly, rounded once (`exact`)."""
    got = out_of = Fraction(0)
    for c in checks:
        points, most = c.exact_points()
        got, out_of = got + points, out_of + most
    return float(got), float(out_of)


@dataclass
class Report:
    checks: list[CheckResult]
    reference: str = "autograd"  # what the gradients were compared with
    seed: int | None = None
    notes: list[str] = field(default_factory=list)
    output: str = ""  # what the student's code printed (never part of the JSON)
    devices: dict = field(default_factory=dict)  # per device lane: what ran, what it found
    lesson: str = ""  # the lesson's id (its nbgrader assignment)
    #: target -> its feedback picture as a notebook output's data, where drawn ahead
    #: (`picture.draw_for_feedback`; never part of the JSON)
    drawn: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return total(self.checks)[0]

    @property
    def max_score(self) -> float:
        return total(self.checks)[1]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def target_score(self, target: str) -> tuple[float, float]:
        return total(c for c in self.checks if c.target == target)

    def mistakes(self, target: str | None = None) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.checks:
            if target is None or c.target == target:
                seen.update(dict.fromkeys(c.mistakes))
        return list(seen)

    def to_dict(self) -> dict:
        return {"lesson": self.lesson, "score": self.score, "max_score": self.max_score,
                "checks": [{k: v for k, v in asdict(replace(c, picture=None)).items()
                            if k not in ("picture", "exact")} for c in self.checks],
                "reference": self.reference, "seed": self.seed, "notes": self.notes,
                "devices": self.devices}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def grouped(self, target: str) -> tuple[list[tuple[list[str], str, list[str]]], list[str]]:
        """What a student reads about one target, as `check` and the self-check show it: each
        distinct mistake once, as (the checks it fails, a message true of them all, its codes),
        and the names of the checks that pass. Checks that fail for the same mistakes share one
        line; where their messages differ (their sizes, dtypes and numbers), the line's message
        is the first one's and says so. Waiting checks are in neither list (`waiting`): their
        mistake is the line of the check they wait for. The JSON keeps every check's own
        message."""
        failing: dict[object, list[CheckResult]] = {}
        passing = []
        for c in self.checks:
            if c.target != target or c.state == WAITING:
                continue
            if c.state == PASSED:
                passing.append(c.name)
            else:
                failing.setdefault(tuple(c.mistakes) or c.message, []).append(c)
        return ([([c.name for c in checks], line_message(checks), checks[0].mistakes)
                 for checks in failing.values()], passing)

    def waiting(self, target: str) -> list[tuple[str, list[str]]]:
        """The checks of `target` that wait, grouped by what they wait for, as (the words, the
        checks): ("the right values (values-float64)", ["batch-of-one", "gpu-ready"])."""
        mine = {c.name: c for c in self.checks if c.target == target}
        found: dict[str, list[str]] = {}
        for c in mine.values():
            if c.state == WAITING:
                found.setdefault(c.waits_for, []).append(c.name)
        return [(waiting_for(name, mine.get(name)), names) for name, names in found.items()]

    def head(self, target: str) -> str:
        """'mse_grad: 2 of 6 checks fail, 3 wait', or 'lin_grad: all 6 checks pass'."""
        mine = [c for c in self.checks if c.target == target]
        failing = sum(c.state == FAILED for c in mine)
        waiting = sum(c.state == WAITING for c in mine)
        if not failing and not waiting:
            return f"{target}: all {len(mine)} checks pass"
        said = [f"{failing} of {len(mine)} checks fail"] if failing else []
        if waiting:
            said.append(f"{waiting} {'waits' if waiting == 1 else 'wait'}" if failing
                        else f"{waiting} of {len(mine)} checks wait")
        return f"{target}: " + ", ".join(said)

    def student_text(self, target: str, width: int = WIDTH) -> str:
        """The self-check's words on one target: a head line, a line per distinct mistake (its
        codes on a line of their own, so that a narrow notebook never breaks one), the checks
        that wait for another, and what passes. Plain text, every line within `width`."""
        failed, passing = self.grouped(target)
        waiting = self.waiting(target)
        lines = [self.head(target)]
        for names, message, codes in failed:
            lines += wrapped(f"FAIL {', '.join(names)}: {message}", width)
            if codes:
                lines += wrapped(f"mistakes: {', '.join(codes)}", width, first="       ",
                                 rest="                 ")
        for words, names in waiting:
            lines += wrapped(f"waiting for {words}: {', '.join(names)}", width)
        if (failed or waiting) and passing:
            lines += wrapped(f"pass: {', '.join(passing)}", width, rest="        ")
        return "\n".join(lines)

    def target_text(self, target: str, points: bool = True) -> str:
        """The lines a student reads about one target: the same words everywhere."""
        mine = [c for c in self.checks if c.target == target]
        if points:
            got, out_of = self.target_score(target)
            head = f"{target}: {got:g} / {out_of:g}"
        else:
            head = self.head(target)
        lines = [head]
        for c in mine:
            mark = {PASSED: "PASS", WAITING: "WAIT"}.get(c.state, "FAIL")
            score = f" ({c.points:g}/{c.max_points:g})" if points else ""
            codes = f"  [{', '.join(c.mistakes)}]" if c.mistakes and c.state != WAITING else ""
            said = f"waits for {c.waits_for}" if c.state == WAITING else c.message
            lines.append(f"  {mark} {c.id}{score}: {said}{codes}")
        return "\n".join(lines)

    def text(self) -> str:
        targets = list(dict.fromkeys(c.target for c in self.checks))
        body = "\n".join(self.target_text(t) for t in targets)
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return f"{body}\nscore: {self.score:g} / {self.max_score:g}{notes}"


def wrapped(text: str, width: int = WIDTH, first: str = "  ", rest: str = "       ") -> list[str]:
    """`text` as lines of at most `width` columns, the first indented by `first`, the others by
    `rest`; broken between words only, a short group in brackets such as (3, 4) counting as one
    word, so that a code or a shape is never cut and only a word longer than a line may pass
    it."""
    lines, line = [], first
    for word in _WORDS.findall(text):
        if line.strip() and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = rest + word
        else:
            line += (" " if line.strip() else "") + word
    return [*lines, line] if line.strip() else lines


#: A word: what stands between spaces, where a short group in brackets is one: a shape, (3, 4)
#: or (N, 1), or a term, (x - t) or (inp > 0).
_WORDS = re.compile(r"(?:\([^()\n]{1,12}\)|\S)+")


def line_message(checks: list[CheckResult]) -> str:
    """The message of a line that covers `checks` (one mistake): theirs where they all say the
    same; else the first one's, naming it, so that its sizes and numbers (N = 3, allowed 1e-09)
    are not read as every check's."""
    first = checks[0].message
    if all(c.message == first for c in checks):
        return first
    return f"in {checks[0].name}, {first}"


def waiting_for(name: str, check: CheckResult | None) -> str:
    """What a waiting check waits for, in words: a failed gate by its name, else the right
    values, naming the check that shows them."""
    if check is not None and any(m.rsplit(".", 1)[-1] in GATE_CODES for m in check.mistakes):
        return name
    return f"the right values ({name})"


def name_cells(text: str, labels: dict[str, str]) -> str:
    """'(cell 13, line 2)' as a student finds it: '(the lin_grad cell, line 2)', or the cell by
    its first line (Jupyter shows no cell numbers; the runner names cells by index)."""
    import re

    return re.sub(r"\bcell \d+\b(?=, line)", lambda m: labels.get(m.group(0), m.group(0)), text)
