"""Judge what came back from a student's process against the true gradients (trusted side).

Each function returns a `Verdict`: passed, a one-line message, mistake codes. Messages give the
direction of the fix and the numbers that show it, never the true values of hidden inputs.
"""

from __future__ import annotations

import torch

from . import diagnose, spec
from .plan import Plan, PlannedCall
from .report import CheckResult, Verdict
from .sandbox.launch import TargetOutcome, UntrustedRun
from .spec import TOLERANCES

PASSED = Verdict(True)


def gradient_error(got: torch.Tensor, truth: torch.Tensor,
                   accepted: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise error, relative to the gradient's scale (at least 1); either answer may hold."""
    scale = max(truth.abs().max().item() if truth.numel() else 0.0, 1.0)
    err = (got.to(torch.float64) - truth).abs()
    if accepted is not None:
        err = torch.minimum(err, (got.to(torch.float64) - accepted).abs())
    return err / scale


def _shape(t: torch.Size | tuple) -> str:
    return str(tuple(t)).replace(",)", ")")


def call_failure(target: str, meta: dict | None) -> Verdict | None:
    """A call that did not run to completion, in the student's words where we have them."""
    if meta is None:
        return Verdict(False, f"{target} gave no result for this call", (f"{target}.crashed",))
    status = meta.get("status")
    if status == "ok":
        return None
    if status == "undefined":
        return Verdict(False, f"{target} is not defined: did its cell run without errors?",
                       (f"{target}.error",))
    error = meta.get("error") if isinstance(meta.get("error"), dict) else {}
    kind, text = str(error.get("type", "an error")), str(error.get("message", ""))[:300]
    where = f" ({error['where']})" if error.get("where") else ""
    if kind == "NotImplementedError":
        return Verdict(False, f"{target} still raises NotImplementedError: replace the stub's "
                              "`raise` with your code", (f"{target}.not_implemented",))
    if kind == "MemoryError" or "allocate memory" in text or "out of memory" in text.lower():
        limit = f": {error['limit']}" if error.get("limit") else ""
        return Verdict(False, f"{target} ran out of memory{where}{limit}", (f"{target}.memory",))
    limit = f" ({error['limit']})" if error.get("limit") else ""
    return Verdict(False, f"{target} raised {kind}: {text}{where}{limit}", (f"{target}.error",))


def compare_gradient(target: str, name: str, meta: dict, got: torch.Tensor | None,
                     planned) -> Verdict:
    """Judge one `.g`: set, a tensor, its tensor's shape, dtype and device, finite, right."""
    info = meta.get("g", {}).get(name) if isinstance(meta.get("g"), dict) else None
    info = info if isinstance(info, dict) else {"kind": "missing"}
    truth = planned.expected[name]
    case = planned.case
    if info.get("kind") == "missing":
        return Verdict(False, f"{target} did not set {name}.g", (f"{target}.missing_g",))
    if info.get("kind") != "tensor" or got is None:
        kind = str(info.get("type", "something else"))[:60]
        return Verdict(False, f"{name}.g is a {kind}, not a tensor", (f"{target}.not_tensor",))
    if got.shape != truth.shape:
        verdict = diagnose.wrong_shape(target, name, got, planned)
        if verdict is not None:
            return verdict
        return Verdict(False, f"{name}.g has shape {_shape(got.shape)} but {name} has shape "
                              f"{_shape(truth.shape)}: a .g has the shape of its tensor",
                       (f"{target}.wrong_shape",))
    want_dtype = getattr(torch, case.dtype)
    if got.dtype != want_dtype:
        return Verdict(False, f"{name}.g is {str(got.dtype)[6:]} but {name} is {case.dtype}: "
                              "keep the input's dtype", (f"{target}.wrong_dtype",))
    if str(info.get("device", "cpu")).split(":")[0] != case.device.split(":")[0]:
        return Verdict(False, f"{name}.g is on {info.get('device')} but {name} is on {case.device}",
                       (f"{target}.wrong_device",))
    if not torch.isfinite(got).all():
        return Verdict(False, f"{name}.g has NaN or infinite values", (f"{target}.not_finite",))
    err = gradient_error(got, truth, planned.accepted.get(name))
    worst = err.max().item() if err.numel() else 0.0
    if worst <= TOLERANCES[case.dtype]:
        return PASSED
    verdict = diagnose.wrong_values(target, name, got, planned)
    if verdict is not None:
        return verdict
    index = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape))
    return Verdict(False, f"{name}.g is not the gradient: worst at index {index}, off by "
                          f"{worst:.3g} relative to the gradient's scale (allowed "
                          f"{TOLERANCES[case.dtype]:g})", (f"{target}.wrong_values",))


