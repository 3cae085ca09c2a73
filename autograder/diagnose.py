"""Name the student's actual mistake from the numbers and shapes (trusted side).

`compare` finds that a `.g` is wrong; this module says how. Each function returns a `Verdict`
whose message gives the direction of the fix and the numbers that show it (shapes, a ratio, a
count of elements), never a value of a hidden input, and whose codes are the specific one from
the catalogue in CONTRACT followed by the general one; or None to let the general message stand.
Everything here works from tensors that came back as plain data: no student code runs.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from .report import Verdict
from .spec import TOLERANCES


def shape_text(shape: torch.Size | tuple) -> str:
    return str(tuple(shape)).replace(",)", ")")


def tolerance(got_dtype: torch.dtype, case_dtype: str) -> float:
    """The relative error allowed: the case's, or more for a `.g` of a coarser dtype."""
    name = str(got_dtype).removeprefix("torch.")
    return max(TOLERANCES[case_dtype], TOLERANCES.get(name, 1e-2))


def _diagnosis_tolerance(got: torch.Tensor, planned) -> float:
    # Room for rounding in the student's own formula, never so much that a guess fits.
    return min(10 * tolerance(got.dtype, planned.case.dtype), 1e-2)


def off_by(got: torch.Tensor, want: torch.Tensor, also: torch.Tensor | None = None) -> float:
    """max|got - want| relative to max(max|want|, 1); elementwise, `also` may hold instead."""
    if got.shape != want.shape:
        return float("inf")
    if got.numel() == 0:
        return 0.0
    got = got.to(torch.float64)
    err = (got - want).abs()
    if also is not None:
        err = torch.minimum(err, (got - also).abs())
    return err.max().item() / max(want.abs().max().item(), 1.0)


def best_ratio(got: torch.Tensor, truth: torch.Tensor) -> float | None:
    """The scalar c that brings c * truth closest to got (least squares); None if truth is 0."""
    g, t = got.to(torch.float64).flatten(), truth.to(torch.float64).flatten()
    tt = t.dot(t).item()
    if g.numel() != t.numel() or tt < 1e-24:
        return None
    return g.dot(t).item() / tt


#: Codes that any target may have; the catalogue's specific codes are listed before them.
GENERAL = ("not_implemented", "error", "timeout", "memory", "crashed", "missing_g", "not_tensor",
           "wrong_shape", "wrong_dtype", "wrong_device", "not_finite", "wrong_values",
           "mutates_input", "uses_autograd")


def specific_first(codes) -> tuple[str, ...]:
    """Codes without repeats, the specific ones first, each group in the order given."""
    unique = list(dict.fromkeys(codes))
    general = [c for c in unique if c.split(".", 1)[-1] in GENERAL]
    return tuple(c for c in unique if c not in general) + tuple(general)


# --- how a ratio reads, and what it means --------------------------------------------------------

def ratio_words(c: float, n: int) -> str:
    """'half of', '-1 times', 'N = 3 times', '1/N = 1/3 of', '2.5 times'."""
    if abs(c - 0.5) < 1e-9:
        return "half of"
    if n > 1 and abs(c - n) < 1e-9:
        return f"N = {n} times"
    if n > 1 and abs(c - 1 / n) < 1e-9:
        return f"1/N = 1/{n} of"
    if n > 2 and abs(c - n / 2) < 1e-9:
        return f"N/2 = {n / 2:g} times"
    if n > 1 and abs(c + n) < 1e-9:
        return f"-N = -{n} times"
    frac = Fraction(c).limit_denominator(64)
    if abs(float(frac) - c) < 1e-9 and frac.denominator > 1:
        return f"{frac} of" if 0 < frac < 1 else f"{frac} times"
    return f"{c:.4g} times"


#: The mse's mistakes as factors of the true gradient: the sign, the square's 2, the mean's 1/N.
_MSE_PARTS = {
    "mse_grad.sign_flipped": (-1.0, "the derivative of (x - t)^2 is 2(x - t), not 2(t - x)"),
    "mse_grad.missing_factor_2": (0.5, "d/dx of (x - t)^2 is 2(x - t)"),
    "mse_grad.not_averaged": (None, "mse is a mean, so divide by N = inp.shape[0]"),
}


def named_ratios(target: str, name: str, n: int) -> list[tuple[float, tuple[str, ...], str]]:
    """(ratio, specific codes, the fix) for the ratios the catalogue names, at batch size n.

    At N = 1 a factor of N is no mistake, so it is left out; spec's batch sizes avoid N = 2,
    where 1/N and 1/2 could not be told apart.
    """
    table: list[tuple[float, tuple[str, ...], str]] = []
    if target == "mse_grad" and name == "inp":
        codes = list(_MSE_PARTS)
        for mask in range(1, 8):
            chosen = [codes[i] for i in range(3) if mask >> i & 1]
            if "mse_grad.not_averaged" in chosen and n == 1:
                continue
            ratio = 1.0
            for code in chosen:
                ratio *= _MSE_PARTS[code][0] or n
            fixes = "; ".join(_MSE_PARTS[code][1] for code in chosen)
            table.append((ratio, tuple(chosen), fixes))
    if target == "lin_grad" and name == "b" and n > 1:
        table.append((1 / n, ("lin_grad.bias_averaged",),
                      "b is added to every row, so b.g is the sum of out.g over the batch "
                      "(out.g.sum(0)), not its mean"))
    return table


