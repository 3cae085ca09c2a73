"""What each target is called with, and the true gradients, by autograd in float64 (trusted side).

Read from the lesson (`lesson.py`): its targets' inputs and shapes, their forwards in the
lesson's own code. The student's process receives only the tensors of `make_inputs` and the
`Call` that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..lesson import spec_keys
from ..lesson.model import Case, Lesson, Target
from ..wire import Call

DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: A number input's 0-d tensor, by its type: what crosses, and what `.item()` makes again.
NUMBER_DTYPES = {"float": torch.float64, "int": torch.int64}


@dataclass(frozen=True)
class FunctionCall(Call):
    """A function target's call: a `wire.Call` that also names the arguments handed to the
    student's function as Python numbers (`untrusted/calls.py` makes each one from its 0-d
    tensor with `.item()`: a float, or an int)."""

    numbers: tuple[str, ...] = ()


def numbers_of(call: Call) -> tuple[str, ...]:
    """The arguments `call` hands as Python numbers (none for a call of another kind)."""
    return getattr(call, "numbers", ())


def argument(value: torch.Tensor, name: str, numbers: tuple[str, ...]) -> object:
    """What lesson code (a forward, the reference) is handed for input `name`: a number input as
    the Python number the answer gets, any other input as it is."""
    return value.item() if name in numbers else value


def _draw(spec: object, case: Case, gen: torch.Generator) -> torch.Tensor:
    """One input: a shape (sizes by name) drawn from a normal distribution, or a table:
    `{shape = [...], draw = "classes", classes = "n_out"}` for integer labels below a size, or
    `{type = "float", value = 1e-5}`, a number (a 0-d tensor here; Python's for the answer)."""
    kind = spec_keys.input_type(spec)
    if kind != "tensor":
        return torch.tensor(spec["value"], dtype=NUMBER_DTYPES[kind])
    table = spec if isinstance(spec, dict) else {"shape": spec}
    shape = [d if isinstance(d, int) else case.dim(d) for d in table["shape"]]
    draw = table.get("draw", "normal")
    if draw == "classes":
        high = table["classes"]
        return torch.randint(high if isinstance(high, int) else case.dim(high), shape,
                             generator=gen, dtype=torch.int64)
    if draw != "normal":
        raise ValueError(f"unknown draw {draw!r}")
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * float(table.get("scale", 1))


def make_inputs(lesson: Lesson, target: str, case: Case, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Fresh CPU inputs for one call of the function target `target` (float64, or int64 labels),
    in the order of its arguments, then the upstream gradients (a probe's are `kinds.Probe`'s).

    The drawn inputs are rounded to the case's dtype (held in float64, as sent), and a derived
    one (log_softmax's `out`) is the lesson's forward of those, in float64: exactly what
    autograd's forward computes from them (the sent copy is rounded once more, `as_case`)."""
    t = lesson.target(target)
    drawn = {name: _draw(spec, case, gen) for name, spec in t.inputs}
    lesson.code().prepare(target, drawn, case)
    drawn = {name: value if name in t.numbers else as_case(value, case)
             for name, value in drawn.items()}
    for name, forward, of in t.derived:
        with torch.no_grad():
            drawn[name] = lesson.forward(forward)(*(argument(drawn[k], k, t.numbers)
                                                    for k in of))
    ordered = {name: drawn[name] for name in t.args if name in drawn}
    ordered.update((k, v) for k, v in drawn.items() if k not in ordered)
    return ordered


def as_case(value: torch.Tensor, case: Case) -> torch.Tensor:
    """A float input rounded to the case's dtype, then held in float64 (as sent, exactly);
    integer inputs (class labels) as they are."""
    if not value.is_floating_point():
        return value
    return value.to(DTYPES[case.dtype]).to(torch.float64)


def make_call(t: Target, call_id: str, case: Case, refuse_autograd: bool = False) -> Call:
    """The call of a function target (`kinds.Values.call`): its `.g`s set, it is called on its
    arguments, and the `.g`s it must set come back, on the case's device."""
    return FunctionCall(call_id, "function", t.entry, t.args, dict(t.grads), t.collect,
                        device=case.device, stand_in=case.stand_in,
                        refuse_autograd=refuse_autograd,
                        numbers=tuple(n for n in t.args if n in t.numbers))


def true_gradients(lesson: Lesson, target: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The gradient of each collected input, by torch.autograd in float64, on the lesson's
    forward: `(f(x) * upstream).sum()` gives the vector-Jacobian product with the upstream
    gradient bit for bit (its backward multiplies it by ones), and a scalar's backward spares
    torch's check of a given gradient, which imports sympy (0.5 s of a first self-check)."""
    t = lesson.target(target)
    forward = lesson.forward(t.forward)
    with torch.enable_grad():
        leaves = {k: inputs[k].detach().clone().requires_grad_() for k in t.collect}
        out = forward(*(leaves.get(k, argument(inputs[k], k, t.numbers))
                        for k in t.forward_args))
        (out * inputs[t.upstream]).sum().backward() if t.upstream else out.backward()
    return {k: v.grad for k, v in leaves.items()}


def also_accepted(lesson: Lesson, target: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Other right answers, element by element (the lesson's `also_accepted`, e.g. at an exact
    zero, ReLU's subgradient may be 1)."""
    return lesson.code().also_accepted(target, inputs)