def compare_unchanged(target: str, meta: dict, tensors: dict, planned) -> Verdict:
    """The call must leave its inputs and the upstream gradient as they were."""
    cid = planned.call.id
    changed = []
    for name, before in planned.inputs.items():
        after = tensors.get(f"{cid}/{name}.after")
        if after is None or after.shape != before.shape or not torch.equal(
                after.to(torch.float64), before):
            changed.append(name)
    if changed:
        return Verdict(False, f"{target} changed {', '.join(changed)} in place: compute the "
                              "gradient into a new tensor instead", (f"{target}.mutates_input",))
    return PASSED


def compare_probe(target: str, meta: dict, planned) -> Verdict:
    """`Module.backward` must call `self.bwd(self.out, *self.args)` once, with the latest call's."""
    calls = meta.get("bwd_calls")
    nargs = len(planned.call.args)
    want = ["out"] + [f"args[{i}]" for i in range(nargs)]
    shown = f"bwd({', '.join(want)})"
    if not isinstance(calls, list) or not calls:
        return Verdict(False, f"backward() did not call self.bwd: it should call {shown}",
                       (f"{target}.does_nothing",))
    if calls == [want]:
        return PASSED
    got = calls[-1] if isinstance(calls[-1], list) else []
    said = f"bwd({', '.join(str(a)[:60] for a in got[:6])})"
    times = f" ({len(calls)} calls)" if len(calls) > 1 else ""
    return Verdict(False, f"backward() called {said}{times}; it should call {shown} once, "
                          "with self.out and the unpacked self.args", (f"{target}.wrong_arguments",))


def judge_target(target: str, plan: Plan, run: UntrustedRun, points: float,
                 solution_cell: tuple[int, str] | None) -> list[CheckResult]:
    """Each check of `target` with its share of the target's points."""
    checks = spec.CHECKS[target]
    total = sum(c.weight for c in checks)
    outcome = run.targets.get(target, TargetOutcome("crashed", "no result came back"))
    results = []
    for check in checks:
        verdict = PASSED
        for planned in plan.for_check(target, check):
            verdict = judge_call(target, planned, outcome, run, solution_cell)
            if not verdict.passed:
                break
        share = round(points * check.weight / total, 6) if total else 0.0
        results.append(CheckResult(check.id(target), target, verdict.passed,
                                   share if verdict.passed else 0.0, share,
                                   verdict.message or check.summary, list(verdict.mistakes)))
    return results


def judge_call(target: str, planned: PlannedCall, outcome: TargetOutcome, run: UntrustedRun,
               solution_cell: tuple[int, str] | None) -> Verdict:
    if outcome.status != "ok":
        code = {"timeout": "timeout", "memory": "memory"}.get(outcome.status, "crashed")
        what = {"timeout": "did not finish", "memory": "ran out of memory"}.get(
            outcome.status, "stopped the grading process")
        return Verdict(False, f"{target} {what}: {outcome.detail}", (f"{target}.{code}",))
    meta = outcome.calls.get(planned.call.id)
    failure = call_failure(target, meta)
    if failure is not None:
        if meta and meta.get("status") == "undefined" and solution_cell is not None:
            error = run.cell_errors.get(solution_cell[0])
            if error:
                where = f" ({error['where']})" if error.get("where") else ""
                limit = f" ({error['limit']})" if error.get("limit") else ""
                # A cell stopped by a limit, or whose process died, costs its target that code.
                code = {"timeout": "timeout", "memory": "memory", "MemoryError": "memory",
                        "crashed": "crashed"}.get(str(error.get("type")), "error")
                said = "raised " + str(error.get("type")) if code == "error" or \
                    error.get("type") == "MemoryError" else "was stopped"
                failure = Verdict(False, f"{target} is not defined: its cell {said}: "
                                         f"{str(error.get('message'))[:200]}{where}{limit}",
                                  (f"{target}.{code}",))
        return failure
    kind = planned.check.kind
    if kind == "probe":
        return compare_probe(target, meta, planned)
    # Leaving inputs alone earns points only with the right gradient: doing nothing is not it.
    for name in planned.call.collect:
        got = outcome.tensors.get(f"{planned.call.id}/{name}.g")
        verdict = compare_gradient(target, name, meta, got, planned)
        if not verdict.passed:
            return verdict
    if kind == "unchanged":
        return compare_unchanged(target, meta, outcome.tensors, planned)
    return PASSED
