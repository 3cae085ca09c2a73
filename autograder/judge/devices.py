"""Which devices a run checks, and what it found there, in a line a student can read (trusted side).

Three lanes (`Case.lane`): "cpu", real tensors; "gpu-ready", tensors that stand for the GPU and
need none (`meta`: structure only, device, shape, dtype); "cuda", real CUDA tensors, only where
the student's process finds a GPU. The trusted side never touches CUDA itself: the runner says
whether it could (a CUDA call comes back "unavailable" without a GPU).
"""

from __future__ import annotations

from ..settings import DeviceUnavailable, lanes_for  # noqa: F401 - part of this module's API
from .compare import STAND_IN_DEVICES
from .judging import Verdicts
from .outcome import UntrustedRun
from .plan import Plan


def summarize(plan: Plan, run: UntrustedRun, verdicts: Verdicts, device: str = "all") -> dict:
    """Per lane: "passed", "failed", "not available here" or "not requested"; and the backend.
    Reads the verdict on each call (`judging.judge_calls`): nothing is judged here."""
    found: dict[str, list[bool]] = {"cpu": [], "gpu-ready": [], "cuda": []}
    stand_in: list[bool] = []  # the stand-in calls alone: devices, shapes, dtypes, no values
    unavailable, backends, unjudged = False, [], False
    # A check with stand-in cases is GPU-readiness: its CPU case (the right gradient first)
    # counts there too, so that the line says what the check says.
    ready = {(p.target, p.check.name) for p in plan.calls if p.case.stand_in}
    # What the CPU calls of each target fail with, where they ran: the same mistake on a
    # stand-in (a wrong shape, a wrong dtype) is that mistake again, not a device fault.
    on_cpu: dict[str, set[str]] = {}
    for planned in plan.calls:
        verdict = verdicts[planned.call.id]
        if planned.case.lane == "cpu" and verdict is not None and not verdict.passed:
            on_cpu.setdefault(planned.target, set()).update(verdict.mistakes)
    for planned in plan.calls:
        verdict = verdicts[planned.call.id]
        if verdict is None:  # a CUDA call without a GPU
            unavailable = True
            continue
        outcome = run.targets.get(planned.target)
        meta = outcome.calls.get(planned.call.id) if outcome is not None else None
        if planned.case.lane == "cuda" and meta is None:
            continue  # never reached (an earlier call crashed): says nothing about the GPU
        found[planned.case.lane].append(verdict.passed)
        if planned.case.stand_in and not verdict.passed and _not_run_on_cpu(
                on_cpu.get(planned.target)):  # code that does not run says nothing of a GPU
            unjudged = True
        elif planned.case.stand_in:
            stand_in.append(verdict.passed or _shown_on_cpu(verdict, on_cpu.get(planned.target)))
        if planned.case.lane == "cpu" and (planned.target, planned.check.name) in ready:
            found["gpu-ready"].append(verdict.passed)
        if planned.case.stand_in and meta is not None and meta.backend in STAND_IN_DEVICES:
            backends.append(meta.backend)

    def state(lane: str) -> str:
        if lane == "cuda" and device == "cpu":
            return "not requested"
        if lane == "cuda" and unavailable and not found["cuda"]:
            return "not available here"
        if not found[lane]:
            return "not run"
        return "passed" if all(found[lane]) else "failed"

    summary = {lane: state(lane) for lane in found}
    summary["gpu-ready-backend"] = backends[0] if backends else None
    # "passed": the code kept its tensors on their device on the stand-ins, whatever its values,
    # and its shapes and dtypes but where the CPU calls show the same mistake: what a wrong
    # value or shape alone must not read as a device fault.
    # Where a target's code did not run at all, "passed" would say more than was seen.
    summary["stand-in"] = ("failed" if not all(stand_in) else
                           "not run" if unjudged or not stand_in else "passed")
    return summary


#: Codes of a call that did not run to its end: on a stand-in, they may be the device's doing.
_DID_NOT_RUN = ("error", "timeout", "memory", "crashed", "not_implemented")


def _shown_on_cpu(verdict, cpu: set[str] | None) -> bool:
    """A stand-in call that fails only with mistakes its target's CPU calls show too, each of a
    `.g` that came back (the stand-in's device is judged first, so its tensors were on it)."""
    return bool(cpu) and set(verdict.mistakes) <= cpu and not any(
        code.rsplit(".", 1)[-1] in _DID_NOT_RUN for code in verdict.mistakes)


def _not_run_on_cpu(cpu: set[str] | None) -> bool:
    """The target's CPU calls did not run to their end (it raised, it is not defined, it hung):
    its stand-in calls cannot tell whether the code is ready for a GPU."""
    return bool(cpu) and any(code.rsplit(".", 1)[-1] in _DID_NOT_RUN for code in cpu)


def describe(summary: dict, verbose: bool = False) -> str:
    """The device line, in a student's words: what the gpu-ready checks found on stand-in CUDA
    tensors, and what real CUDA found where it ran. That real CUDA was not tried (no GPU here,
    or `--device cpu`) is said only where `verbose` or the stand-ins failed; "" where there is
    nothing to say. The JSON's `devices` keeps the states, by lane."""
    said = []
    ready = summary.get("stand-in", summary.get("gpu-ready"))  # a report kept before "stand-in"
    if ready == "passed":
        said.append("your code keeps tensors on their device (checked with stand-in CUDA "
                    "tensors, no GPU needed)")
    elif ready == "failed":
        said.append("not yet ready for a GPU: see the gpu-ready checks (run on stand-in CUDA "
                    "tensors, no GPU needed)")
    cuda = summary.get("cuda")
    if cuda in ("passed", "failed"):
        said.append(f"on this machine's GPU (real CUDA, TF32 off): {cuda}")
    elif verbose or ready == "failed":
        if cuda == "not available here":
            said.append("real CUDA was not tried: this machine has no GPU")
        elif cuda == "not requested":
            said.append("real CUDA was not tried: --device cpu")
    return "; ".join(said)
