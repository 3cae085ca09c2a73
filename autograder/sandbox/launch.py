"""The trusted side of the boundary: start the graded process, watch it, read back plain data.

`run_untrusted` never imports or executes student code. It starts the graded process in the
sandbox (`limits.prepare`: cold, or forked from a warm parent), sends it the job and the work on
its standard input, follows its progress on a channel of its own, and enforces the budgets of
the submission. If the process dies or hangs inside a cell, that cell is skipped and the program
runs again; inside a target, that target fails and the rest run again; at most
`spec.MAX_RESTARTS` times, within one wall-clock and one CPU budget for all of it
(`spec.SUBMISSION_TIMEOUT`, `spec.SUBMISSION_CPU`), keeping at most `spec.MAX_OUTPUT` bytes of
each stream of what it printed. What comes back is read by `wire.FrameReader` (frames with this
run's token only, every length checked against its caps) and validated before anyone compares it.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import spec, wire
from ..outcome import TargetOutcome, UntrustedRun, parse_results
from .limits import Layers, Limits, Spawn, choose_layers, prepare
from .policy import WORK
from .warm import prestart as warm_prestart
from .warm import start as warm_start
from .warm import supported


@dataclass
class Budget:
    """What one submission may use, all its processes together."""

    wall: float = field(default_factory=lambda: spec.SUBMISSION_TIMEOUT)  # seconds, from the start
    cpu: float = field(default_factory=lambda: spec.SUBMISSION_CPU)  # seconds
    restarts: int = field(default_factory=lambda: spec.MAX_RESTARTS)
    output: int = field(default_factory=lambda: spec.MAX_OUTPUT)  # bytes kept, per stream


class _Output:
    """One stream of what the student's processes print, all of them together: the first
    `budget` bytes are kept, the rest counted."""

    def __init__(self, budget: int) -> None:
        self.kept, self.dropped, self.left = bytearray(), 0, budget
        self.lock = threading.Lock()

    def take(self, chunk: bytes) -> None:
        with self.lock:
            room = min(self.left, len(chunk))
            self.kept += chunk[:room]
            self.left -= room
            self.dropped += len(chunk) - room

    def text(self) -> str:
        note = f"\n[... {self.dropped} more bytes not kept]" if self.dropped else ""
        return self.kept.decode("utf-8", "replace") + note


class _Capture(threading.Thread):
    """Drains a pipe so that a flood never blocks the student, into a shared `_Output`."""

    def __init__(self, stream, output: _Output) -> None:
        super().__init__(daemon=True)
        self.stream, self.output, self.tail = stream, output, b""

    def run(self) -> None:
        while chunk := self.stream.read1(65536):
            self.output.take(chunk)
            self.tail = (self.tail + chunk)[-4096:]  # how it ended, even after a flood


def _runner_env(home: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               PYTHONBREAKPOINT="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HOME=home,
               TMPDIR=home)
    return env


def start_warm_workers() -> None:
    """Where warm workers apply, start their first process now, from the calling thread (it
    lives as long as that thread): it imports torch while the caller prepares the batch."""
    layers = choose_layers()
    if supported(layers):
        warm_prestart(_runner_env(WORK), layers)


def _gpu_here() -> bool:
    """An NVIDIA GPU the student's process may use: CUDA reserves far more address space than
    any memory limit, so the address-space limit is left off (without importing torch here)."""
    return os.path.isdir("/proc/driver/nvidia/gpus") or os.path.exists("/dev/nvidiactl")


class _Sender(threading.Thread):
    """Writes the first frames, then (once drawn) the work, on the student's standard input: a
    frame larger than the pipe holds never blocks the grader."""

    def __init__(self, fd: int, first: bytes) -> None:
        super().__init__(daemon=True)
        self.fd, self.frames = fd, [first]
        self.ready = threading.Event()

    def then(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.ready.set()

    def run(self) -> None:
        try:
            self._write(self.frames[0])
            self.ready.wait()
            self._write(self.frames[1])
        except OSError:  # the process ended first
            pass
        finally:
            os.close(self.fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


class _Cold:
    """A cold process, with what `run_untrusted` uses of it: pid (its group), streams, wait()."""

    def __init__(self, spawn: Spawn, env: dict, job_fd: int, channel_fd: int) -> None:
        self.proc = subprocess.Popen(
            spawn.argv, cwd=spawn.folder or "/", env=env, preexec_fn=spawn.preexec_fn,
            stdin=job_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(channel_fd,), start_new_session=True)
        self.pid, self.stdout, self.stderr = self.proc.pid, self.proc.stdout, self.proc.stderr
        self.returncode: int | None = None
        self.cpu = 0.0

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it has ended; None if `timeout` seconds pass first."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            pid, status, usage = os.wait4(self.pid, 0 if end is None else os.WNOHANG)
            if pid:
                self.proc.returncode = self.returncode = os.waitstatus_to_exitcode(status)
                self.cpu = usage.ru_utime + usage.ru_stime
            elif time.monotonic() >= end:
                return None
            else:
                time.sleep(0.01)
        return self.returncode


def _start(spawn: Spawn, env: dict, job_fd: int, channel_fd: int, warm: bool):
    """Start the student's process: forked from a warm parent, else a fresh `python -I`. Its
    standard input is `job_fd`; it writes its frames on `channel_fd`."""
    if warm:
        try:
            return warm_start(spawn, env, job_fd, channel_fd)
        except OSError:  # no warm parent could start it: this one starts cold
            pass
    return _Cold(spawn, env, job_fd, channel_fd)


def _kill_group(proc) -> None:
    """SIGKILL the process and what it started: a cold one's group (its first process's pid
    namespace goes with it), a warm one through its pidfd (`WarmProcess.kill`)."""
    if hasattr(proc, "kill"):
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_MEMORY_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "can't allocate memory",
                 "out of memory")


def _ran_out_of_memory(error: object) -> bool:
    if not isinstance(error, dict):
        return False
    text = f"{error.get('type')}: {error.get('message')}"
    return any(sign in text for sign in _MEMORY_SIGNS)


def _name_the_limit(error: object, limits: Limits) -> None:
    """An error that is a limit says so, with the limit (the runner cannot know it)."""
    if _ran_out_of_memory(error):
        error["type"] = "MemoryError"
        error["limit"] = f"the memory limit is {limits.memory_text()}"
    elif isinstance(error, dict) and "File too large" in str(error.get("message")):
        error["limit"] = f"the file size limit is {limits.file_size >> 20} MiB"
    elif isinstance(error, dict) and "No space left on device" in str(error.get("message")):
        error["limit"] = (f"its folder holds {limits.work_bytes >> 20} MiB and "
                          f"{limits.work_files} files")


def _why_it_ended(returncode: int | None, timed_out: bool, limit: float, limits: Limits,
                  stderr_tail: str = "") -> tuple[str, str]:
    """Timeout, memory or crashed, with the limit that was hit where one was."""
    if timed_out:
        return "timeout", f"still running after {limit:g} s (the time limit)"
    if any(sign in stderr_tail for sign in _MEMORY_SIGNS):
        return "memory", f"the process ran out of memory (the memory limit is {limits.memory_text()})"
    if returncode is not None and returncode < 0:
        number = -returncode
        sig = signal.Signals(number).name if number in signal.valid_signals() else number
        if number == getattr(signal, "SIGXCPU", None):
            return "crashed", (f"the process was killed by {sig}: it used more than "
                               f"{limits.cpu_seconds} s of CPU (the CPU time limit)")
        return "crashed", f"the process was killed by {sig}"
    if returncode is not None and returncode >= 128 and returncode - 128 in signal.valid_signals():
        return _why_it_ended(128 - returncode, False, limit, limits)  # a signal, told by a wrapper
    return "crashed", f"the process exited with code {returncode}"


Work = tuple[list[dict], dict]  # the targets' calls (JSON-able) and the tensors they name


class _Work:
    """The work, drawn once, when the first process has started (drawing overlaps its start)."""

    def __init__(self, source: Work | Callable[[], Work]) -> None:
        self.source, self.targets, self.inputs = source, None, {}

    def get(self) -> tuple[list[dict], dict]:
        if self.targets is None:
            self.targets, self.inputs = self.source() if callable(self.source) else self.source
        return self.targets, self.inputs


@dataclass
class _Ended:
    """How one process of the submission ended."""

    returncode: int | None
    cpu: float  # seconds it and what it waited for used
    timed_out: bool
    limit: float  # the deadline it was under, in seconds
    step: dict  # where it said it was last
    tail: str  # how its standard error ended
    budget_hit: bool = False  # it was stopped because the submission's wall-clock budget ran out
    warm: bool = False  # it was forked from a warm parent


def _attempt(cells: list[dict], skip: set[int], device: str, limits: Limits, layers: Layers,
             hide: Iterable[str | Path], warm: bool, token: bytes, reader: wire.FrameReader,
             outputs: tuple, run: UntrustedRun, work: _Work, wall_end: float,
             cells_timeout: float, target_timeout: float) -> _Ended:
    """One process of the submission, from its start to its end (or its kill)."""
    folder = None if layers.namespaces else Path(tempfile.mkdtemp(prefix="autograder-"))
    try:
        job_r, job_w = os.pipe()
        chan_r, chan_w = os.pipe()
        spawn = prepare(limits, layers, [str(p) for p in hide], folder)
        warm = warm and supported(layers)
        try:
            proc = _start(spawn, _runner_env(str(folder or WORK)), job_r, chan_w, warm)
        finally:
            os.close(job_r)
            os.close(chan_w)
        captures = [_Capture(proc.stdout, outputs[0]), _Capture(proc.stderr, outputs[1])]
        for c in captures:
            c.start()
        first = wire.frame(token, wire.JOB, {"cells": cells, "skip": sorted(skip),
                                             "device": device, "channel_fd": chan_w})
        if spawn.policy is not None and isinstance(proc, _Cold):  # the cold jail reads it first
            first = wire.frame(b"\0" * wire.TOKEN_BYTES, wire.POLICY, {
                "policy": spawn.policy, "channel_fd": chan_w}) + first
        sender = _Sender(job_w, first)
        sender.start()
        started = time.monotonic()
        targets, inputs = work.get()
        remaining = [t for t in targets if t["name"] not in run.targets]
        ids = {c["id"] for t in remaining for c in t["calls"]}
        sender.then(wire.frame(token, wire.WORK, {"targets": remaining}, wire.dump_tensors(
            {k: v for k, v in inputs.items() if k.split("/", 1)[0] in ids})))
        step: dict = {"step": "start"}
        # Until its first cell, the process is starting (a cold one imports torch): the cells'
        # deadline counts from there, so that a busy machine's slow start costs no cell.
        deadline, limit = min(started + spec.START_TIMEOUT, wall_end), spec.START_TIMEOUT
        timed_out, finished = False, False
        reader.restart()
        with os.fdopen(chan_r, "rb", buffering=0) as channel:
            while not finished:
                now = time.monotonic()
                if now >= deadline:
                    timed_out = True
                    break
                if not select.select([channel], [], [], deadline - now)[0]:
                    continue
                chunk = channel.read(65536)
                if not chunk:
                    break
                for got in reader.feed(chunk):
                    meta = got.meta if isinstance(got.meta, dict) else {}
                    if got.kind == wire.PROGRESS and meta.get("step") in ("cell", "target"):
                        if step.get("step") == "start":
                            deadline = min(time.monotonic() + cells_timeout, wall_end)
                            limit = cells_timeout
                        step = meta
                        if meta["step"] == "target":
                            deadline = min(time.monotonic() + target_timeout, wall_end)
                            limit = target_timeout
                    elif got.kind == wire.CELLS:
                        step = {"step": "cells-done"}
                        deadline, limit = min(time.monotonic() + target_timeout, wall_end), \
                            target_timeout
                        for key, error in meta.items():
                            if isinstance(error, dict) and str(key).lstrip("-").isdigit():
                                _name_the_limit(error, limits)
                                run.cell_errors[int(key)] = error
                    elif got.kind == wire.RESULTS:
                        name = meta.get("name")
                        target = next((t for t in remaining if t["name"] == name), None)
                        if target is not None and name not in run.targets:
                            run.targets[name] = parse_results(
                                got, {c["id"] for c in target["calls"]},
                                lambda error: _name_the_limit(error, limits))
                    elif got.kind == wire.DONE:
                        finished = True
        budget_hit = timed_out and deadline >= wall_end
        if not timed_out and not finished and isinstance(proc, _Cold):
            proc.wait(timeout=1)  # its channel closed: a cold jail's parent hands on how it ended
        _kill_group(proc)  # whether it finished or not: nothing of the student's outlives it
        proc.wait()
        spawn.kill_all()
        for c in captures:
            c.join(timeout=5)
        sender.then(b"")  # the sender ends, if it still waited for the work
        sender.join(timeout=5)
        return _Ended(proc.returncode, proc.cpu, timed_out, limit, step,
                      captures[1].tail.decode("utf-8", "replace"), budget_hit,
                      not isinstance(proc, _Cold))
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def run_untrusted(cells: list[dict], work: Work | Callable[[], Work], *, device: str = "cpu",
                  cells_timeout: float = 60.0, target_timeout: float = 10.0,
                  limits: Limits | None = None, hide: Iterable[str | Path] = (),
                  warm: bool = False, budget: Budget | None = None) -> UntrustedRun:
    """Run `cells` (dicts with `index`, `source` and `name`), then each target's calls, untrusted.

    `work` gives `(targets, inputs)`: targets as `{"name": ..., "calls": [Call.to_json(), ...]}`,
    inputs as the tensors the calls name. It may be a function: it is then called once the
    student's process has started, so that drawing inputs overlaps running the cells. Always
    returns: every target gets an outcome, whatever the student's code does, within `budget`.

    The process runs under `limits` (default: `spec`'s) in the strongest layers this platform
    offers (`limits.choose_layers`); `run.sandbox` names them. `hide` names more paths to leave
    empty inside what the jail binds. `warm` forks the process from a warm parent (`warm.py`:
    the same jail, torch already imported) where this platform allows.
    """
    limits, budget = limits or Limits(), budget or Budget()
    if not device.startswith("cpu") or _gpu_here():
        limits = replace(limits, address_space=False)
    layers = choose_layers()
    run = UntrustedRun(sandbox=layers.names(limits))
    token = os.urandom(wire.TOKEN_BYTES)
    reader, outputs = wire.FrameReader(token), (_Output(budget.output), _Output(budget.output))
    drawn, skip = _Work(work), set()
    began, cpu_used = time.monotonic(), 0.0
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
        ended = _attempt(cells, skip, device, tried, layers, hide, warm, token, reader, outputs,
                         run, drawn, began + budget.wall, cells_timeout, target_timeout)
        cpu_used += ended.cpu
        start = ("warm start (forked from a process that imported torch once)" if ended.warm
                 else "cold start")
        if start not in run.sandbox:
            run.sandbox.append(start)
        remaining = [t for t in drawn.targets if t["name"] not in run.targets]
        if not remaining:
            break
        status, detail = _why_it_ended(ended.returncode, ended.timed_out, ended.limit, tried,
                                       ended.tail)
        if ended.budget_hit:
            detail = (f"still running when the submission had used its {budget.wall:g} s of "
                      "wall-clock time (the budget of a submission)")
        step = ended.step
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
    run.stdout, run.stderr = outputs[0].text(), outputs[1].text()
    run.stray = reader.stray
    return run
