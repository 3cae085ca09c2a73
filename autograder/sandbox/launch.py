"""The trusted side of the boundary: start the graded process, watch it, read back plain data.

`run_untrusted` never imports or executes student code. It starts `untrusted/runner.py` in a
fresh process (its own session, so that every descendant can be killed), sends it the job and
the work on its standard input, follows its progress on a channel of its own, and enforces
deadlines. If the process dies or hangs inside a cell, that cell is skipped and the program runs
again; inside a target, that target fails and the rest run again. What comes back is read by
`wire.FrameReader` (frames with this run's token only, every length checked against its caps)
and validated before anyone compares it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import wire
from .limits import Limits, Spawn, choose_layers, prepare
from .warm import prestart as warm_prestart
from .warm import start as warm_start
from .warm import supported

if TYPE_CHECKING:
    import torch

RUNNER = Path(__file__).resolve().parents[1] / "untrusted" / "runner.py"
MAX_OUTPUT = 1 << 20  # bytes of a student's stdout/stderr kept


@dataclass
class TargetOutcome:
    """What came back for one target: per call, the runner's account and the tensors."""

    status: str  # "ok", or why nothing usable came back: "timeout", "crashed", "memory", "invalid"
    detail: str = ""
    calls: dict[str, dict] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class UntrustedRun:
    cell_errors: dict[int, dict] = field(default_factory=dict)
    targets: dict[str, TargetOutcome] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    restarts: int = 0
    sandbox: list[str] = field(default_factory=list)  # the isolation layers that applied
    stray: int = 0  # bytes on the channel that were not frames of this run


class _Capture(threading.Thread):
    """Drains a pipe so that a flood never blocks the student, keeping the first MAX_OUTPUT bytes."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream, self.kept, self.dropped, self.tail = stream, bytearray(), 0, b""

    def run(self) -> None:
        while chunk := self.stream.read1(65536):
            room = MAX_OUTPUT - len(self.kept)
            self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - room)
            self.tail = (self.tail + chunk)[-4096:]  # how it ended, even after a flood

    def text(self) -> str:
        note = f"\n[... {self.dropped} more bytes not kept]" if self.dropped else ""
        return self.kept.decode("utf-8", "replace") + note


def _runner_env(folder: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HOME=str(folder), TMPDIR=str(folder))
    return env


def start_warm_workers() -> None:
    """Where warm workers apply, start their first process now, from the calling thread (it
    lives as long as that thread): it imports torch while the caller prepares the batch."""
    if supported(choose_layers()):
        warm_prestart(_runner_env(Path(tempfile.gettempdir())))


def _gpu_here() -> bool:
    """An NVIDIA GPU the student's process may use: CUDA reserves far more address space than
    any memory limit, so the address-space limit is left off (without importing torch here)."""
    return os.path.isdir("/proc/driver/nvidia/gpus") or os.path.exists("/dev/nvidiactl")


def _start(spawn: Spawn, folder: Path, job_fd: int, channel_fd: int, warm: bool):
    """Start the student's process: forked from a warm parent, else a fresh `python -I`. Its
    standard input is `job_fd`; it writes its frames on `channel_fd`."""
    if warm:
        try:
            return warm_start(spawn, folder, _runner_env(folder), job_fd, channel_fd)
        except OSError:  # no warm parent could start it: this one starts cold
            pass
    return _start_cold(spawn, folder, job_fd, channel_fd)


def _start_cold(spawn: Spawn, folder: Path, job_fd: int, channel_fd: int) -> subprocess.Popen:
    return subprocess.Popen(
        spawn.argv, cwd=folder, env=_runner_env(folder), preexec_fn=spawn.preexec_fn,
        stdin=job_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(channel_fd,), start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
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
    """An error that is the memory limit says so, with the limit (the runner cannot know it)."""
    if _ran_out_of_memory(error):
        error["type"] = "MemoryError"
        error["limit"] = f"the memory limit is {limits.memory_text()}"
    elif isinstance(error, dict) and "File too large" in str(error.get("message")):
        error["limit"] = f"the file size limit is {limits.file_size >> 20} MiB"


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


class _Sender(threading.Thread):
    """Writes the job, then (once drawn) the work, on the student's standard input: a frame
    larger than the pipe holds never blocks the grader."""

    def __init__(self, fd: int, job: bytes) -> None:
        super().__init__(daemon=True)
        self.fd, self.frames = fd, [job]
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


def _outcome(result: wire.Frame, call_ids: set[str], limits: Limits) -> TargetOutcome:
    """One target's results as plain, validated data."""
    calls = result.meta.get("calls") if isinstance(result.meta, dict) else None
    if not isinstance(calls, dict):
        return TargetOutcome("invalid", "the results were not in the expected form")
    try:
        tensors = wire.load_tensors(result.blob)
    except wire.WireError as exc:
        return TargetOutcome("invalid", f"the results could not be read back: {exc}")
    clean_calls = {cid: calls[cid] for cid in call_ids if isinstance(calls.get(cid), dict)}
    for meta in clean_calls.values():
        _name_the_limit(meta.get("error"), limits)
    clean = {k: v for k, v in tensors.items() if k.split("/", 1)[0] in call_ids}
    return TargetOutcome("ok", calls=clean_calls, tensors=clean)


