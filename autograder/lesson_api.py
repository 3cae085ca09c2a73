"""The lesson API: the one module a lesson's `lesson.py` imports from. It holds every hook a
lesson may give the engine, in one class (`LessonCode`), and the diagnosis toolkit its hooks are
made of (`Verdict`, `off_by`, `shape_text`, `mask_errors`, ...; `__all__` lists them, and
docs/lessons.md is their reference).

A lesson's `lesson.py` holds its forwards (module-level functions, named in `lesson.toml`; the
truth is autograd on them, in float64) and one subclass of `LessonCode`, which overrides the
hooks it needs. Every hook has a default that does nothing, so an empty subclass is a lesson
whose mistakes get the engine's general words alone:

    class Tanh(LessonCode):
        def named_ratios(self, target, name, n):
            return [(-1.0, ("tanh_grad.sign_flipped",), "d tanh(x)/dx is 1 - tanh(x)^2")]

`target` is a target's name (lesson.toml), `name` an argument whose `.g` is judged, `tol` the
relative error a diagnosis allows, and `planned` the call being judged, whose fields a hook reads:

    planned.target    the target's name (as `target`)
    planned.inputs    dict: argument or input name -> the tensor sent, float64 (rounded to the
                      case's dtype first) or int64 labels; the upstream gradient under its input
                      name ("out.g"), a derived input ("out") as its forward gave it
    planned.expected  dict: collected argument -> its true gradient (autograd on the lesson's
                      forward, float64); what `.g` should be
    planned.accepted  dict: argument -> another right answer, element by element, where the
                      lesson's `also_accepted` gives one (ReLU's subgradient at 0); else absent
    planned.case      the case (`case` in `prepare`): `.n` the batch size, `.dim("n_out")` a size
                      by name, `.dtype` ("float64", "float32"), `.device`, `.flag("large")`
                      whether it has one of the lesson's flags
    planned.check     the check: `.name`, `.kind`, `.weight`

Hooks only read these: the inputs and the truth are the engine's, and never cross to the
student's process. Codes are the lesson's catalogue (`[mistakes]`), the general codes
follow them. A public name on the subclass that is not a hook here, or a hook with other
parameters, is a `LessonError` when the lesson's code is loaded: a misspelt hook is never
silently ignored. Helpers are private (`_name`) or live at the module's top level. (A lesson.py
with no subclass, written before this class, has its module-level hooks read by these names.)
"""

from __future__ import annotations

