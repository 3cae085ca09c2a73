"""Tensors that stand for tensors on a GPU, on any machine: GPU-readiness without a GPU.

A `StandIn` holds real values on the CPU but says it is on `meta` (a device that is not the
CPU), and, as CUDA does, refuses to meet a CPU tensor in one operation (a 0-dim CPU tensor, a
scalar, may meet anything). So `w.g = torch.zeros(w.shape); w.g += ...` (a CPU tensor, no
`device=`) fails here as it would on a GPU, while `torch.zeros_like(w)`, `device=w.device` and
`.to(inp.device)` work; so does indexing with integer or boolean index tensors on the CPU, which
CUDA takes as they are (`dx[torch.arange(n), targ] -= 1`). Results of operations on stand-ins are stand-ins; `.cpu()` and
`.to("cpu")` give plain CPU tensors, as on a GPU; `.numpy()` refuses, as for a CUDA tensor.

Built on torch's `__torch_function__` protocol, in Python: no meta kernels, no FakeTensorMode
(whose first use imports `torch._dynamo`, seconds), no extra imports at all. Runs where the
student's code runs (the graded process, or the student's kernel for the self-check).
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

_Tensor, _Base = torch.Tensor, torch._C.TensorBase
_DEVICE, _NoSubclass = _Tensor.device, torch._C.DisableTorchFunctionSubclass
_TO_CPU = {_Base.cpu}
_TO = {_Base.to, _Base.type}
_REFUSED = {_Base.numpy: "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() "
                         "to copy the tensor to host memory first."}
#: Devices that count as the GPU's side: what a stand-in says it is on, and CUDA.
GPU_SIDE = ("meta", "cuda")
#: Indexing, where CUDA takes index tensors (integers or booleans) that are on the CPU
#: (`dev_tensor[cpu_index]`, `index_put_((cpu_rows, cols), v)`): their index is the second
#: argument, or `indices`.
_INDEXING = {_Base.__getitem__, _Base.__setitem__, _Base.index_put_, _Base.index_put,
             torch.index_put}
_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
MIXED = ("Expected all tensors to be on the same device, but found at least two devices, "
         "cuda:0 and cpu!")


def _side(x: object) -> str | None:
    """'gpu' for a stand-in or a tensor on the GPU's side, 'cpu' for a CPU tensor that is not a
    scalar, None for anything else (called with subclass handling off)."""
    if isinstance(x, StandIn):
        return "gpu"
    if isinstance(x, _Tensor):
        kind = x.device.type
        if kind in GPU_SIDE:
            return "gpu"
        return None if x.dim() == 0 else kind
    return None


def _plain(x: object) -> object:
    """What the operation runs on: a stand-in's own CPU tensor (the same storage), zeros for a
    tensor with no values (a real `meta` one), the CPU for a GPU-side device."""
    if isinstance(x, StandIn):
        return x.as_subclass(_Tensor)
    if isinstance(x, _Tensor) and x.device.type in GPU_SIDE:
        return torch.zeros(x.shape, dtype=x.dtype)
    if isinstance(x, torch.device) and x.type in GPU_SIDE:
        return torch.device("cpu")
    if isinstance(x, str) and x.split(":")[0] in GPU_SIDE:
        return "cpu"
    return x


class StandIn(torch.Tensor):
    """A tensor standing for one on the GPU (see the module's doc)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__self__", None) is _DEVICE:  # `t.device`
            return torch.device("meta")
        if func in _REFUSED:
            raise TypeError(_REFUSED[func])
        flat, spec = tree_flatten((args, kwargs))
        with _NoSubclass():
            taken = _cpu_indices(func, args, kwargs)
            sides = {side for x in flat if id(x) not in taken and (side := _side(x)) is not None}
            if len(sides) > 1:
                raise RuntimeError(MIXED)
            to_gpu = "gpu" in sides
            target = kwargs.get("device")
            if target is None and func in _TO:
                target = next((a for a in args[1:] if isinstance(a, str | torch.device)), None)
            if func in _TO_CPU:
                to_gpu = False
            elif target is not None:
                to_gpu = torch.device(target).type in GPU_SIDE
            plain = [_plain(x) for x in flat]
            pargs, pkwargs = tree_unflatten(plain, spec)
            out = func(*pargs, **pkwargs)
        for before, after in zip(flat, plain, strict=True):
            if out is after and isinstance(before, _Tensor):
                # The same object back (in place, or a no-op `.to`), unless it left the GPU.
                return before if to_gpu else out
        if isinstance(out, _Tensor):
            return out.as_subclass(StandIn) if to_gpu else out
        if isinstance(out, tuple | list) and not isinstance(out, torch.Size) and \
                any(isinstance(o, _Tensor) for o in out):
            return type(out)([o.as_subclass(StandIn) if to_gpu and isinstance(o, _Tensor) else o
                              for o in out])
        return out


def _cpu_indices(func, args: tuple, kwargs: dict) -> set[int]:
    """The ids of the CPU index tensors an indexing call was given, which CUDA takes as they
    are (called with subclass handling off)."""
    if func not in _INDEXING:
        return set()
    index = kwargs.get("indices", args[1] if len(args) > 1 else None)
    return {id(t) for t in tree_flatten(index)[0] if isinstance(t, _Tensor) and
            not isinstance(t, StandIn) and t.device.type == "cpu" and t.dtype in _INDEX_DTYPES}


def stand_in(t: torch.Tensor) -> StandIn:
    """A stand-in holding a copy of `t`'s values."""
    return t.detach().clone().as_subclass(StandIn)
