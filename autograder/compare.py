"""Judge what came back from a student's process against the true gradients (trusted side).

Each function returns a `Verdict`: passed, a one-line message, mistake codes. Messages give the
direction of the fix and the numbers that show it, never the true values of hidden inputs.
"""

from __future__ import annotations

import torch

from . import diagnose, rules
from .outcome import CallResult, ErrorInfo, TargetOutcome, UntrustedRun, ValueInfo
from .plan import Plan, PlannedCall
from .report import CheckResult, Verdict

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
    return diagnose.shape_text(t)


def call_failure(target: str, meta: CallResult | None, own: dict[str, str] | None = None,
                 planned=None) -> Verdict | None:
    """A call that did not run to completion, in the student's words where we have them. `own`
    is what the student's own cells define (which grading does not run), for a NameError's hint;
    the lesson's `error_hint(target, type, message, planned)` may name the mistake behind an
    error: (what to add, codes)."""
    if meta is None:
        return Verdict(False, f"{target} gave no result for this call", (f"{target}.crashed",))
    status = meta.status
    if status == "ok":
        return None
    if status == "undefined":
        entry = planned.call.function if planned is not None else target
        return Verdict(False, f"{entry} is not defined: did the {target} cell run without errors?",
                       (f"{target}.error",))
    error = meta.error or ErrorInfo()
    kind = error.type if error.type is not None else "an error"
    text = (error.message if error.message is not None else "")[:300]
    where = f" ({error.where})" if error.where else ""
    if kind == "NotImplementedError":
        return Verdict(False, f"{target} still raises NotImplementedError: replace the stub's "
                              "`raise` with your code", (f"{target}.not_implemented",))
    if any(sign in text for sign in _MIXED_DEVICES):
        return Verdict(False, f"{target} mixes devices{where}: {text[:200]} — make new tensors "
                              "on the input's device (torch.zeros_like(w), device=w.device)",
                       (f"{target}.wrong_device",))
    if kind == "DataDependentOutputException" or "cannot be called on meta tensors" in text:
        return Verdict(False, f"{target} reads a tensor's value into Python (.item(), float(), "
                              f"an if on a tensor){where}: the GPU-readiness check runs without "
                              "values; keep the computation on tensors", (f"{target}.error",))
    if kind == "MemoryError" or "allocate memory" in text or "out of memory" in text.lower():
        limit = f": {error.limit}" if error.limit else ""
        return Verdict(False, f"{target} ran out of memory{where}{limit}", (f"{target}.memory",))
    limit = f" ({error.limit})" if error.limit else ""
    extra, codes = diagnose.said(diagnose.hooks(planned).error_hint(target, kind, text, planned))
    return Verdict(False, f"{target} raised {kind}: {text}{where}{limit}{extra}"
                          f"{own_cell(target, text, own)}", (*codes, f"{target}.error"))


def own_cell(target: str, text: str, own: dict[str, str] | None) -> str:
    """For "name 'helper' is not defined" where a cell of the student's own defines helper."""
    if not own or not text.startswith("name '") or "' is not defined" not in text:
        return ""
    name = text[len("name '"):text.index("' is not defined")]
    if name not in own:
        return ""
    return (f"; {name} is defined in {own[name]}, a cell of your own, which grading does not "
            f"run: define it in the {target} cell")


#: How PyTorch (real or fake tensors) says that one operation got tensors on two devices.
_MIXED_DEVICES = ("Expected all tensors to be on the same device", "is not on the expected device",
                  "found at least two devices")

#: Where a GPU-readiness backend puts the tensors that stand for CUDA: `meta` tensors, which
#: have a device, a shape and a dtype, and refuse to meet a CPU tensor (`untrusted/calls.py`).
FAKE_DEVICES = {"meta": "meta"}


