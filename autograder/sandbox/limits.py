"""What a student's process may use and see, applied by the trusted side around its start.

Layers, strongest first, each used where the platform offers it (`choose_layers` tries them
once per grader process and keeps the first that works):

- namespaces (Linux, `unshare`): a pid namespace, so that every descendant dies with the
  student's process, setsid() or not; no network; a mount namespace where everything but the
  Python install, torch and the working directory is hidden (`jail.py`);
- an unprivileged uid, unique to the run, when the grader runs as root (so the working
  directory is the only place it can write, and every process of that uid is killed after it);
- resource limits (`apply_limits`): address space, CPU time, file size, processes;
- always: its own session (killed as a group), a scrubbed environment, a fresh temp working dir.

`apply_limits` and `drop_privileges` are plain functions that run in the child, so a grader
that forks students' processes from a warm parent can call them after `fork()` too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import site
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import spec
from . import jail  # sets rlimits; imports `resource` before any fork()

JAIL = Path(__file__).with_name("jail.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the runner, the wire: all it needs of ours
_SYSTEM = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/dev", "/proc",
           "/sys"}
_FRESH = ["/dev/shm"]  # an empty tmpfs in place of the host's


@dataclass(frozen=True)
class Limits:
    """Per student process; the defaults live in `autograder/spec.py`."""

    memory: int = spec.MEMORY_LIMIT  # bytes of address space
    cpu_seconds: int = spec.CPU_TIME_LIMIT
    file_size: int = spec.FILE_SIZE_LIMIT  # bytes, per file written
    processes: int = spec.PROCESS_LIMIT  # processes and threads, where a uid of its own counts them
    address_space: bool = True  # False on a GPU: CUDA maps far more address space than it uses

    def memory_text(self) -> str:
        return f"{self.memory / (1 << 30):.3g} GiB" if self.memory >= 1 << 30 else \
            f"{self.memory / (1 << 20):.3g} MiB"

    def describe(self, processes: bool) -> str:
        memory = f"{self.memory_text()} memory" if self.address_space else "memory unlimited (CUDA)"
        text = f"limits: {memory}, {self.cpu_seconds} s CPU, {self.file_size >> 20} MiB files"
        return text + (f", {self.processes} processes" if processes else "")


def rlimits(limits: Limits, *, processes: bool = False) -> dict[str, tuple[int, int]]:
    """The resource limits of a student's process, by `resource` name: (soft, hard)."""
    found = {"RLIMIT_FSIZE": (limits.file_size, limits.file_size), "RLIMIT_CORE": (0, 0),
             # SIGXCPU at the soft limit, SIGKILL a little later if it is ignored
             "RLIMIT_CPU": (limits.cpu_seconds, limits.cpu_seconds + 2)}
    if limits.address_space:
        found["RLIMIT_AS"] = (limits.memory, limits.memory)
        if sys.platform == "darwin":
            found["RLIMIT_DATA"] = (limits.memory, limits.memory)
    if processes:
        found["RLIMIT_NPROC"] = (limits.processes, limits.processes)
    return found


def apply_limits(limits: Limits, *, processes: bool = False) -> None:
    """Set the resource limits of the calling process (a child about to run student code)."""
    jail.set_rlimits(rlimits(limits, processes=processes))


