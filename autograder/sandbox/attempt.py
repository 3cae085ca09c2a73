"""One process of a submission, from its start to its end or its kill (trusted side).

`run_attempt` starts the student's process in the sandbox (`limits.prepare`), sends it the job
and, once drawn, the work, then follows its frames on the channel: where it is (a cell, a
target), the cells' errors, each target's results. Each step has its deadline; the submission's
wall-clock budget bounds them all. It returns how the process ended (`Ended`); what came back is
recorded in the submission's `UntrustedRun` as it arrives.
"""

from __future__ import annotations

import os
import select
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import settings, wire
from ..answer import compiler
from ..judge.outcome import parse_results
from .failures import name_the_limit
from .layers import Layers, Limits, prepare
from .policy import WORK
from .process import ColdProcess, kill, require_platform, runner_env, start
from .streams import Capture, Output, Sender
from .warm import supported

if TYPE_CHECKING:
    from ..judge.outcome import UntrustedRun

Work = tuple[list[dict], dict]

#: The answer language's guards in the student's process (`untrusted/guards.py`). Only the tests
#: of what the sandbox itself holds turn them off (`tests/unchecked.py`): grading never does.
GUARDED = True  # the targets' calls (JSON-able) and the tensors they name


class DrawnWork:
    """The work, drawn once, when the first process has started (drawing overlaps its start)."""

    def __init__(self, source: Work | Callable[[], Work]) -> None:
        self.source, self.targets, self.inputs = source, None, {}

    def get(self) -> Work:
        if self.targets is None:
            self.targets, self.inputs = self.source() if callable(self.source) else self.source
        return self.targets, self.inputs


@dataclass
class Submission:
    """What every process of one submission shares: what it runs, where, under which deadlines,
    and what has come back so far."""

    cells: list[dict]
    work: DrawnWork
    run: UntrustedRun  # what came back, filled in as it arrives
    layers: Layers
    outputs: tuple[Output, Output]  # stdout, stderr: all its processes together
    wall_end: float  # time.monotonic() at which the submission's wall-clock budget ends
    device: str = "cpu"
    hide: tuple[str, ...] = ()  # more paths to leave empty inside what the jail binds
    warm: bool = False  # forked from a warm parent, where this platform allows
    cells_timeout: float = 60.0
    target_timeout: float = 10.0
    token: bytes = field(default_factory=lambda: os.urandom(wire.TOKEN_BYTES))
    skip: set[int] = field(default_factory=set)  # cells that hung or killed a process before
    language: dict = field(default_factory=dict)  # the lesson's [language] table
    reader: wire.FrameReader = field(init=False)  # frames with this token only, all attempts

    def __post_init__(self) -> None:
        self.reader = wire.FrameReader(self.token)


@dataclass
class Ended:
    """How one process of the submission ended."""

    returncode: int | None
    cpu: float  # seconds it and what it waited for used
    timed_out: bool
    limit: float  # the deadline it was under, in seconds
    step: dict  # where it said it was last
    tail: str  # how its standard error ended
    budget_hit: bool = False  # it was stopped because the submission's wall-clock budget ran out
    warm: bool = False  # it was forked from a warm parent


class _Deadline:
    """The current step's deadline, never past the submission's end."""

    def __init__(self, wall_end: float, limit: float, since: float) -> None:
        self.wall_end = wall_end
        self.set(limit, since)

    def set(self, limit: float, since: float | None = None) -> None:
        """`limit` seconds from `since` (default: now)."""
        since = time.monotonic() if since is None else since
        self.at, self.limit = min(since + limit, self.wall_end), limit


def _compiled(cells: list[dict], skip: set[int]) -> bytes:
    """The cells the process will run, compiled here for the guards (each distinct cell once in
    this process: a batch's lesson cells once per worker); none where the runner compiles them
    itself (the sandbox's unguarded tests) or where they would not fit in one frame."""
    if not GUARDED:
        return b""
    data = compiler.compiled_cells([c for c in cells if c["index"] not in skip])
    return data if len(data) <= wire.MAX_BLOB_BYTES else b""


