"""The trusted side of the boundary: start the untrusted runner, watch it, read back plain data.

`run_untrusted` never imports or executes student code. It writes a job and the inputs, starts
`runner.py` in a fresh process (its own session, so that every descendant can be killed), follows
its progress, and enforces deadlines. If the process dies or hangs inside a cell, that cell is
skipped and the notebook runs again; inside a target, that target fails and the rest run again.
Results are loaded with `torch.load(weights_only=True)` and validated before anyone compares them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .limits import Limits, Spawn, choose_layers, prepare
from .warm import prestart as warm_prestart
from .warm import start as warm_start
from .warm import supported

if TYPE_CHECKING:
    import torch

RUNNER = Path(__file__).with_name("runner.py")
MAX_OUTPUT = 1 << 20  # bytes of a student's stdout/stderr kept
MAX_RESULT_BYTES = 64 << 20  # a results file larger than this is not read
MAX_TENSOR_ELEMENTS = 1 << 22


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


def _start(spawn: Spawn, folder: Path, progress_fd: int, warm: bool):
    """Start the student's process: forked from a warm parent, else a fresh `python -I`."""
    if warm:
        try:
            return warm_start(spawn, folder, _runner_env(folder), progress_fd)
        except OSError:  # no warm parent could start it: this one starts cold
            pass
    return _start_cold(spawn, folder, progress_fd)


def _start_cold(spawn: Spawn, folder: Path, progress_fd: int) -> subprocess.Popen:
    return subprocess.Popen(
        spawn.argv, cwd=folder, env=_runner_env(folder), preexec_fn=spawn.preexec_fn,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(progress_fd,), start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_events(fd: int, buffer: bytearray, timeout: float) -> list[dict] | None:
    """Events that arrived within `timeout` seconds; None once the writer is gone."""
    ready, _, _ = select.select([fd], [], [], max(timeout, 0))
    if not ready:
        return []
    chunk = os.read(fd, 65536)
    if not chunk:
        return None
    buffer += chunk
    events = []
    while (end := buffer.find(b"\n")) >= 0:
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    if len(buffer) > 65536:  # a line this long is not ours
        buffer.clear()
    return events


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


class _Folder:
    """The student's working folder, as the trusted side touches it: through a descriptor held
    from before the student ran, never following a link, never blocking on a FIFO, never
    overwriting what is there (the student's process owns the folder and may plant anything)."""

    def __init__(self, folder: Path) -> None:
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))

    def read(self, *parts: str, cap: int = MAX_RESULT_BYTES) -> bytes | None:
        """A plain file's bytes; None if it is not there; ValueError if not plain or too large."""
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        fds = []
        try:
            where = self.fd
            for part in parts[:-1]:
                where = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=where)
                fds.append(where)
            fd = os.open(parts[-1], os.O_RDONLY | nofollow | os.O_NONBLOCK, dir_fd=where)
            fds.append(fd)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ValueError("not a plain file")
            if info.st_size > cap:
                raise ValueError("larger than the limit")
            data = bytearray()
            while len(data) <= cap and (chunk := os.read(fd, 1 << 20)):
                data += chunk
            if len(data) > cap:
                raise ValueError("larger than the limit")
            return bytes(data)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a link (ELOOP), a folder, ...
            raise ValueError(f"not a plain file ({exc.strerror})") from None
        finally:
            for fd in fds:
                os.close(fd)

    def write_new(self, name: str, data: bytes) -> None:
        """Create `name`; fails (OSError) if anything is there already."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(name, flags, 0o644, dir_fd=self.fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def close(self) -> None:
        os.close(self.fd)


def _load_results(folder: _Folder, name: str, call_ids: set[str],
                  limits: Limits | None = None) -> TargetOutcome:
    """Read one target's results back as plain, validated data."""
    import io

    import torch  # here, not at the top: the student's process starts before torch loads

    try:
        meta, packed = folder.read("results", f"{name}.json"), folder.read("results", f"{name}.pt")
        if meta is None or packed is None:
            return TargetOutcome("invalid", "the results were incomplete")
        calls = json.loads(meta)
        tensors = torch.load(io.BytesIO(packed), weights_only=True, map_location="cpu")
    except ValueError as exc:
        return TargetOutcome("invalid", f"the results could not be read back: {exc}")
    except Exception as exc:  # noqa: BLE001 - anything unreadable is the student's process's doing
        return TargetOutcome("invalid", f"the results could not be read back ({type(exc).__name__})")
    if not isinstance(calls, dict) or not isinstance(tensors, dict):
        return TargetOutcome("invalid", "the results were not in the expected form")
    clean_calls = {cid: calls[cid] for cid in call_ids if isinstance(calls.get(cid), dict)}
    for meta in clean_calls.values():
        _name_the_limit(meta.get("error"), limits or Limits())
    clean_tensors = {}
    for key, value in tensors.items():
        if (isinstance(key, str) and type(value) is torch.Tensor
                and key.split("/", 1)[0] in call_ids and value.numel() <= MAX_TENSOR_ELEMENTS):
            clean_tensors[key] = value
    return TargetOutcome("ok", calls=clean_calls, tensors=clean_tensors)


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