def _generic_fix(target: str, c: float, n: int) -> str:
    if n > 1 and abs(abs(c) - 1 / n) < 1e-9:
        return ("the mean's 1/N appears once: divide by N only once" if target == "mse_grad"
                else "out.g already carries the loss's 1/N: do not divide by N again")
    if n > 1 and abs(abs(c) - n) < 1e-9:
        return "there is no factor N here: do not multiply by N"
    if c < 0:
        return "check the sign"
    return "check the constant factors"


def ratio_verdict(target: str, name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    """`got` is a scalar multiple of the true gradient: name the factor."""
    truth, also, n = planned.expected[name], planned.accepted.get(name), planned.case.n
    for ratio, codes, fix in named_ratios(target, name, n):
        if off_by(got, ratio * truth, None if also is None else ratio * also) <= tol:
            head = (f"{name}.g has the wrong sign" if ratio == -1 else
                    f"{name}.g is {ratio_words(ratio, n)} the true gradient")
            return Verdict(False, f"{head}: {fix}", (*codes, f"{target}.wrong_values"))
    # Any other simple factor (a small fraction, such as -1, 2 or 1/N) is still worth naming.
    c = best_ratio(got, truth)
    limit = max(2 * n, 4)
    if c is None or not 1 / limit <= abs(c) <= limit:
        return None
    ratio = float(Fraction(c).limit_denominator(limit))
    if ratio != 1 and off_by(got, ratio * truth, None if also is None else ratio * also) <= tol:
        return Verdict(False, f"{name}.g is {ratio_words(ratio, n)} the true gradient: "
                              f"{_generic_fix(target, ratio, n)}", (f"{target}.wrong_values",))
    return None


# --- target by target ----------------------------------------------------------------------------

def _relu_verdict(name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    inp, upstream = planned.inputs["inp"], planned.inputs["out.g"]
    positive, negative = inp > 0, inp < 0
    mask, mask_at_zero = positive.to(torch.float64), (inp >= 0).to(torch.float64)
    if off_by(got, mask, mask_at_zero) <= tol:
        return Verdict(False, "inp.g is the 0/1 mask alone: multiply it by the upstream gradient "
                              "out.g (the chain rule), inp.g = mask * out.g",
                       ("relu_grad.ignores_upstream", "relu_grad.wrong_values"))
    if off_by(got, planned.inputs["out"]) <= tol:
        return Verdict(False, "inp.g equals out, the ReLU's output: use out.g, the gradient that "
                              "flows back, masked where inp > 0", ("relu_grad.wrong_values",))
    # Each element either lets out.g through or blocks it: the mask is wrong somewhere.
    scale = max(upstream.abs().max().item(), 1.0)
    got64 = got.to(torch.float64)
    through = (got64 - upstream).abs() <= tol * scale
    blocked = got64.abs() <= tol * scale
    if not (through | blocked).all():
        return None
    leaks = int((through & ~blocked & negative).sum())
    stops = int((blocked & ~through & positive).sum())
    if not leaks and not stops:
        return None
    n_neg, n_pos = int(negative.sum()), int(positive.sum())
    if leaks == n_neg > 0 and stops == n_pos > 0:
        what = ("the mask is inverted: inp.g passes out.g where inp < 0 and blocks it where "
                f"inp > 0 ({leaks + stops} elements)")
    elif leaks == n_neg > 0 and not stops:
        what = (f"inp.g passes out.g everywhere, also where inp < 0 ({leaks} of {inp.numel()} "
                "elements): mask it")
    else:
        parts = [f"passes out.g where inp < 0 ({leaks} elements)"] if leaks else []
        parts += [f"blocks out.g where inp > 0 ({stops} elements)"] if stops else []
        what = "inp.g " + " and ".join(parts)
    return Verdict(False, f"{what}; ReLU lets the gradient through only where inp > 0 "
                          "(at exactly 0 either is accepted)",
                   ("relu_grad.wrong_mask", "relu_grad.wrong_values"))


def _lin_verdict(name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    x = planned.inputs
    truth = planned.expected[name]
    if name == "w" and truth.dim() == 2 and got.shape == truth.shape[::-1] and \
            off_by(got.transpose(0, 1), truth) <= tol:
        return Verdict(False, f"w.g is the transpose of the true gradient: w.g = inp.t() @ out.g "
                              f"has w's shape {shape_text(truth.shape)}",
                       ("lin_grad.weight_transposed", "lin_grad.wrong_values"))
    # out (the layer's output) where out.g (the gradient flowing back) belongs.
    with_out = {"inp": x["out"] @ x["w"].t(), "w": x["inp"].t() @ x["out"], "b": x["out"].sum(0)}
    if off_by(got, with_out[name]) <= tol:
        return Verdict(False, f"{name}.g is computed from out, the layer's output: use out.g, "
                              "the gradient that flows back", ("lin_grad.wrong_values",))
    return None


def wrong_values(target: str, name: str, got: torch.Tensor, planned) -> Verdict | None:
    """`got` has the right shape and is finite but is not the gradient: say how it differs."""
    tol = _diagnosis_tolerance(got, planned)
    if got.numel() and not got.to(torch.float64).abs().max().item():
        return Verdict(False, f"{name}.g is all zeros: compute the gradient, not a placeholder",
                       (f"{target}.wrong_values",))
    specific = {"relu_grad": _relu_verdict, "lin_grad": _lin_verdict}.get(target)
    verdict = specific(name, got, planned, tol) if specific else None
    return verdict or ratio_verdict(target, name, got, planned, tol)


def wrong_shape(target: str, name: str, got: torch.Tensor, planned) -> Verdict | None:
    """`got` has the wrong shape: say why, and check its values once the shape is undone."""
    truth, n = planned.expected[name], planned.case.n
    have, want = shape_text(got.shape), shape_text(truth.shape)
    tol = _diagnosis_tolerance(got, planned)
    codes: tuple[str, ...] = ()
    if truth.dim() == 2 and got.dim() == 2 and got.shape == truth.shape[::-1]:
        undone = got.transpose(0, 1)
        if target == "lin_grad" and name == "w":
            said = (f"w.g has shape {have}, the transpose of w's {want}: w.g = inp.t() @ out.g "
                    "has w's shape")
            codes = ("lin_grad.weight_transposed",)
        else:
            said = f"{name}.g has shape {have}, the transpose of {name}'s {want}"
            if target == "lin_grad" and name == "inp":
                said += ": inp.g = out.g @ w.t() has inp's shape"
    elif target == "lin_grad" and name == "b" and tuple(got.shape) == (n, *truth.shape):
        undone = got.sum(0)
        said = (f"b.g has shape {have} but b has shape {want}: b is added to every row, so sum "
                "out.g over the batch, out.g.sum(0)")
        codes = ("lin_grad.bias_not_summed",)
    elif target == "lin_grad" and name == "b" and tuple(got.shape) == (n,) and \
            off_by(got, planned.inputs["out.g"].sum(1)) <= tol:
        return Verdict(False, f"b.g has shape {have} but b has shape {want}: out.g was summed "
                              "over dim 1; sum it over the batch, dim 0: out.g.sum(0)",
                       ("lin_grad.wrong_shape",))
    elif target == "mse_grad" and n > 1 and tuple(got.shape) == (n, n):
        undone = got.diagonal().reshape(truth.shape)
        said = (f"inp.g has shape {have} but inp has shape {want}: inp (N, 1) minus targ (N,) "
                "broadcasts to (N, N); subtract inp.squeeze(-1), then give inp.g inp's shape")
    elif got.numel() == truth.numel():
        undone = got.reshape(truth.shape)
        said = (f"{name}.g has shape {have} but {name} has shape {want}: reshape it to "
                f"{name}.shape" + (" (.unsqueeze(-1))" if target == "mse_grad" else ""))
    else:
        return None
    general = (f"{target}.wrong_shape",)
    if off_by(undone, truth, planned.accepted.get(name)) <= tol:
        return Verdict(False, said, (*codes, *general))
    also = wrong_values(target, name, undone, planned) if torch.isfinite(undone).all() else None
    if also is None:
        # The values are off beyond the shape: only the shape is named for sure.
        return Verdict(False, f"{said}; its values are not the gradient either", general
                       + (f"{target}.wrong_values",))
    return Verdict(False, f"{said}; and {also.message}", specific_first((*codes, *general,
                                                                         *also.mistakes)))


# --- several `.g` of one call --------------------------------------------------------------------

def combine(target: str, verdicts: dict[str, Verdict]) -> Verdict:
    """One verdict for one call from the verdict on each `.g` it sets, in one line."""
    failed = {name: v for name, v in verdicts.items() if not v.passed}
    if not failed:
        return Verdict(True)
    missing = [name for name, v in failed.items() if v.mistakes == (f"{target}.missing_g",)]
    messages = [v.message for name, v in failed.items() if name not in missing or len(missing) < 2]
    if len(missing) > 1:
        messages.insert(0, f"{target} did not set {', '.join(m + '.g' for m in missing)}")
    codes = [code for v in failed.values() for code in v.mistakes]
    if target == "lin_grad" and list(failed) == ["inp"] and len(verdicts) > 1:
        others = " and ".join(f"{name}.g" for name in verdicts if name != "inp")
        messages[0] += f" ({others} are right; inp.g should be out.g @ w.t())"
        codes.insert(0, "lin_grad.input_grad_wrong")
    return Verdict(False, "; ".join(messages), specific_first(codes))
