"""Name the student's actual mistake from the numbers and shapes (trusted side).

`compare` finds that a `.g` is wrong; this module says how. Each function returns a `Verdict`
whose message gives the direction of the fix and the numbers that show it (shapes, a ratio, a
count of elements), never a value of a hidden input, and whose codes are the specific one from
the catalogue in docs/contract.md followed by the general one; or None to let the general message stand.
Everything here works from tensors that came back as plain data: no student code runs.

The engine names no target: its tools (`tools`) are general (a factor off, a transpose, a
broadcast, a sum missing over the batch, a mask); which apply to which target, in which words, is the
lesson's: the hooks of its `lesson_api.LessonCode` subclass (its lesson.py).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import torch

from ..lesson_api import LessonCode
from ..present.report import Verdict
from . import problems
from .lesson_codes import Checked

# The toolkit lessons use, kept here by their old names too (`diagnose.off_by`).
from .tools import (  # noqa: F401
    best_ratio,
    combined_factors,
    is_transpose,
    is_transposed_shape,
    kept_batch,
    mask_errors,
    off_by,
    shape_text,
    square_broadcast,
)


def tolerance(got_dtype: torch.dtype, case_dtype: str, lesson=None) -> float:
    """The relative error allowed: the case's, or more for a `.g` of a coarser dtype."""
    from ..lesson.model import DEFAULT_TOLERANCES

    table = lesson.tolerances if lesson is not None else DEFAULT_TOLERANCES
    name = str(got_dtype).removeprefix("torch.")
    return max(table[case_dtype], table.get(name, 1e-2))


def _diagnosis_tolerance(got: torch.Tensor, planned) -> float:
    # Room for rounding in the student's own formula, never so much that a guess fits.
    return min(10 * tolerance(got.dtype, planned.case.dtype, planned.lesson), 1e-2)


_NO_HOOKS = LessonCode()


def hooks(planned) -> LessonCode:
    """The hooks of the lesson `planned` belongs to (none: the defaults, which do nothing)."""
    lesson = getattr(planned, "lesson", None)
    if lesson is None:
        return _NO_HOOKS
    return Checked(lesson, lesson.code(), (*GENERAL, *NAMED))  # each code a hook gives is
    # checked against [mistakes]


def said(hint: tuple[str, tuple[str, ...]] | None) -> tuple[str, tuple[str, ...]]:
    """A lesson's hint, or nothing to add."""
    return hint or ("", ())


#: Codes that any target may have; the catalogue's specific codes are listed before them.
GENERAL = ("not_implemented", "error", "timeout", "memory", "crashed", "missing_g", "not_tensor",
           "wrong_shape", "wrong_dtype", "wrong_device", "not_finite", "wrong_values",
           "mutates_input", "uses_autograd")


#: Codes the engine names for any target from the numbers alone, as specific as a lesson's own:
#: they come first, and the class report ranks them with the lessons' codes.
NAMED = ("inputs_swapped",)


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
    if n > 1 and abs(abs(c) - n * n) < 1e-9:
        return f"{'-' if c < 0 else ''}N^2 = {'-' if c < 0 else ''}{n * n} times"
    if n > 1 and abs(abs(c) - 1 / (n * n)) < 1e-12:
        return f"{'-' if c < 0 else ''}1/N^2 = {'-' if c < 0 else ''}1/{n * n} of"
    frac = Fraction(c).limit_denominator(64)
    if abs(float(frac) - c) < 1e-9 and frac.denominator > 1:
        return f"{frac} of" if 0 < frac < 1 else f"{frac} times"
    return f"{c:.4g} times"


def fixed_batch(c: float | None, n: int) -> int | None:
    """The fixed size M when `c` = N / M: a gradient divided by a number (a global's shape[0],
    the training set's size) where this batch's N belongs. Only a size far beyond the batch
    (M >= 10 N) and not N squared (a 1/N too many), so that no simple fraction is read as one."""
    if not c or c <= 0 or n < 1:
        return None
    m = n / c
    if m < 10 * n or abs(m - round(m)) > 1e-6 * m or round(m) == n * n:
        return None
    return round(m)


def _generic_fix(target: str, c: float, n: int, planned=None) -> str:
    own = hooks(planned).fix_for_factor(target, c, n)
    if own:
        return own
    if n > 1 and abs(abs(c) - 1 / n) < 1e-9:
        return "out.g already carries the loss's 1/N: do not divide by N again"
    if n > 1 and abs(abs(c) - n) < 1e-9:
        return "there is no factor N here: do not multiply by N"
    if n > 1 and abs(abs(c) - n * n) < 1e-9:
        return "a factor N multiplies where it should divide (x * N for x / N)"
    if n > 1 and abs(abs(c) - 1 / (n * n)) < 1e-12:
        return "a factor N divides where it should multiply, or divides twice: divide by N at most once"
    if c < 0:
        return "check the sign"
    return "check the constant factors"