def compare_structure(target: str, name: str, meta: CallResult, planned) -> Verdict:
    """Judge one `.g` of a fake-CUDA call: a tensor on the input's device, shape, dtype."""
    info = meta.g(name)
    truth = planned.expected[name]
    if info.kind == "missing":
        return Verdict(False, f"{target} did not set {name}.g", (f"{target}.missing_g",))
    if info.kind != "tensor":
        return Verdict(False, f"{name}.g is a {_type_of(info)}, not a tensor",
                       (f"{target}.not_tensor",))
    want = FAKE_DEVICES.get(str(meta.backend))
    got_device = (info.device if info.device is not None else "?")[:40]
    if want is None or got_device.split(":")[0] != want:
        return Verdict(False, f"{name}.g is on {got_device} when {name} is on the GPU: make it "
                              "on the input's device (torch.zeros_like(w), device=w.device)",
                       (f"{target}.wrong_device",))
    if info.shape != tuple(truth.shape):
        shape = str(list(info.shape)) if info.shape is not None else "None"
        return Verdict(False, f"{name}.g has shape {shape[:40]} on the GPU but {name} has "
                              f"shape {_shape(truth.shape)}", (f"{target}.wrong_shape",))
    if info.dtype != planned.case.dtype:
        return Verdict(False, f"{name}.g is {str(info.dtype)[:20]} on the GPU but {name} is "
                              f"{planned.case.dtype}: keep the input's dtype",
                       (f"{target}.wrong_dtype",))
    return PASSED


def compare_gradient(target: str, name: str, meta: CallResult, got: torch.Tensor | None,
                     planned) -> Verdict:
    """Judge one `.g`: set, a tensor, its tensor's shape, dtype and device, finite, right."""
    info = meta.g(name)
    truth = planned.expected[name]
    case = planned.case
    if info.kind == "missing":
        return Verdict(False, f"{target} did not set {name}.g", (f"{target}.missing_g",))
    if info.kind != "tensor" or got is None:
        return Verdict(False, f"{name}.g is a {_type_of(info)}, not a tensor",
                       (f"{target}.not_tensor",))
    if got.shape != truth.shape:
        verdict = diagnose.wrong_shape(target, name, got, planned)
        if verdict is not None:
            return verdict
        return Verdict(False, f"{name}.g has shape {_shape(got.shape)} but {name} has shape "
                              f"{_shape(truth.shape)}: a .g has the shape of its tensor",
                       (f"{target}.wrong_shape",))
    want_dtype = getattr(torch, case.dtype)
    if got.dtype != want_dtype:
        extra, codes = diagnose.said(diagnose.hooks(planned).dtype_hint(target, name, got.dtype,
                                                                        planned))
        said = Verdict(False, f"{name}.g is {str(got.dtype)[6:]} but {name} is {case.dtype}: "
                              f"keep the input's dtype{extra}", (*codes, f"{target}.wrong_dtype"))
        # A wrong dtype often comes with a wrong formula (`(inp > 0).float()`): name both.
        values = compare_values(target, name, got, planned)
        if values.passed:
            return said
        return Verdict(False, f"{values.message}; and {said.message}",
                       diagnose.specific_first((*values.mistakes, *said.mistakes)))
    if (info.device if info.device is not None else "cpu").split(":")[0] != \
            case.device.split(":")[0]:
        return Verdict(False, f"{name}.g is on {info.device} but {name} is on {case.device}",
                       (f"{target}.wrong_device",))
    return compare_values(target, name, got, planned)