def run_untrusted(cells: list[dict], work: Work | Callable[[], Work], *, device: str = "cpu",
                  cells_timeout: float = 60.0, target_timeout: float = 10.0,
                  limits: Limits | None = None, hide: Iterable[str | Path] = (),
                  warm: bool = False) -> UntrustedRun:
    """Run `cells` (dicts with `index` and `source`), then each target's calls, untrusted.

    `work` gives `(targets, inputs)`: targets as `{"name": ..., "calls": [Call.to_json(), ...]}`,
    inputs as the tensors the calls name. It may be a function: it is then called once the
    student's process has started, so that drawing inputs overlaps running the cells. Always
    returns: every target gets an outcome, whatever the student's code does.

    The process runs under `limits` (default: `spec`'s) in the strongest layers this platform
    offers (`limits.choose_layers`); `run.sandbox` names them. Where a mount namespace applies,
    everything but the system, Python, torch and the working directory is hidden; `hide` names
    more paths to hide there, even inside those. `warm` forks the process from a warm parent
    (`warm.py`: same isolation, torch already imported) where this platform allows.
    """
    limits = limits or Limits()
    if not device.startswith("cpu") or _gpu_here():
        limits = replace(limits, address_space=False)
    layers = choose_layers()
    run = UntrustedRun(sandbox=layers.names(limits))
    skip: set[int] = set()
    targets: list[dict] | None = None
    inputs: dict = {}
    stdout, stderr = [], []
    for _ in range(len(cells) + 64):
        with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
            folder = Path(tmp)
            read_fd, write_fd = os.pipe()
            (folder / "job.json").write_text(json.dumps({
                "cells": cells, "skip": sorted(skip), "device": device, "progress_fd": write_fd}))
            held = _Folder(folder)  # before the student's process can move or plant anything
            spawn = prepare([sys.executable, "-I", str(RUNNER), str(folder)], folder, limits,
                            layers, [str(p) for p in hide])
            proc = _start(spawn, folder, write_fd, warm and supported(layers))
            os.close(write_fd)
            captures = [_Capture(proc.stdout), _Capture(proc.stderr)]
            for c in captures:
                c.start()
            started = time.monotonic()
            if targets is None:
                targets, inputs = work() if callable(work) else work
                remaining = list(targets)
            try:
                _hand_over(held, remaining, inputs)
            except OSError:  # something planted where the inputs go: the runner waits, times out
                pass

            hard_deadline = started + cells_timeout + target_timeout * (len(remaining) + 1)
            step: dict = {"step": "start"}
            deadline, limit = started + cells_timeout, cells_timeout
            timed_out, buffer = False, bytearray()
            with os.fdopen(read_fd, "rb", buffering=0):
                while True:
                    now = time.monotonic()
                    if now >= min(deadline, hard_deadline):
                        timed_out = True
                        break
                    events = _read_events(read_fd, buffer, min(deadline, hard_deadline) - now)
                    if events is None:
                        break
                    for event in events:
                        if event.get("step") in ("cell", "target", "cells-done", "done"):
                            step = event
                        if event.get("step") in ("target", "cells-done"):
                            deadline, limit = time.monotonic() + target_timeout, target_timeout
            _kill_group(proc)  # whether it finished or not: nothing of the student's outlives it
            proc.wait()
            spawn.kill_all()
            for c in captures:
                c.join(timeout=5)
            stdout.append(captures[0].text())
            stderr.append(captures[1].text())

            try:
                errors = json.loads(held.read("results", "cells.json") or b"{}")
                for v in errors.values():
                    _name_the_limit(v, limits)
                run.cell_errors.update({int(k): v for k, v in errors.items()
                                        if isinstance(v, dict)})
            except (ValueError, TypeError, AttributeError):
                pass
            for target in remaining:  # a target's .json is written last: it marks one finished
                name = target["name"]
                try:
                    finished = held.read("results", f"{name}.json") is not None
                except ValueError:
                    finished = True  # there, but not plain or too large: judged as it is
                if finished:
                    run.targets[name] = _load_results(held, name,
                                                      {c["id"] for c in target["calls"]}, limits)
            held.close()
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
            else:  # died between steps, or lied about where it was: give up on what is left
                for target in remaining:
                    run.targets[target["name"]] = TargetOutcome(status, detail)
                remaining = []
            run.restarts += 1
    for target in remaining:
        run.targets.setdefault(target["name"], TargetOutcome("crashed", "gave up after restarts"))
    run.stdout, run.stderr = "".join(stdout), "".join(stderr)
    return run


def _hand_over(folder: _Folder, targets: list[dict], inputs: dict) -> None:
    """Give the runner its calls and inputs; `ready` appears last, atomically."""
    import io

    import torch

    ids = {c["id"] for t in targets for c in t["calls"]}
    packed = io.BytesIO()
    torch.save({k: v for k, v in inputs.items() if k.split("/", 1)[0] in ids}, packed)
    folder.write_new("inputs.pt", packed.getvalue())
    folder.write_new("targets.json", json.dumps(targets).encode())
    folder.write_new("ready.tmp", b"")
    os.replace("ready.tmp", "ready", src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
