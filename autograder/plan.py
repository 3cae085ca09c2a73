"""The plan of one grading run: every call to make, its inputs, and the answers to expect.

Built on the trusted side from the lesson and a seed. Only `wire_inputs()` and `wire_targets()`
cross to the student's process; the expected gradients never do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import torch

from . import problems
from .lesson import Case, Check, Lesson
from .resolve import fresh_seed


@dataclass
class PlannedCall:
    target: str
    check: Check
    case: Case
    call: problems.Call
    inputs: dict[str, torch.Tensor]  # float64, as sent (rounded to the case's dtype first)
    expected: dict[str, torch.Tensor] = field(default_factory=dict)
    accepted: dict[str, torch.Tensor] = field(default_factory=dict)
    lesson: Lesson | None = None


@dataclass
class Plan:
    seed: int
    reference: str
    calls: list[PlannedCall]
    lesson: Lesson | None = None

    def for_check(self, target: str, check: Check) -> list[PlannedCall]:
        return [p for p in self.calls if p.target == target and p.check is check]

    def wire_targets(self, targets: tuple[str, ...] | None = None) -> list[dict]:
        names = targets or tuple(dict.fromkeys(p.target for p in self.calls))
        return [{"name": t, "calls": [p.call.to_json() for p in self.calls if p.target == t]}
                for t in names]

    def wire_inputs(self) -> dict[str, torch.Tensor]:
        wire = {}
        for p in self.calls:
            for name, value in p.inputs.items():
                wire[f"{p.call.id}/{name}"] = (value.to(problems.DTYPES[p.case.dtype])
                                               if value.is_floating_point() else value)
        return wire


class ReferenceMismatch(RuntimeError):
    """The reference solution disagrees with autograd: a bug on the instructor's side."""


def reference_gradients(solutions: ModuleType, call: problems.Call,
                        inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's `.g` for one call, made here: the reference is trusted code, called
    directly on copies of the inputs (the untrusted harness is never used on this side)."""
    objs = {name: inputs[name].clone() for name in call.args}
    for name, grad in call.grads.items():
        objs[name].g = inputs[grad].clone()
    try:
        with torch.no_grad():
            getattr(solutions, call.function)(*(objs[name] for name in call.args))
        return {name: objs[name].g for name in call.collect}
    except Exception as exc:  # noqa: BLE001 - an instructor's bug, said in one line
        raise ReferenceMismatch(f"the reference {call.function} failed: "
                                f"{type(exc).__name__}: {exc}") from None


def build_plan(lesson: Lesson, seed: int | None = None, targets: tuple[str, ...] | None = None,
               solutions: ModuleType | None = None,
               lanes: tuple[str, ...] = ("cpu", "gpu-ready", "cuda"),
               refuse_autograd: frozenset[str] | set[str] = frozenset()) -> Plan:
    """Draw inputs for every check of `targets` (default: all of the lesson's) and compute what
    each call must give; `solutions` is the lesson's reference module, or None (autograd alone).

    `lanes` picks the cases by where they run (`Case.lane`); the true gradients are always
    computed here, in float64 on the CPU, whatever device the call itself runs on. The calls of
    the targets in `refuse_autograd` run with autograd's engine refusing (`wire.Call`).
    """
    seed = fresh_seed() if seed is None else seed
    gen = torch.Generator().manual_seed(seed)
    calls = []
    for target in targets or lesson.names:
        spec = lesson.target(target)
        for check in spec.checks:
            for i, case in enumerate(check.cases):
                call = problems.make_call(spec, f"{target}:{check.name}:{i}", case,
                                          target in refuse_autograd)
                inputs = {k: _as_case(v, case)
                          for k, v in problems.make_inputs(lesson, target, case, gen).items()}
                if case.lane not in lanes:  # drawn all the same: a seed gives the same inputs
                    continue
                planned = PlannedCall(target, check, case, call, inputs, lesson=lesson)
                if call.kind == "function":
                    planned.expected = problems.true_gradients(lesson, target, inputs)
                    planned.accepted = problems.also_accepted(lesson, target, inputs)
                    if solutions is not None and case.lane == "cpu":  # no GPU on this side
                        _cross_check(target, planned, reference_gradients(solutions, call, inputs))
                calls.append(planned)
    return Plan(seed, "reference solutions and autograd" if solutions else "autograd", calls,
                lesson)


def _as_case(value: torch.Tensor, case: Case) -> torch.Tensor:
    """A float input rounded to the case's dtype, then held in float64 (as sent, exactly);
    integer inputs (class labels) as they are."""
    if not value.is_floating_point():
        return value
    return value.to(problems.DTYPES[case.dtype]).to(torch.float64)


def _cross_check(target: str, planned: PlannedCall, reference: dict[str, torch.Tensor]) -> None:
    """The reference must be autograd's answer: to 1e-10 in float64; in a coarser case, within a
    tenth of the lesson's tolerance (its inputs were each rounded, and a derived one, such as
    log_softmax's out, no longer agrees with them to the last bit)."""
    case = planned.case
    for name, truth in planned.expected.items():
        ref = reference[name]
        atol = 1e-10 if case.dtype == "float64" else (
            planned.lesson.tolerance(case.dtype) / 10 * max(truth.abs().max().item(), 1.0))
        ok = ref.shape == truth.shape and (
            torch.allclose(ref, truth, rtol=0, atol=atol)
            or (name in planned.accepted and torch.allclose(ref, planned.accepted[name], atol=atol)))
        if not ok:
            raise ReferenceMismatch(f"the reference {target} gives a {name}.g that autograd does not")