def compare_values(target: str, name: str, got: torch.Tensor, planned) -> Verdict:
    """Judge the numbers of a `.g` of the right shape: finite, then close to the truth."""
    if not torch.isfinite(got).all():
        extra, codes = diagnose.said(diagnose.hooks(planned).not_finite_hint(target, name, planned))
        return Verdict(False, f"{name}.g has NaN or infinite values{extra}",
                       (*codes, f"{target}.not_finite"))
    tol = diagnose.tolerance(got.dtype, planned.case.dtype, planned.lesson)
    err = gradient_error(got, planned.expected[name], planned.accepted.get(name))
    worst = err.max().item() if err.numel() else 0.0
    if worst <= tol:
        return PASSED
    verdict = diagnose.wrong_values(target, name, got, planned)
    if verdict is not None:
        return verdict
    index = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape))
    return Verdict(False, f"{name}.g is not the gradient: worst at index {index}, off by "
                          f"{worst:.3g} relative to the gradient's scale (allowed "
                          f"{tol:g})", (f"{target}.wrong_values",))


def compare_unchanged(target: str, meta: CallResult, tensors: dict, planned) -> Verdict:
    """The call must leave its inputs and the upstream gradient as they were."""
    cid = planned.call.id
    changed = []
    for name, before in planned.inputs.items():
        after = tensors.get(f"{cid}/{name}.after")
        if after is None or after.shape != before.shape or not torch.equal(
                after.to(torch.float64), before.to(torch.float64)):
            changed.append(name)
    if changed:
        said = f"{target} changed {' and '.join(changed)} in place"
        shared = [n for n in planned.call.collect if "out.g" in changed and _same(
            tensors.get(f"{cid}/{n}.g"), tensors.get(f"{cid}/out.g.after"))]
        if shared:
            said += (f" ({shared[0]}.g equals the changed out.g: after {shared[0]}.g = out.g both "
                     "names are one tensor, so start from out.g.clone())")
        return Verdict(False, f"{said}: compute the gradient into a new tensor instead",
                       (f"{target}.mutates_input",))
    return PASSED


def _type_of(info: ValueInfo) -> str:
    return (info.type if info.type is not None else "something else")[:60]


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and torch.equal(a, b)


def compare_probe(target: str, meta: CallResult, tensors: dict, planned) -> Verdict:
    """`Module.backward` must call `self.bwd(self.out, *self.args)` once, with the latest call's.

    What `bwd` received came back as tensors; each is named here by its values, against the
    inputs and forward outputs this side sent (all distinct): nothing the student's process says
    about them is taken on trust."""
    calls = meta.bwd_calls
    nargs, repeat = len(planned.call.args), planned.call.repeat
    want = ["out"] + [f"args[{i}]" for i in range(nargs)]
    shown = f"bwd({', '.join(want)})"
    if not calls:
        return Verdict(False, f"backward() did not call self.bwd: it should call {shown}",
                       (f"{target}.does_nothing",))
    count = meta.bwd_count if meta.bwd_count is not None else len(calls)
    cid = planned.call.id

    def name_of(i: int, j: int, said: ValueInfo) -> str:
        got = tensors.get(f"{cid}/bwd{i}/{j}") if said.kind == "tensor" else None
        if got is None:
            kind = (said.type if said.type is not None else "object")[:60]
            return "a tuple" if kind == "tuple" else f"a {kind}"
        for age, k in enumerate(reversed(range(repeat))):
            suffix = "" if age == 0 else " (from an earlier call)"
            if _same(got.to(torch.float64), planned.inputs.get(f"out/{k}")):
                return "out" + suffix
            for index in range(nargs):
                if _same(got.to(torch.float64), planned.inputs.get(f"x{index}/{k}")):
                    return f"args[{index}]" + suffix
        return "a Tensor"

    named = [[name_of(i, j, d) for j, d in enumerate(c)] for i, c in enumerate(calls)]
    if count == 1 and named == [want]:
        return PASSED
    got = named[-1]
    said = f"bwd({', '.join(a[:60] for a in got[:6])})"
    times = f" ({count} calls)" if count > 1 else ""
    return Verdict(False, f"backward() called {said}{times}; it should call {shown} once, "
                          "with self.out and the unpacked self.args", (f"{target}.wrong_arguments",))


