"""The trusted side of the boundary: run a submission's code untrusted, read back plain data.

`run_untrusted` never imports or executes student code. It runs the submission in processes
started in the sandbox, one after another (`attempt.run_attempt`: start, send the job and the
work, follow its frames, kill), and decides what follows each (this module): if a process dies
or hangs inside a cell, that cell is skipped and the program runs again; inside a target, that
target fails and the rest run again; at most `settings.MAX_RESTARTS` times, within one wall-clock
and one CPU budget for all of it (`settings.SUBMISSION_TIMEOUT`, `settings.SUBMISSION_CPU`), keeping at
most `settings.MAX_OUTPUT` bytes of each stream of what it printed. What comes back is read by
`wire.FrameReader` (frames with this run's token only, every length checked against its caps)
and validated before anyone compares it.

The other modules of the trusted side, one idea each: `limits` (which layers apply, and how to
start a process inside them), `process` (start and kill one process), `streams` (the threads on
its pipes), `failures` (why a process ended, naming the limit), `warm` (warm parents).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import settings
from ..judge.outcome import TargetOutcome, UntrustedRun
from .attempt import DrawnWork, Submission, Work, run_attempt
from .failures import why_it_ended
from .layers import Limits, choose_layers
from .policy import WORK
from .process import gpu_here, runner_env
from .streams import Output
from .warm import prestart as warm_prestart
from .warm import supported


@dataclass
class Budget:
    """What one submission may use, all its processes together."""

    wall: float = field(default_factory=lambda: settings.SUBMISSION_TIMEOUT)  # seconds, from the start
    cpu: float = field(default_factory=lambda: settings.SUBMISSION_CPU)  # seconds
    restarts: int = field(default_factory=lambda: settings.MAX_RESTARTS)
    output: int = field(default_factory=lambda: settings.MAX_OUTPUT)  # bytes kept, per stream


def run_untrusted(cells: list[dict], work: Work | Callable[[], Work], *, device: str = "cpu",
                  cells_timeout: float = 60.0, target_timeout: float = 10.0,
                  limits: Limits | None = None, hide: Iterable[str | Path] = (),
                  warm: bool = False, budget: Budget | None = None,
                  language: dict | None = None) -> UntrustedRun:
    """Run `cells` (dicts with `index`, `source` and `name`), then each target's calls, untrusted.

    `work` gives `(targets, inputs)`: targets as `{"name": ..., "calls": [Call.to_json(), ...]}`,
    inputs as the tensors the calls name. It may be a function: it is then called once the
    student's process has started, so that drawing inputs overlaps running the cells. Always
    returns: every target gets an outcome, whatever the student's code does, within `budget`.

    The process runs under `limits` (default: `settings`') in the strongest layers this platform
    offers (`limits.choose_layers`); `run.sandbox` names them. `hide` names more paths to leave
    empty inside what the jail binds. `warm` forks the process from a warm parent (`warm.py`:
    the same jail, torch already imported) where this platform allows. `language` is the
    lesson's `[language]` table: what its answers may use beyond the engine's answer language.
    """
    limits, budget = limits or Limits(), budget or Budget()
    if not device.startswith("cpu") or gpu_here():
        limits = replace(limits, address_space=False)
    layers = choose_layers()
    began = time.monotonic()
    sub = Submission(cells=cells, work=DrawnWork(work),
                     run=UntrustedRun(sandbox=layers.names(limits)),
                     layers=layers, outputs=(Output(budget.output), Output(budget.output)),
                     wall_end=began + budget.wall, device=device,
                     hide=tuple(str(p) for p in hide), warm=warm, cells_timeout=cells_timeout,
                     target_timeout=target_timeout, language=language or {})
    run, drawn, cpu_used = sub.run, sub.work, 0.0
    for attempt in range(budget.restarts + 1):
        wall_left, cpu_left = began + budget.wall - time.monotonic(), budget.cpu - cpu_used
        if attempt and (wall_left <= 0 or cpu_left < 1):
            spent = (f"its {budget.wall:g} s of wall-clock time" if wall_left <= 0 else
                     f"its {budget.cpu:g} s of CPU")
            for target in drawn.targets:
                run.targets.setdefault(target["name"], TargetOutcome(
                    "timeout", f"the submission had used {spent} (the budget of a submission)"))
            break
        run.restarts = attempt
        tried = replace(limits, cpu_seconds=max(1, min(limits.cpu_seconds, math.ceil(cpu_left))))
        ended = run_attempt(sub, tried)
        cpu_used += ended.cpu
        start = ("warm start (forked from a process that imported torch once)" if ended.warm
                 else "cold start")
        if start not in run.sandbox:
            run.sandbox.append(start)
        remaining = [t for t in drawn.targets if t["name"] not in run.targets]
        if not remaining:
            break
        status, detail = why_it_ended(ended.returncode, ended.timed_out, ended.limit, tried,
                                      ended.tail)
        if ended.budget_hit:
            detail = (f"still running when the submission had used its {budget.wall:g} s of "
                      "wall-clock time (the budget of a submission)")
        step, skip = ended.step, sub.skip
        if step.get("step") == "cell" and step.get("index") in {c["index"] for c in cells} - skip:
            skip.add(step["index"])
            run.cell_errors[step["index"]] = {"type": status, "message": detail, "where": None}
        elif step.get("step") == "target" and step.get("name") in {t["name"] for t in remaining}:
            run.targets[step["name"]] = TargetOutcome(status, detail)
        else:  # died between steps: give up on what is left
            for target in remaining:
                run.targets[target["name"]] = TargetOutcome(status, detail)
        if all(t["name"] in run.targets for t in drawn.targets):
            break
    for target in drawn.targets or []:
        run.targets.setdefault(target["name"], TargetOutcome(
            "crashed", f"gave up after {budget.restarts} restarts (the budget of a submission)"))
    run.stdout, run.stderr = sub.outputs[0].text(), sub.outputs[1].text()
    run.stray = sub.reader.stray
    return run


def start_warm_workers() -> None:
    """Where warm workers apply, start their first process now, from the calling thread (it
    lives as long as that thread): it imports torch while the caller prepares the batch."""
    layers = choose_layers()
    if supported(layers):
        warm_prestart(runner_env(WORK), layers)
