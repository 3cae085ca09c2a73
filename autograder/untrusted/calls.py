"""Calling a student's function as the grader asks (a `wire.Call`), and saying what came of it.

Runs where the student's code runs: in the graded process (`runner.py`) and, for the in-notebook
self-check, in the student's own kernel. Standard library and torch only. It returns plain data
only: a JSON-able account of each call and plain CPU tensors, which the trusted side judges.
It names nothing by itself: a probe's record is the tensors `bwd` received, which the grader
names by comparing them with what it sent.

Every torch and Python function used on the student's objects is bound when this module is
imported, before any student code runs, and `.g` is read from an object's own `__dict__`, so
that a class-level property or a patched method changes nothing of what is read.
"""

from __future__ import annotations

import traceback

import torch

from .. import wire
from .guards import AUTOGRAD_TRIED as _AUTOGRAD_TRIED
from .stand_in import stand_in as _stand_in

MISSING = object()
#: No `.g`, but a tensor left in `.grad`: a gradient stored under autograd's name.
IN_GRAD = object()
_MAX_MESSAGE = 400

# Bound now: what a later patch of torch.Tensor's Python attributes cannot reach.
_Base = torch._C.TensorBase
_detach, _to, _contiguous, _as_subclass = _Base.detach, _Base.to, _Base.contiguous, _Base.as_subclass
_to_dense, _layout, _numel = _Base.to_dense, _Base.layout.__get__, _Base.numel
_device_of, _shape_of, _dtype_of = _Base.device.__get__, _Base.shape.__get__, _Base.dtype.__get__
_grad_of, _item = _Base.grad.__get__, _Base.item
_NoSubclass, _NoDispatch = torch._C.DisableTorchFunctionSubclass, torch._C._DisableTorchDispatch
_isinstance, _vars, _type, _str, _int, _len = isinstance, vars, type, str, int, len
_getattr = getattr
_Tensor, _strided, _no_grad = torch.Tensor, torch.strided, torch.no_grad
_extract_tb = traceback.extract_tb
_modes_active = getattr(torch._C, "_len_torch_dispatch_mode", lambda: 0)


# --- autograd, refused while a call runs where the rules saw none ------------------------------

class AutogradRefused(RuntimeError):
    """Autograd ran where the grader's reading of the code found none."""


class _Refuse:
    """Stands for autograd's engine during a call: every backward pass and `torch.autograd.grad`
    (and what is built on them, `torch.func` included) ends here, however the code reached it."""

    used = False

    def run_backward(self, *args, **kwargs):
        _Refuse.used = True
        raise AutogradRefused("autograd is not allowed here: write the gradient by hand")

    def __getattr__(self, name):
        return self.run_backward


try:  # autograd's engine, as torch.autograd.backward and grad reach it (a private part of torch)
    from torch.autograd.variable import Variable as _Variable

    _ENGINE = _Variable._execution_engine
except (ImportError, AttributeError):  # a torch without it: the rules remain
    _Variable = _ENGINE = None


class _no_autograd:
    """While a call runs: autograd's engine refuses (see `_Refuse`)."""

    def __enter__(self) -> None:
        if _Variable is not None:
            _Refuse.used = False
            _Variable._execution_engine = _Refuse()

    def __exit__(self, *exc) -> None:
        if _Variable is not None:
            _Variable._execution_engine = _ENGINE


class _NoFreshEngine:
    """Where autograd's engine class was, once refused for good: a type, never an engine."""

    def __new__(cls, *args, **kwargs):
        _Refuse.used = True
        raise AutogradRefused("autograd is not allowed here: there is no fresh engine "
                              "(torch._C._ImperativeEngine) to make")


