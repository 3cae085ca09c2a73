"""Compare one `.g` that came back from a student's process with the true gradient (trusted side).

Each function returns a `Verdict`: passed, a one-line message, mistake codes. A `.g` is judged
in the order a student fixes it: set, a tensor, its tensor's shape, dtype and device, finite,
then its numbers; a wrong one is handed to `diagnose`, which says how it is wrong. Messages give
the direction of the fix and the numbers that show it, never the true values of hidden inputs.
"""

from __future__ import annotations

import torch

from ..present.report import Verdict
from . import diagnose
from .outcome import CallResult, ValueInfo

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


#: Where a GPU-readiness backend puts the tensors that stand for CUDA: `meta` tensors, which
#: have a device, a shape and a dtype, and refuse to meet a CPU tensor (`untrusted/calls.py`).
STAND_IN_DEVICES = {"meta": "meta"}


def not_set(target: str, name: str, info) -> Verdict | None:
    """No `.g`: not set at all, or the gradient stored in `.grad`, autograd's name for it."""
    if info.kind == "missing":
        return Verdict(False, f"{target} did not set {name}.g", (f"{target}.missing_g",))
    if info.kind == "in_grad":
        return Verdict(False, f"{target} stored the gradient in {name}.grad; the lesson's "
                              f"convention is {name}.g, which the grader reads: store it in "
                              f"{name}.g", (f"{target}.missing_g",))
    return None


def compare_structure(target: str, name: str, meta: CallResult, planned) -> Verdict:
    """Judge one `.g` of a stand-in CUDA call: a tensor on the input's device, shape, dtype."""
    info = meta.g(name)
    truth = planned.expected[name]
    if (unset := not_set(target, name, info)) is not None:
        return unset
    if info.kind != "tensor":
        return Verdict(False, f"{name}.g is a {_type_of(info)}, not a tensor",
                       (f"{target}.not_tensor",))
    want = STAND_IN_DEVICES.get(str(meta.backend))
    got_device = (info.device if info.device is not None else "?")[:40]
    if want is None or got_device.split(":")[0] != want:
        return Verdict(False, f"{name}.g is on {got_device} when {name} is on the GPU: make it "
                              f"on the input's device (torch.zeros_like({name}), "
                              f"device={name}.device)",
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
    if (unset := not_set(target, name, info)) is not None:
        return unset
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
    numbers = getattr(planned.call, "numbers", ())  # a Python number is never changed in place
    for name, before in planned.inputs.items():
        if name in numbers:
            continue
        after = tensors.get(f"{cid}/{name}.after")
        if after is None or after.shape != before.shape or not torch.equal(
                after.to(torch.float64), before.to(torch.float64)):
            changed.append(name)
    if changed:
        said = f"{target} changed {' and '.join(changed)} in place"
        shared = [n for n in planned.call.collect if "out.g" in changed and same(
            tensors.get(f"{cid}/{n}.g"), tensors.get(f"{cid}/out.g.after"))]
        if shared:
            said += (f" ({shared[0]}.g equals the changed out.g: after {shared[0]}.g = out.g both "
                     "names are one tensor, so start from out.g.clone())")
        return Verdict(False, f"{said}: compute the gradient into a new tensor instead",
                       (f"{target}.mutates_input",))
    return PASSED


def _type_of(info: ValueInfo) -> str:
    return (info.type if info.type is not None else "something else")[:60]


def same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and torch.equal(a, b)
