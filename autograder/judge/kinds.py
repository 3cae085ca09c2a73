"""A check's kind (lesson.toml's `kind`), one object each: what its calls are given, which half
of the runner makes them, what the right answer is, and how a call's result is judged.

    "values"     a function's `.g`s: set, tensors of the right shape, dtype and device, right
    "unchanged"  the same, and the inputs and upstream gradient left as they were
    "probe"      a `Module`'s `backward()` calls `self.bwd(self.out, *self.args)` (the
                 methods by the names the target's `methods` give them)

The trusted halves are here; each kind names its untrusted half by `runs`, the `wire.Call`
kind that `untrusted/calls.py` (`RUNNERS`) makes in the student's process, which imports
nothing of this. Loading a lesson reads only the names (`kind_names`, plain data, which this
module follows): torch is imported when a plan is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from ..lesson.kind_names import NAMES, RUNS, STATIC  # noqa: F401 - kinds.STATIC, as plan and scoring read it
from ..present.report import Verdict
from ..wire import Call

if TYPE_CHECKING:
    import torch

    from ..lesson.model import Case, Lesson, Target
    from .outcome import CallResult
    from .plan import PlannedCall

PASSED = Verdict(True)


class CheckKind:
    """What every kind answers; a new kind subclasses one, registers in `KINDS` and names itself
    in `kind_names.RUNS`."""

    name: ClassVar[str]
    runs: ClassVar[str]  # the runner's half: a `wire.Call` kind (`untrusted/calls.RUNNERS`)

    def inputs(self, lesson: Lesson, target: str, case: Case,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Fresh CPU inputs for one call, in float64 (or int64 labels), unrounded."""
        raise NotImplementedError

    def call(self, t: Target, call_id: str, case: Case, refuse_autograd: bool = False) -> Call:
        """What the student's process is asked to do."""
        raise NotImplementedError

    def answers(self, lesson: Lesson, target: str, inputs: dict[str, torch.Tensor]
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The true gradients, by autograd in float64, and the other answers also accepted."""
        return {}, {}

    def judge(self, target: str, planned: PlannedCall, result: CallResult,
              tensors: dict[str, torch.Tensor]) -> Verdict:
        """A call that ran to completion (`result.status == "ok"`): right or not, and why."""
        raise NotImplementedError

    def _placed(self, call: Call, case: Case, refuse_autograd: bool) -> Call:
        return replace(call, device=case.device, stand_in=case.stand_in, refuse_autograd=refuse_autograd)


class Values(CheckKind):
    name = "values"
    runs = RUNS[name]

    def inputs(self, lesson, target, case, gen):
        from . import problems

        return problems.make_inputs(lesson, target, case, gen)

    def call(self, t, call_id, case, refuse_autograd=False):
        from . import problems

        return problems.make_call(t, call_id, case, refuse_autograd)

    def answers(self, lesson, target, inputs):
        from . import problems

        return (problems.true_gradients(lesson, target, inputs),
                problems.also_accepted(lesson, target, inputs))

    def judge(self, target, planned, result, tensors):
        from . import compare, diagnose

        if planned.case.stand_in:  # stand-ins for the GPU: structure only
            verdicts = {name: compare.compare_structure(target, name, result, planned)
                        for name in planned.call.collect}
            first = next((v for v in verdicts.values() if not v.passed), PASSED)
            return with_right(first, verdicts)
        verdicts = {name: compare.compare_gradient(
            target, name, result, tensors.get(f"{planned.call.id}/{name}.g"), planned)
            for name in planned.call.collect}
        return with_right(diagnose.combine(target, verdicts, planned), verdicts)


def with_right(verdict: Verdict, verdicts: dict[str, Verdict]) -> Verdict:
    """`verdict` on a call, naming the gradients it got right (`Verdict.right`)."""
    if verdict.passed:
        return verdict
    return replace(verdict, right=tuple(name for name, v in verdicts.items() if v.passed))


class Unchanged(Values):
    name = "unchanged"
    runs = RUNS[name]

    def judge(self, target, planned, result, tensors):
        from . import compare

        # Leaving inputs alone earns points only with the right gradient: doing nothing is not
        # it. A gradient right in part earns its part only where the inputs are left alone.
        verdict = super().judge(target, planned, result, tensors)
        if verdict.passed:
            return compare.compare_unchanged(target, result, tensors, planned)
        if verdict.right and not compare.compare_unchanged(target, result, tensors,
                                                           planned).passed:
            return replace(verdict, right=())
        return verdict


@dataclass(frozen=True)
class ProbeCall(Call):
    """A probe's call: a `wire.Call` that also names the methods of the protocol (`methods`,
    part -> name, as lesson.toml's `methods` gives them): `untrusted/calls.py` stands in for
    `forward` and `bwd`, calls the layer by `call` and then its `backward`."""

    methods: dict[str, str] = field(default_factory=dict)


def methods_of(call: Call) -> dict[str, str]:
    """The probe's method names, by part: "call", "forward", "bwd", "backward"."""
    found = dict(getattr(call, "methods", None) or {})
    return {part: found.get(part, "__call__" if part == "call" else part)
            for part in ("call", "forward", "bwd", "backward")}


class Probe(CheckKind):
    """`case.n` says the probe's shape: 1, one input; 2, two inputs; 3, two inputs and two calls
    before `backward()`. The methods are the target's `methods` (by default `__call__`,
    `forward`, `bwd`, `backward`)."""

    name = "probe"
    runs = RUNS[name]

    @staticmethod
    def shape(case: Case) -> tuple[int, int]:
        """(inputs per call, calls before backward())."""
        return (1 if case.n == 1 else 2), (2 if case.n == 3 else 1)

    def inputs(self, lesson, target, case, gen):
        """The inputs and the forward's outputs, per call: each distinct, so that the grader can
        tell by value which one backward() passed on."""
        import torch

        nargs, repeat = self.shape(case)
        found = {f"x{i}/{k}": torch.randn(case.n + 1, 2, generator=gen, dtype=torch.float64)
                 for i in range(nargs) for k in range(repeat)}
        found.update({f"out/{k}": torch.randn(case.n + 1, 1, generator=gen, dtype=torch.float64)
                      for k in range(repeat)})
        return found

    def call(self, t, call_id, case, refuse_autograd=False):
        nargs, repeat = self.shape(case)
        return self._placed(ProbeCall(call_id, self.runs, t.entry,
                                      tuple(f"x{i}" for i in range(nargs)), repeat=repeat,
                                      methods=dict(t.methods)), case, refuse_autograd)

    def judge(self, target, planned, result, tensors):
        """`Module.backward` must call `self.bwd(self.out, *self.args)` once, with the latest
        call's. What `bwd` received came back as tensors; each is named here by its values,
        against the inputs and forward outputs this side sent (all distinct): nothing the
        student's process says about them is taken on trust."""
        import torch

        from .compare import same

        calls = result.bwd_calls
        nargs, repeat = len(planned.call.args), planned.call.repeat
        names = methods_of(planned.call)
        bwd, backward = names["bwd"], names["backward"]
        want = ["out"] + [f"args[{i}]" for i in range(nargs)]
        shown = f"{bwd}({', '.join(want)})"
        if not calls:
            return Verdict(False, f"{backward}() did not call self.{bwd}: it should call "
                                  f"{shown}", (f"{target}.does_nothing",))
        count = result.bwd_count if result.bwd_count is not None else len(calls)
        cid = planned.call.id

        def name_of(i: int, j: int, said) -> str:
            got = tensors.get(f"{cid}/bwd{i}/{j}") if said.kind == "tensor" else None
            if got is None:
                kind = (said.type if said.type is not None else "object")[:60]
                return "a tuple" if kind == "tuple" else f"a {kind}"
            for age, k in enumerate(reversed(range(repeat))):
                suffix = "" if age == 0 else " (from an earlier call)"
                if same(got.to(torch.float64), planned.inputs.get(f"out/{k}")):
                    return "out" + suffix
                for index in range(nargs):
                    if same(got.to(torch.float64), planned.inputs.get(f"x{index}/{k}")):
                        return f"args[{index}]" + suffix
            return "a Tensor"

        named = [[name_of(i, j, d) for j, d in enumerate(c)] for i, c in enumerate(calls)]
        if count == 1 and named == [want]:
            return PASSED
        got = named[-1]
        said = f"{bwd}({', '.join(a[:60] for a in got[:6])})"
        times = f" ({count} calls)" if count > 1 else ""
        if got == ["out"] and count == 1:
            return Verdict(False, f"{backward}() called {said}, without the inputs: {bwd} needs "
                                  f"them too, self.{bwd}(self.out, *self.args)",
                           (f"{target}.inputs_left_out", f"{target}.wrong_arguments"))
        return Verdict(False, f"{backward}() called {said}{times}; it should call {shown} "
                              "once, with self.out and the unpacked self.args",
                       (f"{target}.wrong_arguments",))


#: Every kind, by the name lesson.toml gives it (`kind_names.NAMES`, in that order).
KINDS: dict[str, CheckKind] = {k.name: k for k in (Values(), Unchanged(), Probe())}
assert tuple(KINDS) == NAMES, "kind_names.RUNS names every kind of KINDS, in order"


def of(kind: str) -> CheckKind:
    return KINDS[kind]