def run_attempt(sub: Submission, limits: Limits) -> Ended:
    """One process of the submission under `limits`, from its start to its end (or its kill).
    `PlatformMissing`, before anything starts, where this platform cannot run it (Windows)."""
    require_platform()
    layers = sub.layers
    folder = None if layers.namespaces else Path(tempfile.mkdtemp(prefix="autograder-"))
    try:
        job_r, job_w = os.pipe()
        chan_r, chan_w = os.pipe()
        spawn = prepare(limits, layers, list(sub.hide), folder)
        try:
            proc = start(spawn, runner_env(str(folder or WORK)), job_r, chan_w,
                         sub.warm and supported(layers))
        finally:
            os.close(job_r)
            os.close(chan_w)
        captures = [Capture(proc.stdout, sub.outputs[0]), Capture(proc.stderr, sub.outputs[1])]
        for c in captures:
            c.start()
        first = wire.frame(sub.token, wire.JOB, {"cells": sub.cells, "skip": sorted(sub.skip),
                                                 "device": sub.device, "channel_fd": chan_w,
                                                 "language": sub.language, "guarded": GUARDED,
                                                 "compiled_by": compiler.MAGIC},
                           _compiled(sub.cells, sub.skip))
        cold = isinstance(proc, ColdProcess)
        if spawn.policy is not None and cold:  # the cold jail reads it first
            first = wire.frame(b"\0" * wire.TOKEN_BYTES, wire.POLICY, {
                "policy": spawn.policy, "channel_fd": chan_w}) + first
        sender = Sender(job_w, first)
        sender.start()
        started = time.monotonic()
        targets, inputs = sub.work.get()
        remaining = [t for t in targets if t["name"] not in sub.run.targets]
        ids = {c["id"] for t in remaining for c in t["calls"]}
        sender.then(wire.frame(sub.token, wire.WORK, {"targets": remaining}, wire.dump_tensors(
            {k: v for k, v in inputs.items() if k.split("/", 1)[0] in ids})))
        # Until its first cell, the process is starting (a cold one imports torch): the cells'
        # deadline counts from there, so that a busy machine's slow start costs no cell.
        deadline = _Deadline(sub.wall_end, settings.START_TIMEOUT, since=started)
        with os.fdopen(chan_r, "rb", buffering=0) as channel:
            step, timed_out, finished = _follow(sub, channel, deadline, remaining, limits)
        budget_hit = timed_out and deadline.at >= sub.wall_end
        if not timed_out and not finished and cold:
            proc.wait(timeout=1)  # its channel closed: a cold jail's parent hands on how it ended
        kill(proc)  # whether it finished or not: nothing of the student's outlives it
        proc.wait()
        spawn.kill_all()
        for c in captures:
            c.join(timeout=5)
        sender.then(b"")  # the sender ends, if it still waited for the work
        sender.join(timeout=5)
        return Ended(proc.returncode, proc.cpu, timed_out, deadline.limit, step,
                     captures[1].tail.decode("utf-8", "replace"), budget_hit, not cold)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _follow(sub: Submission, channel, deadline: _Deadline, remaining: list[dict],
            limits: Limits) -> tuple[dict, bool, bool]:
    """Read the process's frames until it says it is done, its channel closes or its deadline
    passes: (where it said it was last, whether it timed out, whether it finished)."""
    step: dict = {"step": "start"}
    sub.reader.restart()
    while True:
        now = time.monotonic()
        if now >= deadline.at:
            return step, True, False
        if not select.select([channel], [], [], deadline.at - now)[0]:
            continue
        chunk = channel.read(65536)
        if not chunk:
            return step, False, False
        for got in sub.reader.feed(chunk):
            meta = got.meta if isinstance(got.meta, dict) else {}
            if got.kind == wire.PROGRESS and meta.get("step") in ("cell", "target"):
                if step.get("step") == "start":
                    deadline.set(sub.cells_timeout)
                step = meta
                if meta["step"] == "target":
                    deadline.set(sub.target_timeout)
            elif got.kind == wire.CELLS:
                step = {"step": "cells-done"}
                deadline.set(sub.target_timeout)
                for key, error in meta.items():
                    if isinstance(error, dict) and str(key).lstrip("-").isdigit():
                        name_the_limit(error, limits)
                        sub.run.cell_errors[int(key)] = error
            elif got.kind == wire.RESULTS:
                name = meta.get("name")
                target = next((t for t in remaining if t["name"] == name), None)
                if target is not None and name not in sub.run.targets:
                    sub.run.targets[name] = parse_results(  # plain, validated data
                        got, {c["id"] for c in target["calls"]},
                        lambda error: name_the_limit(error, limits))
            elif got.kind == wire.DONE:
                return step, False, True
