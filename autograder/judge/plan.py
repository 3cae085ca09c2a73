"""The plan of one grading run: every call to make, its inputs, and the answers to expect.

Built on the trusted side from the lesson and a seed. Only `wire_inputs()` and `wire_targets()`
cross to the student's process; the expected gradients never do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import torch

from ..lesson.model import Case, Check, Lesson
from ..lesson.resolve import fresh_seed
from ..present.report import REFERENCE_NOTE
from ..wire import Call
from . import kinds, problems


@dataclass
class PlannedCall:
    target: str
    check: Check
    case: Case
    call: Call
    inputs: dict[str, torch.Tensor]  # float64, as sent (rounded to the case's dtype first)
    expected: dict[str, torch.Tensor] = field(default_factory=dict)
    accepted: dict[str, torch.Tensor] = field(default_factory=dict)
    lesson: Lesson | None = None
    #: The reference's gradients as a function of the call's inputs (None where it raises), for
    #: the diagnosis of inputs mixed up: only where the plan was built with the solutions, so a
    #: plan without them (a student's self-check) loads and runs no reference.
    reference: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor] | None] | None = None


@dataclass
class Plan:
    seed: int
    reference: str
    calls: list[PlannedCall]
    lesson: Lesson | None = None
    #: One line per reference that disagrees with autograd (`REFERENCE_NOTE`): the instructor's.
    reference_problems: list[str] = field(default_factory=list)

    def for_check(self, target: str, check: Check) -> list[PlannedCall]:
        return [p for p in self.calls if p.target == target and p.check is check]

    def wire_targets(self, targets: tuple[str, ...] | None = None) -> list[dict]:
        names = targets or tuple(dict.fromkeys(p.target for p in self.calls))
        return [{"name": t, "calls": [p.call.to_json() for p in self.calls if p.target == t]}
                for t in names]

    def wire_inputs(self) -> dict[str, torch.Tensor]:
        wire = {}
        for p in self.calls:
            numbers = problems.numbers_of(p.call)  # a number is sent as it is, never rounded
            for name, value in p.inputs.items():
                wire[f"{p.call.id}/{name}"] = (value.to(problems.DTYPES[p.case.dtype])
                                               if value.is_floating_point() and
                                               name not in numbers else value)
        return wire


class ReferenceMismatch(RuntimeError):
    """The reference solution failed to run: a bug on the instructor's side, which `build_plan`
    says in a note (`Plan.reference_problems`), never raises."""


def reference_gradients(solutions: ModuleType, call: Call,
                        inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's `.g` for one call, made here: the reference is trusted code, called
    directly on copies of the inputs (the untrusted harness is never used on this side)."""
    numbers = problems.numbers_of(call)
    objs = {name: problems.argument(inputs[name], name, numbers) if name in numbers
            else inputs[name].clone() for name in call.args}
    for name, grad in call.grads.items():
        objs[name].g = inputs[grad].clone()
    try:
        with torch.no_grad():
            getattr(solutions, call.function)(*(objs[name] for name in call.args))
        return {name: objs[name].g for name in call.collect}
    except Exception as exc:  # noqa: BLE001 - an instructor's bug, said in one line
        raise ReferenceMismatch(f"raised {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:200]}") from None