def ratio_verdict(target: str, name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    """`got` is a scalar multiple of the true gradient: name the factor."""
    truth, also, n = planned.expected[name], planned.accepted.get(name), planned.case.n
    for ratio, codes, fix in hooks(planned).named_ratios(target, name, n):
        if off_by(got, ratio * truth, None if also is None else ratio * also) <= tol:
            head = (f"{name}.g has the wrong sign" if ratio == -1 else
                    f"{name}.g is {ratio_words(ratio, n)} the true gradient")
            return Verdict(False, f"{head}: {fix}", (*codes, f"{target}.wrong_values"))
    # Any other simple factor (a small fraction, such as -1, 2 or 1/N) is still worth naming.
    c = best_ratio(got, truth)
    fixed = fixed_batch(c, n)
    if fixed and off_by(got, c * truth, None if also is None else c * also) <= tol:
        size = "inp.shape[0]" if "inp" in planned.inputs else "its first dimension"
        return Verdict(False, f"{name}.g is {c:.3g} times the true gradient, as if divided by "
                              f"{fixed} and not by this batch's N = {n}: divide by the size of "
                              f"the batch the function is given ({size}), not a fixed number",
                       (f"{target}.wrong_values",))
    if c is not None and n > 1:  # N^2 or 1/N^2: a factor N on the wrong side of the line
        for square in (n * n, -n * n, 1 / (n * n), -1 / (n * n)):
            if abs(c - square) <= 1e-6 * abs(square) and off_by(
                    got, square * truth, None if also is None else square * also) <= tol:
                return Verdict(False, f"{name}.g is {ratio_words(square, n)} the true gradient: "
                                      f"{_generic_fix(target, square, n, planned)}",
                               (f"{target}.wrong_values",))
    limit = max(2 * n, 4)
    if c is None or not 1 / limit <= abs(c) <= limit:
        return None
    ratio = float(Fraction(c).limit_denominator(limit))
    if ratio != 1 and off_by(got, ratio * truth, None if also is None else ratio * also) <= tol:
        return Verdict(False, f"{name}.g is {ratio_words(ratio, n)} the true gradient: "
                              f"{_generic_fix(target, ratio, n, planned)}", (f"{target}.wrong_values",))
    return None


# --- a wrong .g, by the numbers ---------------------------------------------------------------

def wrong_values(target: str, name: str, got: torch.Tensor, planned) -> Verdict | None:
    """`got` has the right shape and is finite but is not the gradient: say how it differs."""
    tol = _diagnosis_tolerance(got, planned)
    if got.numel() and not got.to(torch.float64).abs().max().item():
        return Verdict(False, f"{name}.g is all zeros: compute the gradient, not a placeholder",
                       (f"{target}.wrong_values",))
    verdict = hooks(planned).diagnose_values(target, name, got, planned, tol)
    return verdict or ratio_verdict(target, name, got, planned, tol) or \
        reciprocal(target, name, got, planned, tol) or swapped(target, name, got, planned, tol)


def reciprocal(target: str, name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    """`got` is 1 / the true gradient, element by element: what should multiply divides."""
    truth = planned.expected[name]
    if not truth.numel() or not bool((truth != 0).all()):
        return None
    for sign in (1.0, -1.0):
        if off_by(got, sign / truth) <= tol:
            flipped = " with the sign flipped" if sign < 0 else ""
            return Verdict(False, f"{name}.g is the reciprocal of the true gradient{flipped}, "
                                  "element by element (1 / g for g): what should multiply "
                                  "divides; put the factors in the numerator",
                           (f"{target}.wrong_values",))
    return None


# --- two inputs of one shape, each in the other's place --------------------------------------------

def swapped(target: str, name: str, got: torch.Tensor, planned, tol: float) -> Verdict | None:
    """`got` is the gradient with two inputs of the call that have one shape mixed up: both
    swapped, or one read where the other belongs. The right formula is computed on the inputs so
    mixed up, as the lesson's reference writes it (where the plan was built with it: it may read
    a derived input, log_softmax's `out`) and as autograd on the lesson's forward (which reads the
    forward's inputs and the upstream gradient); trusted code both, no student code runs."""
    inputs, truth = planned.inputs, planned.expected[name]
    also = planned.accepted.get(name)
    names = [k for k, v in inputs.items() if v.is_floating_point()]
    for a, b in itertools.combinations(names, 2):
        if inputs[a].shape != inputs[b].shape or torch.equal(inputs[a], inputs[b]):
            continue
        # One read in the other's place says more than a swap: try those first.
        for mixed, used, where in (({a: inputs[b]}, b, a), ({b: inputs[a]}, a, b),
                                   ({a: inputs[b], b: inputs[a]}, None, None)):
            for formula in _right_formulas(planned):
                want = formula({**inputs, **mixed})
                if want is None or name not in want or want[name].shape != truth.shape \
                        or off_by(want[name], truth, also) <= tol:
                    continue  # this formula does not read them, or reads them alike
                if off_by(got, want[name]) <= tol:
                    return Verdict(False, _mixed_up(target, name, planned, a, b, used, where),
                                   (f"{target}.inputs_swapped", f"{target}.wrong_values"))
    return None


def _right_formulas(planned):
    """The right gradient as functions of a call's inputs: the reference's, where the plan has
    one (`PlannedCall.reference`: built with the solutions), then autograd's on the lesson's
    forward. Nothing here loads a reference: a plan without solutions runs autograd alone."""
    lesson = getattr(planned, "lesson", None)
    if lesson is None:
        return
    reference = getattr(planned, "reference", None)
    if reference is not None:
        yield reference

    def by_autograd(inputs):
        try:
            return problems.true_gradients(lesson, planned.target, inputs)
        except Exception:  # noqa: BLE001 - a forward that cannot take the mixed-up inputs
            return None
    yield by_autograd


def _mixed_up(target: str, name: str, planned, a: str, b: str, used: str | None,
              where: str | None) -> str:
    """The sentence: which input stands where, what each is, and that one shape hid it."""
    roles = "; ".join(r for r in (_role(planned, a), _role(planned, b)) if r)
    roles = f" ({roles})" if roles else ""
    if used is None:
        return (f"{name}.g is the gradient with {a} and {b} swapped, each used where the other "
                f"belongs{roles}: the two have the same shape, so only the values show it")
    return (f"{name}.g is the gradient with {used} used where {where} belongs{roles}: the two "
            f"have the same shape, so only the values show it; use {where} there")


def _role(planned, x: str) -> str:
    """What input `x` of the call is, where the lesson says: the upstream gradient, or a
    derived input and the forward that made it."""
    lesson = getattr(planned, "lesson", None)
    if lesson is None:
        return ""
    spec = lesson.target(planned.target)
    if x == spec.upstream:
        return f"{x} is the gradient flowing back"
    for derived, forward, of in spec.derived:
        if derived == x:
            return f"{x} = {forward}({', '.join(of)})"
    return ""


def wrong_shape(target: str, name: str, got: torch.Tensor, planned) -> Verdict | None:
    """`got` has the wrong shape: say why, and check its values once the shape is undone."""
    truth = planned.expected[name]
    have, want = shape_text(got.shape), shape_text(truth.shape)
    tol = _diagnosis_tolerance(got, planned)
    codes: tuple[str, ...] = ()
    lesson = hooks(planned)
    if is_transposed_shape(got, truth):
        hint, codes = lesson.TRANSPOSED.get((target, name), ("", ()))
        undone, said = got.transpose(0, 1), f"{name}.g has shape {have}, the transpose of {name}'s {want}{hint}"
    elif found := lesson.diagnose_shape(target, name, got, planned, tol):
        if isinstance(found, Verdict):
            return found
        undone, said, codes = found
    elif got.numel() == truth.numel():
        # The lesson's hint says how to add what is missing; a .g with more dimensions has them
        # to spare, and is told so.
        extra = got.dim() - truth.dim()
        hint = (lesson.RESHAPED.get(target, "") if extra < 0 else
                f" ({name}.g has {extra} dimension{'s' if extra > 1 else ''} more than {name})"
                if extra > 0 else "")
        undone = got.reshape(truth.shape)
        said = (f"{name}.g has shape {have} but {name} has shape {want}: reshape it to "
                f"{name}.shape{hint}")
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

def combine(target: str, verdicts: dict[str, Verdict], planned=None) -> Verdict:
    """One verdict for one call from the verdict on each `.g` it sets, in one line."""
    failed = {name: v for name, v in verdicts.items() if not v.passed}
    if not failed:
        return Verdict(True)
    unset = [name for name, v in failed.items() if v.mistakes == (f"{target}.missing_g",)]
    missing = [name for name in unset if failed[name].message.endswith(f"did not set {name}.g")]
    in_grad = [name for name in unset if name not in missing]
    messages = [v.message for name, v in failed.items()
                if not (name in missing and len(missing) > 1 or name in in_grad and len(in_grad) > 1)]
    if len(in_grad) > 1:
        messages.insert(0, f"{target} stored the gradients in "
                           f"{', '.join(m + '.grad' for m in in_grad)}; the lesson's convention is "
                           f"{', '.join(m + '.g' for m in in_grad)}, which the grader reads")
    if len(missing) > 1:
        messages.insert(0, f"{target} did not set {', '.join(m + '.g' for m in missing)}")
    codes = [code for v in failed.values() for code in v.mistakes]
    extra = hooks(planned).combine(target, list(failed), verdicts)
    if extra:
        messages[0] += extra[0]
        codes[:0] = extra[1]
    return Verdict(False, "; ".join(messages), specific_first(codes))