import difflib
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from .judge.tools import (
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
from .present.report import Verdict

if TYPE_CHECKING:
    import torch

    from .judge.plan import PlannedCall
    from .lesson.model import Case

__all__ = [
    # the hooks
    "Hint", "LessonCode",
    # the diagnosis toolkit
    "Verdict", "best_ratio", "combined_factors", "is_transpose", "is_transposed_shape",
    "kept_batch", "mask_errors", "off_by", "shape_text", "square_broadcast",
]

#: (what to add to the message, specific codes): what a lesson's hint gives back.
Hint = tuple[str, tuple[str, ...]]


class LessonCode:
    """The hooks of one lesson, each a no-op by default; a lesson overrides what it needs."""

    # --- inputs --------------------------------------------------------------------------

    def prepare(self, target: str, inputs: dict[str, torch.Tensor], case: Case) -> None:
        """Change the freshly drawn float64 inputs of one call in place (before they are rounded
        to the case's dtype and the derived ones computed): exact zeros, large logits."""

    def also_accepted(self, target: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Other right answers, element by element, by argument (ReLU's subgradient at 0)."""
        return {}

    # --- a .g of the right shape that is not the gradient ---------------------------------

    def named_ratios(self, target: str, name: str,
                     n: int) -> list[tuple[float, tuple[str, ...], str]]:
        """The factors of the true gradient that this lesson names, at batch size `n`:
        (ratio, codes, the fix). `combined_factors` builds them from single factors."""
        return []

    def fix_for_factor(self, target: str, c: float, n: int) -> str | None:
        """What to say of an unnamed factor `c` (None: the engine's words)."""
        return None

    def diagnose_values(self, target: str, name: str, got: torch.Tensor, planned: PlannedCall,
                        tol: float) -> Verdict | None:
        """This lesson's own reading of a wrong `.g` of the right shape (None: the engine's,
        a factor off, follows)."""
        return None

    # --- a .g of the wrong shape ------------------------------------------------------------

    #: (target, name) -> what to add, and codes, when a `.g` is its tensor's shape transposed.
    TRANSPOSED: ClassVar[dict[tuple[str, str], Hint]] = {}
    #: target -> what to add when a `.g` has too few dimensions (its elements in another shape).
    RESHAPED: ClassVar[dict[str, str]] = {}

    def diagnose_shape(self, target: str, name: str, got: torch.Tensor, planned: PlannedCall,
                       tol: float) -> tuple[torch.Tensor, str, tuple[str, ...]] | Verdict | None:
        """A `.g` of the wrong shape, not a transpose: (the `.g` with the shape undone, what to
        say, codes), whose values the engine then judges; or a final Verdict; or None to let
        the engine's general reading stand."""
        return None

    # --- what to add to the engine's general verdicts ----------------------------------------

    def combine(self, target: str, failed: list[str],
                verdicts: dict[str, Verdict]) -> Hint | None:
        """One call's `.g`s judged (`failed`: the names that fail): what to add to the first
        message, and codes to put first."""
        return None

    def dtype_hint(self, target: str, name: str, dtype: torch.dtype,
                   planned: PlannedCall) -> Hint | None:
        """A `.g` of the wrong dtype: what to add."""
        return None

    def not_finite_hint(self, target: str, name: str, planned: PlannedCall) -> Hint | None:
        """A `.g` with NaN or infinite values: what to add."""
        return None

    def error_hint(self, target: str, kind: str, message: str,
                   planned: PlannedCall) -> Hint | None:
        """A call that raised `kind` with `message`: what to add."""
        return None


HOOKS = tuple(n for n in vars(LessonCode) if not n.startswith("_"))


def lesson_code(module: ModuleType, where: str) -> LessonCode:
    """The one `LessonCode` subclass `module` defines, made and checked; `ValueError` (one
    line, naming `where`) for none, two, a name that is no hook, or a hook's other parameters."""
    found = [c for c in vars(module).values() if isinstance(c, type)
             and issubclass(c, LessonCode) and c is not LessonCode
             and c.__module__ == module.__name__]
    if not found:
        raise ValueError(f"{where} must define one subclass of autograder.lesson_api.LessonCode "
                         "(it defines none)")
    if len(found) > 1:
        raise ValueError(f"{where} must define one subclass of autograder.lesson_api.LessonCode "
                         f"(it defines {', '.join(c.__name__ for c in found)})")
    cls = found[0]
    for owner in cls.__mro__:
        if owner is LessonCode or not issubclass(owner, LessonCode):
            continue
        for name, value in vars(owner).items():
            if name.startswith("_"):
                continue
            if name not in HOOKS:
                near = difflib.get_close_matches(name, HOOKS, 1)
                hint = f": did you mean {near[0]}?" if near else f" (the hooks: {', '.join(HOOKS)})"
                raise ValueError(f"{where}: {owner.__name__}.{name} is not a hook of the lesson "
                                 f"API{hint}")
            _same_parameters(owner, name, value, where)
    return cls()


def _same_parameters(owner: type, name: str, value: object, where: str) -> None:
    base = getattr(LessonCode, name)
    if not inspect.isfunction(base):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: {owner.__name__}.{name} must be a dict")
        return
    if not inspect.isfunction(value):
        raise ValueError(f"{where}: {owner.__name__}.{name} must be a method")
    want = len(inspect.signature(base).parameters)
    params = inspect.signature(value).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    if len(params) != want:
        shown = ", ".join(inspect.signature(base).parameters)
        raise ValueError(f"{where}: {owner.__name__}.{name} takes ({', '.join(p.name for p in params)}); "
                         f"the hook takes ({shown})")

