"""What each target is called with, and the true gradients, by autograd in float64.

A gradient sits next to the forward it differentiates. Everything here is trusted-side: the
student's process receives only the tensors of `make_inputs` and the `Call` that says what to do.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .spec import Case
from .wire import Call

DTYPES = {"float64": torch.float64, "float32": torch.float32}


# --- the forward pass, as in the lesson -------------------------------------------------------

def mse(out: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    return (out.squeeze(-1) - targ).pow(2).mean()


def lin(inp: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return inp @ w + b


def relu(inp: torch.Tensor) -> torch.Tensor:
    return inp.clamp_min(0.0)


# --- inputs ----------------------------------------------------------------------------------

def make_inputs(target: str, case: Case, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Fresh float64 CPU inputs for one call of `target` (the upstream gradient as `out.g`)."""

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    n = case.n
    if target == "mse_grad":
        return {"inp": randn(n, 1), "targ": randn(n)}
    if target == "relu_grad":
        inp = randn(n, case.n_out)
        if case.zeros:
            # A zero input row through a zero bias: pre-activations exactly 0, as in a real net.
            inp[0] = 0.0
            inp[-1, 0] = 0.0
        return {"inp": inp, "out": relu(inp), "out.g": randn(n, case.n_out)}
    if target == "lin_grad":
        inp, w, b = randn(n, case.n_in), randn(case.n_in, case.n_out), randn(case.n_out)
        return {"inp": inp, "out": lin(inp, w, b), "w": w, "b": b, "out.g": randn(n, case.n_out)}
    if target == "module_backward":
        # The probe's inputs and its forward's outputs, per call (see `probe_shape`): each
        # distinct, so that the grader can tell by value which one backward() passed on.
        nargs, repeat = probe_shape(case)
        found = {f"x{i}/{k}": randn(n + 1, 2) for i in range(nargs) for k in range(repeat)}
        found.update({f"out/{k}": randn(n + 1, 1) for k in range(repeat)})
        return found
    raise KeyError(target)


def probe_shape(case: Case) -> tuple[int, int]:
    """(inputs per call, calls before backward()) of a Module probe: case.n 1 -> one input,
    2 -> two inputs, 3 -> two inputs and two calls."""
    return (1 if case.n == 1 else 2), (2 if case.n == 3 else 1)


def make_call(target: str, call_id: str, case: Case, refuse_autograd: bool = False) -> Call:
    call = _make_call(target, call_id, case)
    return replace(call, device=case.device, fake=case.fake, refuse_autograd=refuse_autograd)


def _make_call(target: str, call_id: str, case: Case) -> Call:
    if target == "mse_grad":
        return Call(call_id, "function", "mse_grad", ("inp", "targ"), collect=("inp",))
    if target == "relu_grad":
        return Call(call_id, "function", "relu_grad", ("inp", "out"), {"out": "out.g"}, ("inp",))
    if target == "lin_grad":
        return Call(call_id, "function", "lin_grad", ("inp", "out", "w", "b"), {"out": "out.g"},
                    ("inp", "w", "b"))
    if target == "module_backward":
        nargs, repeat = probe_shape(case)
        return Call(call_id, "probe", "Module", tuple(f"x{i}" for i in range(nargs)),
                    repeat=repeat)
    raise KeyError(target)


# --- ground truth ----------------------------------------------------------------------------

def true_gradients(target: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The gradient of each collected input, by torch.autograd in float64."""
    with torch.enable_grad():
        leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()
                  if k in ("inp", "w", "b")}
        # `(f(x) * out.g).sum()` has the gradient `f`'s vector-Jacobian product with out.g gives,
        # bit for bit (its backward multiplies out.g by ones); a scalar's backward also spares
        # torch's check of a given gradient, which imports sympy (0.5 s of a first self-check).
        if target == "mse_grad":
            mse(leaves["inp"], inputs["targ"]).backward()
        elif target == "relu_grad":
            (torch.relu(leaves["inp"]) * inputs["out.g"]).sum().backward()
        elif target == "lin_grad":
            (lin(leaves["inp"], leaves["w"], leaves["b"]) * inputs["out.g"]).sum().backward()
        else:
            raise KeyError(target)
    return {k: v.grad for k, v in leaves.items()}


def also_accepted(target: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Other right answers, element by element: at an exact zero, ReLU's subgradient may be 1."""
    if target == "relu_grad":
        return {"inp": inputs["out.g"] * (inputs["inp"] >= 0)}
    return {}
