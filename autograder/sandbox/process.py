"""Starting and ending one student's process (trusted side): cold, a fresh `python -I`, or forked
from a warm parent (`warm.py`); killed with everything it started.

A process here has what `attempt.py` uses of it: `pid` (its group), `stdout`, `stderr`,
`wait()`, `returncode`, and `cpu` (the seconds of CPU it used, once it has ended).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

from .layers import Spawn, resource_limits
from .warm import start as warm_start

#: What a student reads where a check cannot run at all: one line, then what this Python lacks.
NEEDS = "check needs Linux or macOS (on Windows, use WSL)"


class PlatformMissing(RuntimeError):
    """This platform cannot run a student's process as `check` does; the message is one line."""


def missing_here() -> list[str]:
    """What of the platform a student's process needs that this Python lacks: handing it the
    channel's pipe (`subprocess`'s `pass_fds`, POSIX only: its Windows code is chosen by this same
    test), and waiting on that pipe with a deadline (`select` on a pipe; Windows' takes sockets
    alone, which the probe finds)."""
    missing = []
    if sys.platform == "win32":
        missing.append("subprocess's pass_fds (POSIX only)")
    read, write = os.pipe()
    try:
        select.select([read], [], [], 0)
    except (OSError, ValueError):
        missing.append("select on a pipe")
    finally:
        os.close(read)
        os.close(write)
    return missing


def require_platform() -> None:
    """`PlatformMissing` (one line naming what is missing) where `missing_here` finds anything."""
    if missing := missing_here():
        raise PlatformMissing(f"{NEEDS}: this Python has no {' and no '.join(missing)}")


def runner_env(home: str) -> dict[str, str]:
    """The student's process's whole environment: a short list, nothing of the grader's."""
    keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               PYTHONBREAKPOINT="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HOME=home,
               TMPDIR=home)
    return env


def gpu_here() -> bool:
    """An NVIDIA GPU the student's process may use: CUDA reserves far more address space than
    any memory limit, so the address-space limit is left off (without importing torch here)."""
    return os.path.isdir("/proc/driver/nvidia/gpus") or os.path.exists("/dev/nvidiactl")


class ColdProcess:
    """A process started cold, in its own session (its group is killed with it)."""

    def __init__(self, spawn: Spawn, env: dict, job_fd: int, channel_fd: int) -> None:
        self.proc = subprocess.Popen(
            spawn.argv, cwd=spawn.folder or "/", env=env, preexec_fn=spawn.preexec_fn,
            stdin=job_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(channel_fd,), start_new_session=True)
        self.pid, self.stdout, self.stderr = self.proc.pid, self.proc.stdout, self.proc.stderr
        self.returncode: int | None = None
        self.cpu = 0.0

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it has ended; None if `timeout` seconds pass first. Its CPU time
        is counted where the platform reports it (`os.wait4`, which needs `resource`)."""
        if not (hasattr(os, "wait4") and resource_limits()):
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            return self.returncode
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


def start(spawn: Spawn, env: dict, job_fd: int, channel_fd: int, warm: bool):
    """Start the student's process: forked from a warm parent, else a fresh `python -I`. Its
    standard input is `job_fd`; it writes its frames on `channel_fd`."""
    if warm:
        try:
            return warm_start(spawn, env, job_fd, channel_fd)
        except OSError:  # no warm parent could start it: this one starts cold
            pass
    return ColdProcess(spawn, env, job_fd, channel_fd)


def kill(proc) -> None:
    """SIGKILL the process and what it started: a cold one's group (its first process's pid
    namespace goes with it), a warm one through its pidfd (`WarmProcess.kill`)."""
    if not isinstance(proc, ColdProcess):
        proc.kill()
    elif hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:  # no process groups here (Windows): the process itself
        proc.proc.kill()