def judge_static(target: str, findings: list | None, ran_autograd: bool = False) -> Verdict:
    """The gate: the rule on the code `target` reaches (`rules.py`, read, never run), and what
    the graded process found when it ran: autograd's engine called where the rules saw none."""
    if ran_autograd:
        return Verdict(False, f"{target} ran autograd while it was graded, though no reading of "
                              "its code shows where: write the gradient by hand; no points for "
                              f"{target} while autograd is in it", (f"{target}.uses_autograd",))
    if findings is None:
        return Verdict(True, f"not checked: the source of {target} could not be read")
    if not findings:
        return PASSED
    first = min(findings, key=lambda f: f.kind != rules.HIDDEN)  # hidden code first
    if first.kind == rules.HIDDEN:
        instead = f"; {first.instead}" if first.instead else ""
        return Verdict(False, f"{target} uses {first.what} ({first.place(target)}), which is "
                              f"not in the answer language{instead}. No points for {target} "
                              "while it is there", (f"{target}.not_allowed",))
    return Verdict(False, f"{target} uses autograd ({first.what} {first.place(target)}): write "
                          f"the gradient by hand; no points for {target} while autograd is in it",
                   (f"{target}.uses_autograd",))


def judge_target(target: str, plan: Plan, run: UntrustedRun, points: float,
                 solution_cell: tuple[int, str] | None, findings: list | None = None,
                 not_run: object | None = None,
                 own_names: dict[str, str] | None = None) -> list[CheckResult]:
    """Each check of `target` with its share of the target's points.

    `findings` are the rule's findings in the code the target reaches (None: it could not be
    read); `not_run` the finding for which its answer cell was left out of the graded run;
    `own_names` what the student's own cells (which grading does not run) define, for hints. A
    failed gate (a "static" check) takes the points of every check of the target.
    """
    checks = plan.lesson.checks(target)
    total = sum(c.weight for c in checks)
    outcome = run.targets.get(target, TargetOutcome("crashed", "no result came back"))
    ran_autograd = any(m.autograd for m in outcome.calls.values())
    results, gates = [], []
    for check in checks:
        verdict = PASSED
        if check.kind == "static":
            verdict = judge_static(target, findings, ran_autograd)
            if not verdict.passed:
                gates.append((check.id(target), verdict.mistakes[0]))
        elif not_run is None:
            for planned in plan.for_check(target, check):
                if skipped(planned, outcome):
                    continue
                verdict = judge_call(target, planned, outcome, run, solution_cell, own_names)
                if not verdict.passed:
                    break
        share = round(points * check.weight / total, 6) if total else 0.0
        results.append(CheckResult(check.id(target), target, verdict.passed,
                                   share if verdict.passed else 0.0, share,
                                   verdict.message or check.summary, list(verdict.mistakes)))
    by_name = {check.name: result for check, result in zip(checks, results, strict=True)}
    for check, result in zip(checks, results, strict=True):
        needed = by_name.get(check.requires)
        if needed is not None and not needed.passed and result.passed:
            # Right for one sample, wrong for a batch: the mistake is the required check's.
            result.passed, result.points = False, 0.0
            result.message = (f"no points while {needed.id} fails: {needed.message}")
            result.mistakes = list(needed.mistakes)
    for result in results:
        if gates and result.id not in (g for g, _ in gates):
            gate, code = gates[0]
            # The gate names the mistake; what else failed follows from it (the grader runs
            # GPU-readiness with autograd off), so the gate's code stands alone.
            if not_run is not None:
                result.message = f"not run: the {target} cell was left out of grading (see {gate})"
            elif code.endswith(".not_allowed"):
                result.message = (f"right, but no points: {target} uses code outside the answer "
                                  f"language (see {gate})" if result.passed else result.message
                                  + f" (and no points: {target} uses code outside the answer "
                                    f"language, see {gate})")
            elif result.passed:
                result.message = f"right, but no points: {target} uses autograd (see {gate})"
            elif "AutogradRefused" in result.message:  # grading refuses autograd, always
                result.message = f"no result: autograd refuses while {target} is graded " \
                                 f"(see {gate})"
            else:
                result.message += f" (and no points: {target} uses autograd, see {gate})"
            result.passed, result.points = False, 0.0
            result.mistakes = [code]
    return results


