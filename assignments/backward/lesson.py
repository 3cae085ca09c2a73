"""The backward lesson's code (trusted side): its forward pass, its inputs' one special case, and
which of the engine's diagnoses apply to which target, in this lesson's words.

The spec (targets, shapes, checks, points) is lesson.toml; the hand-written gradients are
reference.py; the hooks are the class `Backward` (a `LessonCode`, see `autograder.lesson_api`).
The truth is autograd on the forwards below, in float64 (`autograder.problems`).
"""

from __future__ import annotations

import torch

from autograder.lesson_api import (
    LessonCode,
    Verdict,
    combined_factors,
    is_transpose,
    kept_batch,
    mask_errors,
    off_by,
    shape_text,
    square_broadcast,
)

# --- the forward pass, as in the lesson -------------------------------------------------------

def mse(out: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    return (out.squeeze(-1) - targ).pow(2).mean()


def lin(inp: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return inp @ w + b


def relu(inp: torch.Tensor) -> torch.Tensor:
    # The lesson's clamp_min(0.) in value; torch.relu's gradient at exactly 0 is 0 (clamp_min's
    # is 1): the truth takes 0 there, and `also_accepted` the 1.
    return torch.relu(inp)


# --- the mistakes, by the numbers ------------------------------------------------------------

#: The mse's mistakes as factors of the true gradient: the sign, the square's 2, the mean's 1/N
#: (None: N, the batch size).
_MSE_PARTS = {
    "mse_grad.sign_flipped": (-1.0, "the derivative of (x - t)^2 is 2(x - t), not 2(t - x)"),
    "mse_grad.missing_factor_2": (0.5, "d/dx of (x - t)^2 is 2(x - t)"),
    "mse_grad.not_averaged": (None, "mse is a mean, so divide by N = inp.shape[0]"),
}


def _relu(name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    inp, upstream = planned.inputs["inp"], planned.inputs["out.g"]
    positive = inp > 0
    mask, mask_at_zero = positive.to(torch.float64), (inp >= 0).to(torch.float64)
    if off_by(got, mask, mask_at_zero) <= tol:
        return Verdict(False, "inp.g is the 0/1 mask alone: multiply it by the upstream gradient "
                              "out.g (the chain rule), inp.g = mask * out.g",
                       ("relu_grad.ignores_upstream", "relu_grad.wrong_values"))
    if off_by(got, planned.inputs["out"]) <= tol:
        return Verdict(False, "inp.g equals out, the ReLU's output: use out.g, the gradient that "
                              "flows back, masked where inp > 0", ("relu_grad.wrong_values",))
    found = mask_errors(got, upstream, positive, inp < 0, tol, {
        "g": "inp.g", "up": "out.g", "open": "inp > 0", "shut": "inp < 0"})
    if found is None:
        return None
    return Verdict(False, f"{found}; ReLU lets the gradient through only where inp > 0 "
                          "(at exactly 0 either is accepted)",
                   ("relu_grad.wrong_mask", "relu_grad.wrong_values"))


def _lin(name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    x = planned.inputs
    truth = planned.expected[name]
    if name == "w" and is_transpose(got, truth, tol):
        return Verdict(False, f"w.g is the transpose of the true gradient: w.g = inp.t() @ out.g "
                              f"has w's shape {shape_text(truth.shape)}",
                       ("lin_grad.weight_transposed", "lin_grad.wrong_values"))
    # out (the layer's output) where out.g (the gradient flowing back) belongs.
    with_out = {"inp": x["out"] @ x["w"].t(), "w": x["inp"].t() @ x["out"], "b": x["out"].sum(0)}
    if off_by(got, with_out[name]) <= tol:
        return Verdict(False, f"{name}.g is computed from out, the layer's output: use out.g, "
                              "the gradient that flows back", ("lin_grad.wrong_values",))
    return None


class Backward(LessonCode):
    """The backward lesson's hooks (`autograder.lesson_api`): its inputs' one special case,
    and which of the engine's diagnoses apply to which target, in this lesson's words."""

    #: What to add when a `.g` has its tensor's shape transposed: a hint, and a specific code.
    TRANSPOSED = {
        ("lin_grad", "w"): (": w.g = inp.t() @ out.g has w's shape",
                            ("lin_grad.weight_transposed",)),
        ("lin_grad", "inp"): (": inp.g = out.g @ w.t() has inp's shape", ()),
    }

    #: What to add when a `.g` has its tensor's elements in another shape.
    RESHAPED = {"mse_grad": " (.unsqueeze(-1))"}

    def prepare(self, target: str, inputs: dict[str, torch.Tensor], case) -> None:
        """A case flagged `zeros`: a zero input row through a zero bias, so pre-activations that are
        exactly 0, as in a real net (where ReLU's subgradient may be 0 or 1)."""
        if target == "relu_grad" and case.flag("zeros"):
            inputs["inp"][0] = 0.0
            inputs["inp"][-1, 0] = 0.0

    def also_accepted(self, target: str, inputs: dict[str, torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
        """At an exact zero, ReLU's subgradient may be 1."""
        if target == "relu_grad":
            return {"inp": inputs["out.g"] * (inputs["inp"] >= 0)}
        return {}

    def named_ratios(self, target: str, name: str,
                     n: int) -> list[tuple[float, tuple[str, ...], str]]:
        """(ratio, codes, the fix) for the factors this lesson names, at batch size n. At N = 1 a
        factor of N is no mistake, so it is left out."""
        if target == "mse_grad" and name == "inp":
            return combined_factors(_MSE_PARTS, n, per_n="mse_grad.not_averaged")
        if target == "lin_grad" and name == "b" and n > 1:
            return [(1 / n, ("lin_grad.bias_averaged",),
                     "b is added to every row, so b.g is the sum of out.g over the batch "
                     "(out.g.sum(0)), not its mean")]
        return []

    def fix_for_factor(self, target: str, c: float, n: int) -> str | None:
        """What to say of an unnamed factor of 1/N (None: the engine's words)."""
        if target == "mse_grad" and n > 1 and abs(abs(c) - 1 / n) < 1e-9:
            return "the mean's 1/N appears once: divide by N only once"
        if target == "mse_grad" and n > 2 and abs(c - n * n / 4) < 1e-9:
            return "the factor is upside down, N/2 where 2/N belongs: write 2 / N"
        return None

    def diagnose_values(self, target: str, name: str, got: torch.Tensor, planned,
                        tol: float) -> Verdict | None:
        """A `.g` of the right shape that is not the gradient: this lesson's own patterns."""
        if target == "relu_grad":
            return _relu(name, got, planned, tol)
        if target == "lin_grad":
            return _lin(name, got, planned, tol)
        return None

    def diagnose_shape(self, target: str, name: str, got: torch.Tensor, planned, tol: float):
        """A `.g` of the wrong shape, not a transpose: (the .g with the shape undone, what to say,
        codes), or a final Verdict, or None to let the engine's general reading stand."""
        truth, n = planned.expected[name], planned.case.n
        have, want = shape_text(got.shape), shape_text(truth.shape)
        if target == "lin_grad" and name == "b":
            if kept_batch(got, truth, n):
                return got.sum(0), (f"b.g has shape {have} but b has shape {want}: b is added to "
                                    "every row, so sum out.g over the batch, out.g.sum(0)"), \
                    ("lin_grad.bias_not_summed",)
            summed_over_dim_1 = planned.inputs["out.g"].sum(1)
            if tuple(got.shape) == (n,) and off_by(got, summed_over_dim_1) <= tol:
                return Verdict(False, f"b.g has shape {have} but b has shape {want}: out.g was summed "
                                      "over dim 1; sum it over the batch, dim 0: out.g.sum(0)",
                               ("lin_grad.wrong_shape",))
        if target == "mse_grad" and square_broadcast(got, n):
            return got.reshape(n, n).diagonal().reshape(truth.shape), (
                f"inp.g has shape {have} but inp has shape {want}: inp (N, 1) minus targ (N,) "
                "broadcasts to (N, N); subtract inp.squeeze(-1), then give inp.g inp's shape"), ()
        return None

    def combine(self, target: str, failed: list[str],
                verdicts: dict) -> tuple[str, tuple[str, ...]] | None:
        """When only lin_grad's inp.g is wrong: say so, with its formula."""
        if target == "lin_grad" and failed == ["inp"] and len(verdicts) > 1:
            others = " and ".join(f"{name}.g" for name in verdicts if name != "inp")
            return (f" ({others} are right; inp.g should be out.g @ w.t())",
                    ("lin_grad.input_grad_wrong",))
        return None