def refuse_autograd_for_good() -> None:
    """For the rest of this process (the graded one, never a student's kernel), every road to a
    gradient that torch offers is closed, whatever name code reaches it by:

    - autograd's engine: the instance (`Variable._execution_engine`) refuses, and every name
      bound to its class (`torch._C._ImperativeEngine`, `torch.autograd.variable`'s, the
      C type `_EngineBase` wherever a module holds it) is a type that refuses to make one;
    - the graph: grad mode is off and cannot be turned on (`torch._C._set_grad_enabled`, which
      `torch.enable_grad` and `set_grad_enabled` call, refuses True), and a tensor saved for a
      backward pass refuses to be saved (a default saved-tensors hook that cannot be popped), so
      that no `grad_fn` worth calling is ever made;
    - forward-mode AD: off, and it cannot be turned on;
    - torch's own backward kernels (`aten::*_backward*`) raise, on every device torch dispatches
      to here.

    Idempotent: a warm parent does it once for every process forked from it."""
    global _ENGINE
    if getattr(refuse_autograd_for_good, "done", False):
        return
    refuse_autograd_for_good.done = True
    engine_class = type(_ENGINE) if _ENGINE is not None else None
    if _Variable is not None:
        _ENGINE = _Refuse()  # what `_no_autograd` puts back after a call, too
        _Variable._execution_engine = _ENGINE
    replaced = {id(engine_class): _NoFreshEngine} if engine_class is not None else {}
    if hasattr(torch._C, "_set_grad_enabled"):
        set_grad = torch._C._set_grad_enabled
        set_grad(False)
        replaced[id(set_grad)] = _refusing_true(set_grad, "grad mode")
    if hasattr(torch._C, "_set_fwd_grad_enabled"):
        set_fwd = torch._C._set_fwd_grad_enabled
        set_fwd(False)
        replaced[id(set_fwd)] = _refusing_true(set_fwd, "forward-mode AD")
    hooks = getattr(torch._C, "_autograd", None)
    if hooks is not None and hasattr(hooks, "_push_saved_tensors_default_hooks"):
        hooks._push_saved_tensors_default_hooks(_refused_saving, _refused_saving)
        for name in ("_pop_saved_tensors_default_hooks", "_saved_tensors_hooks_disable",
                     "_saved_tensors_hooks_enable", "_push_saved_tensors_default_hooks"):
            if hasattr(hooks, name):
                replaced[id(getattr(hooks, name))] = _refused_saving
    _replace_everywhere(replaced)
    _refuse_backward_kernels()


def _refusing_true(switch, what: str):
    def refused(enabled, *args, **kwargs):
        if enabled:
            _Refuse.used = True
            raise AutogradRefused(f"autograd is not allowed here: {what} stays off")
        return switch(enabled, *args, **kwargs)

    return refused


def _refused_saving(*args, **kwargs):
    _Refuse.used = True
    raise AutogradRefused("autograd is not allowed here: nothing is saved for a backward pass")


def _replace_everywhere(replaced: dict[int, object]) -> None:
    """Each object whose id is a key of `replaced`, wherever a loaded module (or a class in one)
    binds it, replaced by its value."""
    import sys

    for module in list(sys.modules.values()):
        names = getattr(module, "__dict__", None)
        if not isinstance(names, dict):
            continue
        for key, value in list(names.items()):
            if id(value) in replaced:
                names[key] = replaced[id(value)]


def _refuse_backward_kernels() -> None:
    def refused(*args, **kwargs):
        _Refuse.used = True
        raise AutogradRefused("torch's backward kernels are not allowed here: write the "
                              "gradient by hand")

    import warnings

    try:
        names = [n[len("aten::"):] for n in torch._C._dispatch_get_all_op_names()
                 if n.startswith("aten::") and "backward" in n]
        library = torch.library.Library("aten", "IMPL")
    except (AttributeError, RuntimeError):  # a torch without them: the rules remain
        return
    refuse_autograd_for_good.library = library  # a registration lasts while its library lives
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
        for name in names:
            for key in ("CPU", "CUDA", "Meta"):
                try:
                    library.impl(name, refused, key)
                except (RuntimeError, ValueError):
                    pass


# --- saying what happened, in one line --------------------------------------------------------

def describe_exception(exc: BaseException) -> dict:
    """Type, message and where in the student's cells it was raised."""
    where = None
    for frame in _extract_tb(exc.__traceback__):
        if frame.filename.startswith("<cell "):
            where = f"{frame.filename[1:-1]}, line {frame.lineno}"
    if _isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith("<cell "):
        where = f"{exc.filename[1:-1]}, line {exc.lineno}"
    try:
        message = _str(exc.msg or exc) if _isinstance(exc, SyntaxError) else _str(exc)
    except Exception:  # noqa: BLE001 - a student's exception whose __str__ raises
        message = ""
    if _len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return {"type": _type(exc).__name__[:80], "message": message, "where": where}


def g_of(obj: object) -> object:
    """What the student left in `obj.g`, from the object's own attributes."""
    try:
        found = _vars(obj).get("g", MISSING)
    except TypeError:  # no __dict__: not something a .g can be set on
        return MISSING
    if found is MISSING and _isinstance(obj, _Tensor) and _grad_of(obj) is not None:
        return IN_GRAD
    return found