def drop_privileges(uid: int) -> None:
    """Become `uid` (group `uid`, no supplementary groups): for a root parent's child."""
    os.setgroups([])
    os.setresgid(uid, uid, uid) if hasattr(os, "setresgid") else os.setgid(uid)
    os.setresuid(uid, uid, uid) if hasattr(os, "setresuid") else os.setuid(uid)


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid`: a process of that uid signals all it may, i.e. its own."""
    kill = shutil.which("kill", path="/usr/bin:/bin")
    if kill is None:
        return
    try:
        subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[], env={},
                       cwd="/", timeout=30, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        pass


def needed_paths() -> set[str]:
    """What the student's `python -I runner.py` reads: the interpreter, its packages, the runner."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), str(PACKAGE_DIR)}
    found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    return {os.path.realpath(p) for p in found if p and os.path.exists(p)}


def hidden_paths(needed: Iterable[str]) -> list[str]:
    """Everything on the file system but the system's directories and the `needed` ones.

    A directory that holds something needed is not hidden itself: its other entries are.
    """
    needed = set(needed)
    hidden: list[str] = []

    def walk(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return  # cannot list it: cannot hide its entries one by one either
        for entry in entries:
            path = entry.path if folder != "/" else "/" + entry.name
            if path in _SYSTEM or path in needed or entry.is_symlink():
                continue
            if any(n.startswith(path + "/") for n in needed) and _open_to_all(entry):
                walk(path)
                continue
            hidden.append(path)  # a private home with Python inside: the jail puts Python back

    walk("/")
    return hidden


def _open_to_all(entry: os.DirEntry) -> bool:
    """A directory that anyone may enter (an unprivileged uid must reach what is inside)."""
    try:
        return entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mode & 0o001
    except OSError:
        return False


@dataclass
class Layers:
    """The layers chosen for this platform, and how to start a process inside them."""

    namespaces: bool = False
    user_namespace: bool = False  # namespaces made without root, in a user namespace of their own
    own_uid: bool = False  # run as an unprivileged uid of its own (the grader is root)
    hidden: list[str] = field(default_factory=list)
    needed: set[str] = field(default_factory=set)

    def names(self, limits: Limits) -> list[str]:
        """One short line per layer that applies, for the report."""
        lines = []
        if self.namespaces:
            kind = "user, pid, network, mount" if self.user_namespace else "pid, network, mount"
            lines.append(f"namespaces ({kind}: no network, only Python and its folder visible)")
        if self.own_uid:
            lines.append("own uid")
        lines.append(limits.describe(processes=self.own_uid))
        lines.append("own session, scrubbed environment, temp folder")
        return lines


@dataclass
class Spawn:
    """The command to start, the function to run in the child first, and the cleanup after."""

    argv: list[str]
    preexec_fn: Callable[[], None]
    uid: int | None
    jail: dict | None = None  # what jail.enter does, where namespaces apply
    rlimits: dict = field(default_factory=dict)

    def kill_all(self) -> None:
        """After the process ended or was killed: whatever it left behind goes too. In a pid
        namespace the kernel has done it already (its first process ends only once every other
        has), so only a uid without one needs killing."""
        if self.uid is not None and self.jail is None:
            kill_uid(self.uid)


def prepare(argv: list[str], workdir: Path, limits: Limits, layers: Layers,
            extra_hidden: Iterable[str] = ()) -> Spawn:
    """Wrap `argv` (to run in `workdir`) in `layers`, under `limits`."""
    uid = random.SystemRandom().randrange(1 << 20, 1 << 30) if layers.own_uid else None
    if uid is not None:
        os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)

    def preexec() -> None:
        apply_limits(limits, processes=uid is not None)
        if uid is not None and not layers.namespaces:
            drop_privileges(uid)

    limited = rlimits(limits, processes=uid is not None)
    if not layers.namespaces:
        return Spawn(list(argv), preexec, uid, None, limited)
    config = jail_config(argv, workdir, layers, uid, extra_hidden)
    flags = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--mount",
             "--propagation", "private"]
    if layers.user_namespace:
        flags = ["--user", "--map-root-user", *flags]
    wrapped = [shutil.which("unshare") or "unshare", *flags, "--", sys.executable, "-I", str(JAIL),
               json.dumps(config)]
    return Spawn(wrapped, preexec, uid, config, limited)


def jail_config(argv: list[str], workdir: Path, layers: Layers, uid: int | None,
                extra_hidden: Iterable[str] = ()) -> dict:
    """What `jail.enter` does in a student's mount namespace: hide, keep, make fresh, become uid."""
    # Listed again for each process: a course directory made since then is hidden too.
    hidden = sorted(set(hidden_paths(layers.needed)) | {os.path.realpath(p) for p in extra_hidden
                                                        if os.path.lexists(p)})
    hidden = [p for p in hidden if not any(p.startswith(h + "/") for h in hidden)]
    keep = sorted(set(layers.needed) | {str(workdir)})
    keep = [p for p in keep if not any(p.startswith(k + "/") for k in keep)]
    hidden = [p for p in hidden if p not in keep]  # e.g. the working directory, when the
    # grader itself lies under /tmp and so /tmp is listed entry by entry
    return {"workdir": str(workdir), "hide": hidden, "keep": keep, "fresh": _FRESH,
            "uid": uid, "command": list(argv)}


_chosen: Layers | None = None
_lock = threading.Lock()


def choose_layers() -> Layers:
    """The strongest layers that work here, found once per grader process (about 0.1 s)."""
    global _chosen
    with _lock:
        if _chosen is None:
            _chosen = _try_layers()
        return _chosen


def _candidates() -> list[Layers]:
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    out = []
    if sys.platform.startswith("linux") and shutil.which("unshare") and \
            os.environ.get("AUTOGRADER_NO_NAMESPACES") != "1":
        needed = needed_paths()
        hidden = hidden_paths(needed)
        if root:
            out.append(Layers(namespaces=True, own_uid=True, hidden=hidden, needed=needed))
        out.append(Layers(namespaces=True, user_namespace=not root, hidden=hidden, needed=needed))
    if root:
        out.append(Layers(own_uid=True))
    return out


def _try_layers() -> Layers:
    probe = [sys.executable, "-I", "-c",
             "import importlib.util as u, os; open(u.find_spec('torch').origin).close(); "
             "os.listdir('.'); open('probe', 'w').close()"]
    for layers in _candidates():
        with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
            spawn = prepare(probe, Path(tmp), Limits(), layers)
            try:
                done = subprocess.run(spawn.argv, preexec_fn=spawn.preexec_fn, cwd=tmp,
                                      env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                      stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
                ok = done.returncode == 0 and (Path(tmp) / "probe").exists()
            except (OSError, subprocess.SubprocessError):
                ok = False
            finally:
                spawn.kill_all()
        if ok:
            return layers
    return Layers()