def run_untrusted(cells: list[dict], work: Work | Callable[[], Work], *, device: str = "cpu",
                  cells_timeout: float = 60.0, target_timeout: float = 10.0,
                  limits: Limits | None = None, hide: Iterable[str | Path] = (),
                  warm: bool = False) -> UntrustedRun:
    """Run `cells` (dicts with `index`, `source` and `name`), then each target's calls, untrusted.

    `work` gives `(targets, inputs)`: targets as `{"name": ..., "calls": [Call.to_json(), ...]}`,
    inputs as the tensors the calls name. It may be a function: it is then called once the
    student's process has started, so that drawing inputs overlaps running the cells. Always
    returns: every target gets an outcome, whatever the student's code does.

    The process runs under `limits` (default: `spec`'s) in the strongest layers this platform
    offers (`limits.choose_layers`); `run.sandbox` names them. Where a mount namespace applies,
    everything but the system, Python, torch and the working directory is hidden; `hide` names
    more paths to hide there, even inside those. `warm` forks the process from a warm parent
    (`warm.py`: same isolation, torch already imported) where this platform allows. What comes
    back is read from the channel by `wire.FrameReader`: only frames with this run's token.
    """
    limits = limits or Limits()
    if not device.startswith("cpu") or _gpu_here():
        limits = replace(limits, address_space=False)
    layers = choose_layers()
    run = UntrustedRun(sandbox=layers.names(limits))
    token = os.urandom(wire.TOKEN_BYTES)
    reader = wire.FrameReader(token)
    skip: set[int] = set()
    targets: list[dict] | None = None
    inputs: dict = {}
    stdout, stderr = [], []
    for _ in range(len(cells) + 64):
        with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
            folder = Path(tmp)
            job_r, job_w = os.pipe()
            chan_r, chan_w = os.pipe()
            spawn = prepare([sys.executable, "-I", str(RUNNER)], folder, limits, layers,
                            [str(p) for p in hide])
            try:
                proc = _start(spawn, folder, job_r, chan_w, warm and supported(layers))
            finally:
                os.close(job_r)
                os.close(chan_w)
            captures = [_Capture(proc.stdout), _Capture(proc.stderr)]
            for c in captures:
                c.start()
            sender = _Sender(job_w, wire.frame(token, wire.JOB, {
                "cells": cells, "skip": sorted(skip), "device": device, "channel_fd": chan_w}))
            sender.start()
            started = time.monotonic()
            if targets is None:
                targets, inputs = work() if callable(work) else work
                remaining = list(targets)
            ids = {c["id"] for t in remaining for c in t["calls"]}
            sender.then(wire.frame(token, wire.WORK, {"targets": remaining}, wire.dump_tensors(
                {k: v for k, v in inputs.items() if k.split("/", 1)[0] in ids})))

            hard_deadline = started + cells_timeout + target_timeout * (len(remaining) + 1)
            step: dict = {"step": "start"}
            deadline, limit = started + cells_timeout, cells_timeout
            timed_out, finished = False, False
            reader.restart()
            with os.fdopen(chan_r, "rb", buffering=0) as channel:
                while not finished:
                    now = time.monotonic()
                    if now >= min(deadline, hard_deadline):
                        timed_out = True
                        break
                    ready, _, _ = select.select([channel], [], [], min(deadline, hard_deadline) - now)
                    if not ready:
                        continue
                    chunk = channel.read(65536)
                    if not chunk:
                        break
                    for got in reader.feed(chunk):
                        meta = got.meta if isinstance(got.meta, dict) else {}
                        if got.kind == wire.PROGRESS and meta.get("step") in ("cell", "target"):
                            step = meta
                            if meta["step"] == "target":
                                deadline, limit = time.monotonic() + target_timeout, target_timeout
                        elif got.kind == wire.CELLS:
                            step = {"step": "cells-done"}
                            deadline, limit = time.monotonic() + target_timeout, target_timeout
                            for key, error in meta.items():
                                if isinstance(error, dict) and str(key).lstrip("-").isdigit():
                                    _name_the_limit(error, limits)
                                    run.cell_errors[int(key)] = error
                        elif got.kind == wire.RESULTS:
                            name = meta.get("name")
                            target = next((t for t in remaining if t["name"] == name), None)
                            if target is not None and name not in run.targets:
                                run.targets[name] = _outcome(
                                    got, {c["id"] for c in target["calls"]}, limits)
                        elif got.kind == wire.DONE:
                            finished = True
            _kill_group(proc)  # whether it finished or not: nothing of the student's outlives it
            proc.wait()
            spawn.kill_all()
            for c in captures:
                c.join(timeout=5)
            sender.then(b"")  # the sender ends, if it still waited for the work
            sender.join(timeout=5)
            stdout.append(captures[0].text())
            stderr.append(captures[1].text())
            remaining = [t for t in remaining if t["name"] not in run.targets]
            if not remaining:
                break

            status, detail = _why_it_ended(proc.returncode, timed_out, limit, limits,
                                           captures[1].tail.decode("utf-8", "replace"))
            if step.get("step") == "cell" and step.get("index") in {c["index"] for c in cells} - skip:
                skip.add(step["index"])
                run.cell_errors[step["index"]] = {"type": status, "message": detail, "where": None}
            elif step.get("step") == "target" and step.get("name") in {t["name"] for t in remaining}:
                run.targets[step["name"]] = TargetOutcome(status, detail)
                remaining = [t for t in remaining if t["name"] != step["name"]]
            else:  # died between steps: give up on what is left
                for target in remaining:
                    run.targets[target["name"]] = TargetOutcome(status, detail)
                remaining = []
            run.restarts += 1
    for target in remaining:
        run.targets.setdefault(target["name"], TargetOutcome("crashed", "gave up after restarts"))
    run.stdout, run.stderr = "".join(stdout), "".join(stderr)
    run.stray = reader.stray
    return run