def build_plan(lesson: Lesson, seed: int | None = None, targets: tuple[str, ...] | None = None,
               solutions: ModuleType | None = None,
               lanes: tuple[str, ...] = ("cpu", "gpu-ready", "cuda"),
               refuse_autograd: frozenset[str] | set[str] = frozenset()) -> Plan:
    """Draw inputs for every check of `targets` (default: all of the lesson's) and compute what
    each call must give; `solutions` is the lesson's reference module, or None (autograd alone).

    `lanes` picks the cases by where they run (`Case.lane`); the true gradients are always
    computed here, in float64 on the CPU, whatever device the call itself runs on. The calls of
    the targets in `refuse_autograd` run with autograd's engine refusing (`wire.Call`).

    The reference is cross-checked against autograd on the inputs autograd saw (`make_inputs`);
    where it disagrees, the plan says so (`reference_problems`, one line per reference, for the
    instructor) and the checks go on with autograd's answers: a student never pays for it.
    """
    seed = fresh_seed() if seed is None else seed
    gen = torch.Generator().manual_seed(seed)
    calls = []
    wrong: dict[str, list[str]] = {}  # reference function -> what it got wrong, where
    for target in targets or lesson.names:
        spec = lesson.target(target)
        for check in spec.checks:
            if check.kind == kinds.STATIC:  # the gate: read, never run
                continue
            kind = kinds.of(check.kind)
            for i, case in enumerate(check.cases):
                call = kind.call(spec, f"{target}:{check.name}:{i}", case,
                                 target in refuse_autograd)
                exact = kind.inputs(lesson, target, case, gen)
                if case.lane not in lanes:  # drawn all the same: a seed gives the same inputs
                    continue
                inputs = {k: v if k in spec.numbers else problems.as_case(v, case)
                          for k, v in exact.items()}
                planned = PlannedCall(target, check, case, call, inputs, lesson=lesson,
                                      reference=_by_reference(solutions, call))
                planned.expected, planned.accepted = kind.answers(lesson, target, inputs)
                # A gradient to compare the reference's with, on the CPU (no GPU on this side).
                if planned.expected and solutions is not None and case.lane == "cpu":
                    said = _cross_check(solutions, planned, exact)
                    if said:
                        where = f"{check.name} case {i + 1} ({case.dtype})"
                        wrong.setdefault(call.function, []).append(f"{said} in {where}")
                calls.append(planned)
    return Plan(seed, "reference solutions and autograd" if solutions else "autograd", calls,
                lesson, [_reference_note(lesson, function, said)
                         for function, said in wrong.items()])


def _by_reference(solutions: ModuleType | None, call: Call):
    """The reference's gradients of `call` as a function of its inputs, or None where there is no
    reference for it."""
    if solutions is None or not hasattr(solutions, call.function):
        return None

    def by_reference(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        try:
            return reference_gradients(solutions, call, inputs)
        except ReferenceMismatch:
            return None
    return by_reference


def _reference_note(lesson: Lesson, function: str, said: list[str]) -> str:
    more = f", and {len(said) - 2} more case(s)" if len(said) > 2 else ""
    return (f"{REFERENCE_NOTE} {lesson.id}'s reference {function} {'; '.join(said[:2])}{more}: "
            "graded against torch.autograd alone, no student affected; fix it in the lesson's "
            "reference.py")


def _cross_check(solutions: ModuleType, planned: PlannedCall,
                 exact: dict[str, torch.Tensor]) -> str | None:
    """What the reference gets wrong in this call, or None: on `exact`, the inputs autograd saw
    (a derived one, log_softmax's `out`, unrounded), the reference must give autograd's answer
    to a tenth of the lesson's float64 tolerance, relative to the gradient's scale, in any case:
    nothing was rounded between the two."""
    try:
        reference = reference_gradients(solutions, planned.call, exact)
    except ReferenceMismatch as exc:
        return str(exc)
    tol = planned.lesson.tolerance("float64") / 10
    for name, truth in planned.expected.items():
        ref = reference.get(name)
        if not isinstance(ref, torch.Tensor) or ref.shape != truth.shape:
            return f"gives no {name}.g of {name}'s shape"
        err = (ref.to(torch.float64) - truth).abs()
        if name in planned.accepted:  # either answer, element by element (ReLU at 0)
            err = torch.minimum(err, (ref.to(torch.float64) - planned.accepted[name]).abs())
        scale = max(truth.abs().max().item() if truth.numel() else 0.0, 1.0)
        if not bool((err <= tol * scale).all()):  # NaN fails too
            return f"disagrees with autograd on {name}.g"
    return None
