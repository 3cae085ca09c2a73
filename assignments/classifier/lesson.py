"""The classifier lesson's code (trusted side): its forward pass (log_softmax, nll), its inputs,
and which of the engine's diagnoses apply to which target, in this lesson's words.

The spec is lesson.toml; the hand-written gradients are reference.py; the hooks are the class
`Classifier` (a `LessonCode`, see `autograder.lesson_api`). The truth is autograd on the forwards
below, in float64 (`autograder.problems`).
"""

from __future__ import annotations

import torch

from autograder.lesson_api import LessonCode, Verdict, combined_factors, off_by, shape_text

#: How much a case flagged "large" scales its logits: exp() overflows beyond about 88 in
#: float32 and 709 in float64.
LARGE = 1000.0


# --- the forward pass, as in the lesson -------------------------------------------------------

def log_softmax(x: torch.Tensor) -> torch.Tensor:
    # The log-sum-exp trick: x - logsumexp(x), never exp(x) itself.
    return x - x.logsumexp(-1, keepdim=True)


def nll(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    # The mean negative log-likelihood of the targets' log-probabilities.
    return -inp[torch.arange(targ.shape[0]), targ].mean()


# --- the mistakes ------------------------------------------------------------------------------

_NLL_PARTS = {
    "nll_grad.sign_flipped": (-1.0, "nll is -log p of the target: its gradient is -1/N there, "
                                    "not +1/N"),
    "nll_grad.not_averaged": (None, "nll is a mean over the batch, so divide by N = inp.shape[0]"),
}


def _softmax_of(planned) -> torch.Tensor:
    return planned.inputs["out"].exp()


class Classifier(LessonCode):
    """The classifier lesson's hooks (`autograder.lesson_api`): its inputs, and which of the
    engine's diagnoses apply to which target, in this lesson's words."""

    TRANSPOSED = {("nll_grad", "inp"): (": build the one-hot as (N, C), a row per sample and a "
                                        "column per class", ("nll_grad.wrong_one_hot",))}

    def prepare(self, target: str, inputs: dict[str, torch.Tensor], case) -> None:
        """nll_grad's inp are log-probabilities (log_softmax of logits); a case flagged "large"
        has logits in the thousands."""
        if case.flag("large"):
            inputs["inp"].mul_(LARGE)
        if target == "nll_grad":
            inputs["inp"] = log_softmax(inputs["inp"])

    def named_ratios(self, target: str, name: str,
                     n: int) -> list[tuple[float, tuple[str, ...], str]]:
        if target == "nll_grad":
            return combined_factors(_NLL_PARTS, n, per_n="nll_grad.not_averaged")
        return []

    def fix_for_factor(self, target: str, c: float, n: int) -> str | None:
        if target == "log_softmax_grad" and n > 1 and abs(abs(c) - 1 / n) < 1e-9:
            return "out.g already carries nll's 1/N: do not divide by N again"
        return None

    def diagnose_values(self, target: str, name: str, got: torch.Tensor, planned,
                        tol: float) -> Verdict | None:
        if target != "log_softmax_grad":
            return None
        upstream, soft = planned.inputs["out.g"], _softmax_of(planned)
        if off_by(got, upstream) <= tol:
            return Verdict(False, "inp.g is out.g alone: log_softmax's Jacobian has a second term, "
                                  "inp.g = out.g - softmax(inp) * out.g.sum(-1, keepdim=True)",
                           ("log_softmax_grad.missing_sum_term", "log_softmax_grad.wrong_values"))
        # The commonest mistake first: at N = 1 a sum over the batch is no sum, and reads as this.
        if off_by(got, upstream - soft * upstream) <= tol:
            return Verdict(False, "inp.g equals out.g - softmax(inp) * out.g: the sum over the classes "
                                  "is missing; each class's gradient takes all of its row's out.g, "
                                  "inp.g = out.g - softmax(inp) * out.g.sum(-1, keepdim=True)",
                           ("log_softmax_grad.missing_class_sum", "log_softmax_grad.wrong_values"))
        if off_by(got, upstream - soft * upstream.sum(0, keepdim=True)) <= tol:
            return Verdict(False, "inp.g sums out.g over the batch (dim 0): sum it over the classes, "
                                  "out.g.sum(-1, keepdim=True)",
                           ("log_softmax_grad.wrong_sum_dim", "log_softmax_grad.wrong_values"))
        if soft.shape[0] == soft.shape[1] and \
                off_by(got, upstream - soft * upstream.sum(-1)) <= tol:
            return Verdict(False, "out.g.sum(-1) without keepdim=True has shape (N,), which "
                                  "broadcasts along the classes, not the batch: keep the dimension, "
                                  "out.g.sum(-1, keepdim=True)",
                           ("log_softmax_grad.no_keepdim", "log_softmax_grad.wrong_values"))
        return None

    def diagnose_shape(self, target: str, name: str, got: torch.Tensor, planned, tol: float):
        """nll_grad's one-hot built with too few columns (F.one_hot without num_classes)."""
        truth, n = planned.expected[name], planned.case.n
        if target == "nll_grad" and got.dim() == 2 and got.shape[0] == n \
                and got.shape[1] < truth.shape[1]:
            return Verdict(False, f"inp.g has {got.shape[1]} columns but there are "
                                  f"{truth.shape[1]} classes: give the one-hot a column per class, "
                                  "inp.shape[1], not as many as the largest label in targ",
                           ("nll_grad.wrong_one_hot", "nll_grad.wrong_shape"))
        if target == "log_softmax_grad" and tuple(got.shape) == (n, n) != tuple(truth.shape):
            return Verdict(False, f"inp.g has shape {shape_text(got.shape)} but inp has "
                                  f"shape {shape_text(truth.shape)}: out.g.sum(-1) without "
                                  "keepdim=True broadcasts; keep the dimension, "
                                  "out.g.sum(-1, keepdim=True)",
                           ("log_softmax_grad.no_keepdim", "log_softmax_grad.wrong_shape"))
        return None

    def dtype_hint(self, target: str, name: str, dtype: torch.dtype, planned):
        """Said from the dtype alone: the values cannot tell how the tensor was made (F.one_hot,
        torch.zeros, torch.eye), so the hint names no function the student may not have used."""
        if target != "nll_grad":
            return None
        if not dtype.is_floating_point:
            return (f"; inp.g holds {str(dtype).removeprefix('torch.')} numbers, as a one-hot is "
                    "made: convert it with .to(inp.dtype)", ("nll_grad.wrong_one_hot",))
        if dtype == torch.float32:
            return ("; a tensor made without a dtype has torch's default, float32: make it with "
                    "dtype=inp.dtype (or like inp, torch.zeros_like(inp)), or convert it with "
                    ".to(inp.dtype)", ())
        return ("; a tensor made with a fixed dtype keeps it whatever inp is: make it with "
                "dtype=inp.dtype (or like inp, torch.zeros_like(inp))", ())

    def not_finite_hint(self, target: str, name: str, planned):
        if target == "log_softmax_grad" and planned.case.flag("large"):
            return (": the logits here are in the thousands, where exp(inp) overflows; softmax(inp) "
                    "is out.exp() (out = log_softmax(inp)), or subtract inp.max(-1, keepdim=True) "
                    "before exp (the log-sum-exp trick)", ("log_softmax_grad.overflows",))
        return None

    def error_hint(self, target: str, kind: str, message: str, planned):
        if target == "log_softmax_grad" and "must match the size of tensor" in message:
            return ("; a sum over the classes without keepdim=True has shape (N,), which does not "
                    "broadcast against (N, C): out.g.sum(-1, keepdim=True)",
                    ("log_softmax_grad.no_keepdim",))
        return None