def describe_value(value: object) -> dict:
    """What a student left in a `.g`: a tensor (its device), or something else (its type)."""
    if value is MISSING:
        return {"kind": "missing"}
    if value is IN_GRAD:
        return {"kind": "in_grad"}
    if not _isinstance(value, _Tensor):
        return {"kind": "other", "type": _type(value).__name__[:60]}
    return {"kind": "tensor", "type": _type(value).__name__[:60], "device": _str(_device_of(value))}


def plain_tensor(value: object) -> torch.Tensor | None:
    """A detached, contiguous, plain CPU tensor, whatever subclass it was; None for anything else
    or a tensor too large to send back."""
    if not _isinstance(value, _Tensor):
        return None
    with _NoSubclass(), _NoDispatch():
        value = _detach(_as_subclass(value, _Tensor))
        if _numel(value) > wire.MAX_TENSOR_ELEMENTS:
            raise TooLarge(f"a tensor of {_numel(value)} elements, more than the grader reads "
                           f"back ({wire.MAX_TENSOR_ELEMENTS})")
        if _layout(value) != _strided:
            value = _to_dense(value)
        return _contiguous(_to(value, "cpu", copy=True))


class TooLarge(ValueError):
    """A tensor larger than what crosses back."""


class _nothing:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass


# --- calling a student's function ------------------------------------------------------------

def _call_student(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
                  make, guard) -> tuple[dict, dict]:
    """Call the student's `call["function"]` on inputs made by `make`, inside `guard()`, after
    setting `.g` on the upstream tensors. Returns what happened and the objects it was given
    (those made before an error, if one came first)."""
    fn = namespace.get(call["function"], MISSING)
    if fn is MISSING:
        return {"status": "undefined"}, {}
    cid, objs, meta = call["id"], {}, {"status": "ok"}
    numbers = call.get("numbers", ())  # handed as Python numbers: a float, or an int
    refuse = _no_autograd() if call.get("refuse_autograd") else _nothing()
    del _AUTOGRAD_TRIED[:]
    try:
        with guard(), refuse:
            for name in call["args"]:
                sent = tensors[f"{cid}/{name}"]
                objs[name] = _item(sent) if name in numbers else make(sent)
            for name, grad in call["grads"].items():
                _vars(objs[name])["g"] = make(tensors[f"{cid}/{grad}"])
            fn(*(objs[name] for name in call["args"]))
    except BaseException as exc:  # noqa: BLE001 - SystemExit inside a stub fails this call only
        meta = {"status": "error", "error": describe_exception(exc)}
    if call.get("refuse_autograd") and _Refuse.used or _AUTOGRAD_TRIED:
        meta["autograd"] = True  # said against itself: the grader believes it
    if _modes_active():
        meta = {"status": "error", "error": {"type": "RuntimeError", "where": None, "message":
                "a torch mode was left active: what torch runs was changed"}}
    return meta, objs


