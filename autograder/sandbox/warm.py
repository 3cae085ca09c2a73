"""Warm workers (trusted side): students' processes forked from a parent that imported torch once.

A cold start pays for a fresh Python, torch and the lesson's libraries; a child of a warm parent
pays for none of it. One process, the mother (`forkserver.py`), imports them once per grader;
each worker's warm parent (`WarmParent` here) is a fork of it, sharing its memory. Isolation is
the same: each child enters the namespaces, uid and limits that `limits.prepare` chose for it,
as a cold start would, before any student code. No parent runs student code or initialises CUDA.

`start` returns a process handle with what `attempt.run_attempt` uses of a cold one
(`process.ColdProcess`): `pid` (its own process group), `stdout`, `stderr`, `wait()`,
`returncode`, `cpu` and `kill()`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from .. import settings
from .layers import Layers, Spawn

FORKSERVER = Path(__file__).with_name("forkserver.py")


def supported(layers: Layers) -> bool:
    """Linux with fork and descriptor passing (as root or not: for an ordinary user, the mother
    makes a user namespace of its own first, `forkserver.own_namespaces`, with the grader's
    subordinate ids mapped where it has some)."""
    return (sys.platform.startswith("linux") and hasattr(socket, "send_fds")
            and hasattr(os, "fork"))


class WarmProcess:
    """A student's process, forked by a warm parent (not this process's child). It is known by a
    pidfd the parent sent: its pid is the parent's (in another pid namespace, where the grader
    is not root), so it is never signalled by pid here."""

    def __init__(self, parent: WarmParent, pid: int, pidfd: int, stdout: BinaryIO,
                 stderr: BinaryIO, group: bool = False) -> None:
        self.parent, self.pid, self.pidfd, self.group = parent, pid, pidfd, group
        self.stdout, self.stderr = stdout, stderr
        self.returncode: int | None = None
        self.cpu = 0.0  # seconds of CPU it used, as its parent's wait4 counted them

    def kill(self) -> None:
        """SIGKILL it: the first process of its pid namespace, so everything it started too; or,
        without namespaces, the group it leads."""
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass
        if self.group:  # no pid namespace: its group, by pid (the parent shares ours then)
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def wait(self) -> int:
        if self.returncode is None:
            reply = self.parent.receive()
            reply = reply if isinstance(reply, dict) else {}
            status, cpu = reply.get("status"), reply.get("cpu")
            # A parent that died or lied: the process is gone with it (it dies with its parent).
            self.returncode = os.waitstatus_to_exitcode(status) if isinstance(status, int) else -9
            self.cpu = float(cpu) if isinstance(cpu, int | float) else 0.0
            os.close(self.pidfd)
            release(self.parent)
        return self.returncode


def _receive(sock: socket.socket) -> dict | None:
    """One JSON message from a warm process; None if it has ended or sent something else."""
    try:
        data = sock.recv(1 << 16)
        return json.loads(data) if data else None
    except (OSError, ValueError):
        return None


class Mother:
    """The process that imports torch and the lesson's libraries once, then forks warm parents."""

    def __init__(self, env: dict[str, str], user: dict | None = None) -> None:
        """`user`: None (the grader is root), else the user namespace the mother makes: {} (the
        grader's uid alone) or the subordinate ids to map too (`limits.subordinate_ids`)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock, self.user = ours, user
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(FORKSERVER), str(theirs.fileno()), json.dumps(settings.PRELOAD),
             *(["user"] if user is not None else [])],
            pass_fds=(theirs.fileno(),), env=env, cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=None, start_new_session=True)
        theirs.close()
        if user is not None:  # on the socket: a command line is shown by every fork of it
            try:
                ours.send(json.dumps(user).encode())
            except OSError:  # it has ended already: the next fork_parent says so
                pass

    def fork_parent(self) -> tuple[socket.socket, int]:
        """A new warm parent: the socket it serves, and its pid. Raises OSError."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self.sock, [b"fork"], [theirs.fileno()])
            reply = _receive(self.sock)
        except OSError:
            reply = None
        finally:
            theirs.close()
        if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
            ours.close()
            raise OSError("the warm workers' first process did not start a parent")
        return ours, reply["pid"]

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_mother: Mother | None = None
_mother_lock = threading.Lock()


