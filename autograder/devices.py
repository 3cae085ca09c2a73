"""Which devices a run checks, and what it found there, in a line a student can read (trusted side).

Three lanes (`Case.lane`): "cpu", real tensors; "gpu-ready", tensors that stand for the GPU and
need none (`meta`: structure only, device, shape, dtype); "cuda", real CUDA tensors, only where
the student's process finds a GPU. The trusted side never touches CUDA itself: the runner says
whether it could (a CUDA call comes back "unavailable" without a GPU).
"""

from __future__ import annotations

from .compare import STAND_IN_DEVICES
from .judging import Verdicts
from .outcome import UntrustedRun
from .plan import Plan
from .settings import DeviceUnavailable, lanes_for  # noqa: F401 - part of this module's API


def summarize(plan: Plan, run: UntrustedRun, verdicts: Verdicts, device: str = "all") -> dict:
    """Per lane: "passed", "failed", "not available here" or "not requested"; and the backend.
    Reads the verdict on each call (`judging.judge_calls`): nothing is judged here."""
    found: dict[str, list[bool]] = {"cpu": [], "gpu-ready": [], "cuda": []}
    unavailable, backends = False, []
    # A check with stand-in cases is GPU-readiness: its CPU case (the right gradient first)
    # counts there too, so that the line says what the check says.
    ready = {(p.target, p.check.name) for p in plan.calls if p.case.stand_in}
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
    return summary


def describe(summary: dict) -> str:
    """'CPU: passed; CUDA: not available here; GPU-readiness: passed (meta)'."""
    backend = summary.get("gpu-ready-backend")
    ready = summary["gpu-ready"] + (f" ({backend})" if backend else "")
    cuda = summary["cuda"] + (" (TF32 off)" if summary["cuda"] in ("passed", "failed") else "")
    return f"CPU: {summary['cpu']}; CUDA: {cuda}; GPU-readiness: {ready}"
