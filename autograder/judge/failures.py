"""A call that did not run to completion, said in the student's words (trusted side).

What the student's process reported (an error, a function that is not there, a cell that
stopped, memory, a device mixed up), turned into one line that says what to fix, with the
mistake code for it. No student code runs here.
"""

from __future__ import annotations

from ..answer.reading import Cell
from ..present.report import Verdict
from . import diagnose
from .outcome import CallResult, ErrorInfo, TargetOutcome
from .plan import PlannedCall


def process_failure(target: str, outcome: TargetOutcome) -> Verdict | None:
    """The process stopped, ran out of time or memory while the target ran: every call fails."""
    if outcome.status == "ok":
        return None
    code = {"timeout": "timeout", "memory": "memory"}.get(outcome.status, "crashed")
    what = {"timeout": "did not finish", "memory": "ran out of memory"}.get(
        outcome.status, "stopped the grading process")
    return Verdict(False, f"{target} {what}: {outcome.detail}", (f"{target}.{code}",))


def undefined(entry: str, target: str) -> str:
    """What a call of `entry` says where it is not defined and its cell said nothing more."""
    return f"{entry} is not defined: did the {target} cell run without errors?"


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
        return Verdict(False, undefined(entry, target), (f"{target}.error",))
    error = meta.error or ErrorInfo()
    kind = error.type if error.type is not None else "an error"
    text = (error.message if error.message is not None else "")[:300]
    where = f" ({error.where})" if error.where else ""
    if kind in _REFUSED:
        return Verdict(False, f"{target}: {text}{where}. No points for {target} while it is "
                              "there", (f"{target}.{_REFUSED[kind]}",))
    if kind == "NotImplementedError":
        return Verdict(False, f"{target} still raises NotImplementedError: replace the stub's "
                              "`raise` with your code", (f"{target}.not_implemented",))
    if any(sign in text for sign in _MIXED_DEVICES):
        x = first_input(planned)
        return Verdict(False, f"{target} mixes devices{where}: {text[:200]} — make new tensors "
                              f"on the input's device (torch.zeros_like({x}), device={x}.device)",
                       (f"{target}.wrong_device",))
    if kind == "DataDependentOutputException" or "cannot be called on meta tensors" in text:
        return Verdict(False, f"{target} reads a tensor's value into Python (.item(), float(), "
                              f"an if on a tensor){where}: the gpu-ready check runs your code on "
                              "stand-in CUDA tensors, which hold no values; keep the computation "
                              "on tensors", (f"{target}.error",))
    if kind == "MemoryError" or "allocate memory" in text or "out of memory" in text.lower():
        limit = f": {error.limit}" if error.limit else ""
        return Verdict(False, f"{target} ran out of memory{where}{limit}", (f"{target}.memory",))
    limit = f" ({error.limit})" if error.limit else ""
    extra, codes = diagnose.said(diagnose.hooks(planned).error_hint(target, kind, text, planned))
    return Verdict(False, f"{target} raised {kind}: {text}{where}{limit}{extra}"
                          f"{own_cell(target, text, own)}", (*codes, f"{target}.error"))


def first_input(planned) -> str:
    """The target's first argument, to name in a hint (`inp`; `w` where none is known)."""
    args = planned.call.args if planned is not None else ()
    return args[0] if args else "w"


def own_cell(target: str, text: str, own: dict[str, str] | None) -> str:
    """For "name 'helper' is not defined" where a cell of the student's own defines helper."""
    if not own or not text.startswith("name '") or "' is not defined" not in text:
        return ""
    name = text[len("name '"):text.index("' is not defined")]
    if name not in own:
        return ""
    return (f"; {name} is defined in {own[name]}, a cell of your own, which grading does not "
            f"run: define it in the {target} cell")


#: What the answer language's guards raise (`untrusted/guards.py`), by its mistake code.
_REFUSED = {"NotAllowed": "not_allowed", "AutogradNotAllowed": "uses_autograd"}

#: How PyTorch (real or stand-in tensors) says that one operation got tensors on two devices.
_MIXED_DEVICES = ("Expected all tensors to be on the same device", "is not on the expected device",
                  "found at least two devices")


def misnamed(target: str, planned: PlannedCall, cell: Cell) -> Verdict | None:
    """The answer cell ran but defines no `entry` (a base class named as in another course,
    `LayerFunction`): say what it defines instead, from the cell as grading read it."""
    import ast

    entry, what = planned.call.function, "class" if planned.call.kind == "probe" else "function"
    kinds = (ast.ClassDef,) if what == "class" else (ast.FunctionDef, ast.AsyncFunctionDef)
    defined = cell.definitions(kinds)
    if entry in defined or not defined:
        return None
    shown = ", ".join(dict.fromkeys(defined[:6]))
    return Verdict(False, f"there is no {what} {entry} in the {target} cell: it defines {shown}; "
                          f"the grader calls {entry}, so give yours that name",
                   (f"{target}.error",))


def cell_failed(target: str, error: ErrorInfo, own: dict[str, str] | None) -> Verdict:
    """The target is not defined because its answer cell stopped: say how the cell ended."""
    where = f" ({error.where})" if error.where else ""
    limit = f" ({error.limit})" if error.limit else ""
    # A cell stopped by a limit, or whose process died, costs its target that code.
    code = {"timeout": "timeout", "memory": "memory", "MemoryError": "memory",
            "crashed": "crashed", **_REFUSED}.get(str(error.type), "error")
    said = "was stopped" if code in ("timeout", "crashed") or code == "memory" and \
        error.type != "MemoryError" else "raised " + str(error.type)
    message = str(error.message)[:200]
    return Verdict(False, f"{target} is not defined: its cell {said}: "
                          f"{message}{where}{limit}{own_cell(target, message, own)}",
                   (f"{target}.{code}",))