def _mother_for(env: dict[str, str], user: dict | None) -> Mother:
    """The mother; a new one if there is none, or it has ended (it ends with the thread that
    started it, and its warm parents with it), or it made another user namespace than `user`.
    Call with `_mother_lock` held."""
    global _mother
    if _mother is None or _mother.proc.poll() is not None or _mother.user != user:
        if _mother is not None:
            _mother.close()
        _mother = Mother({k: v for k, v in env.items() if k not in ("HOME", "TMPDIR")}, user)
    return _mother


def user_of(policy: dict | None) -> dict | None:
    """The user namespace a mother must make for `policy` (see `Mother`)."""
    if not policy or not (policy.get("nested_user") or policy.get("subordinate")):
        return None
    return policy.get("subordinate") or {}


def prestart(env: dict[str, str], layers: Layers) -> None:
    """Start the mother now, from the calling thread, which it lives as long as: while it
    imports, that thread can go on (a batch reads its first submissions)."""
    with _mother_lock:
        _mother_for(env, (layers.subordinate or {}) if layers.user_namespace else None)


def _fork_parent(env: dict[str, str], user: dict | None) -> tuple[socket.socket, int]:
    with _mother_lock:
        return _mother_for(env, user).fork_parent()


class WarmParent:
    """One warm parent, serving one student's process at a time."""

    def __init__(self, env: dict[str, str], user: dict | None = None) -> None:
        self.sock, self.pid, self.user = *_fork_parent(env, user), user

    def alive(self) -> bool:
        """Idle, a warm parent sends nothing: a readable socket means it has ended."""
        try:
            return not select.select([self.sock], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def receive(self) -> dict | None:
        return _receive(self.sock)

    def start(self, spawn: Spawn, env: dict[str, str], job_fd: int,
              channel_fd: int) -> WarmProcess:
        """Fork a child that enters `spawn`'s sandbox, then runs the runner there, its standard
        input `job_fd`, its channel `channel_fd`."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        request = {"env": env, "policy": spawn.policy, "rlimits": spawn.rlimits,
                   "uid": spawn.uid, "folder": str(spawn.folder) if spawn.folder else None}
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()],
                            [out_w, err_w, job_fd, channel_fd])
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, 1)
            reply = json.loads(data) if data else None
        except (OSError, ValueError):
            reply, fds = None, []
        if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int) or len(fds) != 1:
            for fd in (out_r, err_r, *fds):
                os.close(fd)
            self.close()
            raise OSError("the warm parent did not start a process")
        return WarmProcess(self, reply["pid"], fds[0], os.fdopen(out_r, "rb"),
                           os.fdopen(err_r, "rb"), group=spawn.policy is None)

    def close(self) -> None:
        self.sock.close()  # the parent ends when its socket closes; the mother reaps it


_idle: list[WarmParent] = []
_lock = threading.Lock()


def start(spawn: Spawn, env: dict[str, str], job_fd: int, channel_fd: int) -> WarmProcess:
    """Start a student's process from an idle warm parent (a new one if none is idle); the
    parent is busy until the process's `wait()` returns. Raises OSError if none can start it."""
    parent, user = None, user_of(spawn.policy)
    with _lock:
        while _idle and parent is None:
            parent = _idle.pop()
            if not parent.alive() or parent.user != user:  # it ends with the thread that started it
                parent.close()
                parent = None
    if parent is None:
        parent = WarmParent(env, user)
    return parent.start(spawn, env, job_fd, channel_fd)


def release(parent: WarmParent) -> None:
    if parent.alive():
        with _lock:
            _idle.append(parent)
    else:
        parent.close()