def misnamed(target: str, planned: PlannedCall, source: str) -> Verdict | None:
    """The answer cell ran but defines no `entry` (a base class named as in another course,
    `LayerFunction`): say what it defines instead."""
    import ast

    from . import code

    entry, what = planned.call.function, "class" if planned.call.kind == "probe" else "function"
    kinds = (ast.ClassDef,) if what == "class" else (ast.FunctionDef, ast.AsyncFunctionDef)
    defined = [s.node.name for s in code.read_cell(0, source, limit=rules.MAX_ANSWER_BYTES)
               .statements if isinstance(s.node, kinds)]
    if entry in defined or not defined:
        return None
    shown = ", ".join(dict.fromkeys(defined[:6]))
    return Verdict(False, f"there is no {what} {entry} in the {target} cell: it defines {shown}; "
                          f"the grader calls {entry}, so give yours that name",
                   (f"{target}.error",))


def skipped(planned: PlannedCall, outcome: TargetOutcome) -> bool:
    """A real-CUDA case where the student's process found no GPU: it counts for nothing."""
    meta = outcome.calls.get(planned.call.id)
    return planned.case.lane == "cuda" and meta is not None and meta.status == "unavailable"


def judge_call(target: str, planned: PlannedCall, outcome: TargetOutcome, run: UntrustedRun,
               solution_cell: tuple[int, str] | None, own: dict[str, str] | None = None) -> Verdict:
    if outcome.status != "ok":
        code = {"timeout": "timeout", "memory": "memory"}.get(outcome.status, "crashed")
        what = {"timeout": "did not finish", "memory": "ran out of memory"}.get(
            outcome.status, "stopped the grading process")
        return Verdict(False, f"{target} {what}: {outcome.detail}", (f"{target}.{code}",))
    meta = outcome.calls.get(planned.call.id)
    failure = call_failure(target, meta, own, planned)
    if failure is not None:
        if meta is not None and meta.status == "undefined" and solution_cell is not None:
            error = run.cell_error(solution_cell[0])
            if error:
                where = f" ({error.where})" if error.where else ""
                limit = f" ({error.limit})" if error.limit else ""
                # A cell stopped by a limit, or whose process died, costs its target that code.
                code = {"timeout": "timeout", "memory": "memory", "MemoryError": "memory",
                        "crashed": "crashed"}.get(str(error.type), "error")
                said = "raised " + str(error.type) if code == "error" or \
                    error.type == "MemoryError" else "was stopped"
                message = str(error.message)[:200]
                failure = Verdict(False, f"{target} is not defined: its cell {said}: "
                                         f"{message}{where}{limit}{own_cell(target, message, own)}",
                                  (f"{target}.{code}",))
            else:
                failure = misnamed(target, planned, solution_cell[1]) or failure
        return failure
    kind = planned.check.kind
    if kind == "probe":
        return compare_probe(target, meta, outcome.tensors, planned)
    if planned.case.fake:
        for name in planned.call.collect:
            verdict = compare_structure(target, name, meta, planned)
            if not verdict.passed:
                return verdict
        return PASSED
    # Leaving inputs alone earns points only with the right gradient: doing nothing is not it.
    verdicts = {}
    for name in planned.call.collect:
        got = outcome.tensors.get(f"{planned.call.id}/{name}.g")
        verdicts[name] = compare_gradient(target, name, meta, got, planned)
    verdict = diagnose.combine(target, verdicts, planned)
    if not verdict.passed:
        return verdict
    if kind == "unchanged":
        return compare_unchanged(target, meta, outcome.tensors, planned)
    return PASSED