def run_call(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
             device: str = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """Make one call that `call` describes; return what happened and the tensors to send back.

    The call's own `device` wins over `device`; a CUDA call where there is no GPU comes back as
    `{"status": "unavailable"}`, and a `stand_in` call sends back structure only (`run_stand_in_call`).
    """
    device = call.get("device", device)
    if call.get("stand_in"):
        return run_stand_in_call(namespace, call, tensors), {}
    if device.startswith("cuda") and not cuda_ready():
        return {"status": "unavailable", "device": device}, {}
    return RUNNERS[call["kind"]](namespace, call, tensors, device)


def run_function(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
                 device: str = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """Call a student's function (a `wire.Call` of kind "function"): set the upstream `.g`s,
    call it, and send back each collected `.g`, the inputs after, and the upstream `.g` after."""
    meta, objs = _call_student(namespace, call, tensors,
                               lambda t: _to(t, device, copy=True), _no_grad)
    if meta["status"] == "undefined":
        return meta, {}
    cid = call["id"]
    out: dict[str, torch.Tensor] = {}
    try:
        meta["g"] = {}
        for name in call["collect"]:
            g = g_of(objs[name]) if name in objs else MISSING
            meta["g"][name] = describe_value(g)
            if (t := plain_tensor(g)) is not None:
                out[f"{cid}/{name}.g"] = t
        for name, obj in objs.items():
            if (t := plain_tensor(obj)) is not None:
                out[f"{cid}/{name}.after"] = t
        for name in call["grads"]:
            if (t := plain_tensor(g_of(objs[name]) if name in objs else None)) is not None:
                out[f"{cid}/{name}.g.after"] = t
    except TooLarge as exc:
        return {"status": "error", "error": {"type": "TooLarge", "where": None,
                                             "message": f"{name}.g is {exc}"}}, {}
    return meta, out


def run_probe(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
              device: str = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """Check `Module.backward` with a layer whose `forward` returns what the grader sent and whose
    `bwd` records what it receives: the grader names each of those by its values. The methods
    go by the names the call gives (`methods`: a lesson's own protocol), these by default."""
    module = namespace.get(call["function"], MISSING)
    if module is MISSING:
        return {"status": "undefined"}, {}
    if not _isinstance(module, type):
        return {"status": "error", "error": {"type": "TypeError", "where": None,
                                             "message": f"{call['function']} is not a class"}}, {}
    cid, recorded, outs = call["id"], [], []
    # The protocol's methods, by the names the lesson gives them (`kinds.ProbeCall`).
    names = {"call": "__call__", "forward": "forward", "bwd": "bwd", "backward": "backward",
             **(call.get("methods") or {})}

    def forward(self, *args):
        outs.append(_to(tensors[f"{cid}/out/{_len(outs)}"], device, copy=True))
        return outs[-1]

    def bwd(self, out, *args):
        recorded.append((out, *args))

    try:
        Probe = _type(module)("Probe", (module,), {names["forward"]: forward,
                                                   names["bwd"]: bwd})
        layer = Probe()
        enter = layer if names["call"] == "__call__" else _getattr(layer, names["call"])
        for k in range(call["repeat"]):
            enter(*(_to(tensors[f"{cid}/{name}/{k}"], device, copy=True) for name in call["args"]))
        recorded.clear()  # only what backward() does counts
        del _AUTOGRAD_TRIED[:]
        with _no_autograd() if call.get("refuse_autograd") else _nothing():
            _getattr(layer, names["backward"])()
    except BaseException as exc:  # noqa: BLE001
        meta = {"status": "error", "error": describe_exception(exc)}
        if call.get("refuse_autograd") and _Refuse.used or _AUTOGRAD_TRIED:
            meta["autograd"] = True
        return meta, {}
    sent, calls = {}, []
    for i, received in enumerate(recorded[:8]):
        described = []
        for j, obj in enumerate(received[:8]):
            tensor = plain_tensor(obj) if _isinstance(obj, _Tensor) and \
                _numel(obj) <= 64 else None
            if tensor is not None:
                sent[f"{cid}/bwd{i}/{j}"] = tensor
                described.append({"kind": "tensor"})
            else:
                described.append({"kind": "other", "type": _type(obj).__name__[:60]})
        calls.append(described)
    return {"status": "ok", "bwd_calls": calls, "bwd_count": _len(recorded)}, sent


#: The runner's half of each check kind (`autograder/judge/kinds.py`, `CheckKind.runs`), by the
#: `wire.Call` kind it makes.
RUNNERS = {"function": run_function, "probe": run_probe}


# --- devices: a real GPU where there is one, a stand-in for it anywhere -----------------------

def cuda_ready() -> bool:
    """Whether this process can use CUDA; initialises it here, at call time, with TF32 off."""
    if not torch.cuda.is_available():
        return False
    # TF32 would round float32 matmuls to 10 bits: off, so that the float32 tolerance holds.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return True


#: What stands for the GPU in GPU-readiness (`stand_in.py`), as the report names it.
STAND_IN = "meta"


def run_stand_in_call(namespace: dict, call: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """Call a student's function on tensors that stand for the GPU's (`stand_in.StandIn`): only
    structure comes back, each `.g` described by its device, shape and dtype."""
    if call["kind"] != "function":
        return {"status": "error", "error": {"type": "ValueError", "where": None,
                                             "message": "stand-in calls are for functions"},
                "backend": STAND_IN}
    meta, objs = _call_student(namespace, call, tensors, _stand_in, _no_grad)
    meta["backend"] = STAND_IN
    if meta["status"] == "undefined":
        return meta
    meta["g"] = {}
    for name in call["collect"]:
        g = g_of(objs[name]) if name in objs else MISSING
        info = describe_value(g)
        if _isinstance(g, _Tensor):
            info.update(shape=[_int(d) for d in _shape_of(g)],
                        dtype=_str(_dtype_of(g)).removeprefix("torch."))
        meta["g"][name] = info
    return meta
