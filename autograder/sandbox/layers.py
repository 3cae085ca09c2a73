"""Which layers of the sandbox apply on this machine, and how to start a process inside them.

Layers, strongest first; `choose_layers` tries them once per grader process, through the real
jail, and keeps the first that works:

- **namespaces** (Linux): the whole `policy.Policy` (`jail.enter`): pid, mount, network, IPC
  and UTS namespaces, a root of its own with one small writable `/tmp`, a uid of its own (the
  grader is root, or an ordinary user granted subordinate ids: `subordinate_ids`) or else the
  nobody of a nested user namespace (an ordinary user, in a user namespace of the grader's: the
  grader's own uid seen from the host, and a process limit only where the kernel counts
  processes per user namespace), limits, a system call filter where libseccomp's binding is
  here;
- **an own uid** (the grader is root, namespaces refused): a uid unique to the run, so that a
  temp folder is the only place it can write and every process of that uid is killed after it;
  limits; files readable by anyone stay readable;
- **limits only**: resource limits, its own session (killed as a group), a scrubbed environment,
  a temp folder.

`--require-isolation` refuses to grade unless namespaces apply with a uid of the student's own
(`require_isolation`): as an ordinary user, that takes subordinate ids.

Where the platform lacks a part (Windows and macOS have no namespaces, Windows no `resource`,
no `fork`, no setuid), the layers it lacks are not tried and the report says which apply: this
module imports nothing Linux-only (`jail` is imported when a layer needs it).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings
from .policy import Policy, hidden_paths, read_only_paths

JAIL = Path(__file__).with_name("jail.py")
RUNNER = Path(__file__).resolve().parents[1] / "untrusted" / "runner.py"


@dataclass(frozen=True)
class Limits:
    """Per student process; the defaults live in `autograder/settings.py`."""

    # Each read from `settings` when a Limits is made (a test may set settings' for itself).
    memory: int = field(default_factory=lambda: settings.MEMORY_LIMIT)  # bytes of address space
    cpu_seconds: int = field(default_factory=lambda: settings.CPU_TIME_LIMIT)
    file_size: int = field(default_factory=lambda: settings.FILE_SIZE_LIMIT)  # bytes, per file
    processes: int = field(default_factory=lambda: settings.PROCESS_LIMIT)  # with a uid of its own
    address_space: bool = True  # False on a GPU: CUDA maps far more address space than it uses
    work_bytes: int = field(default_factory=lambda: settings.WORK_BYTES)  # its /tmp, with namespaces
    work_files: int = field(default_factory=lambda: settings.WORK_FILES)

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


SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
#: Where `newuidmap` and `newgidmap` are looked for (Debian's `uidmap` package).
ID_MAP_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def _ranges(path: str, name: str, uid: int) -> list[tuple[int, int]]:
    """The ranges `path` (/etc/subuid's format: NAME-OR-ID:START:COUNT) grants this user."""
    found = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (name, str(uid)) and parts[1].isdigit() \
                and parts[2].isdigit() and int(parts[2]) >= 2:
            found.append((int(parts[1]), int(parts[2])))
    return found


def subordinate_ids(subuid: str = SUBUID, subgid: str = SUBGID) -> tuple[dict | None, str]:
    """The subordinate ids this ordinary user is granted, with the setuid tools that map them
    (as `policy.Policy.subordinate`); else None, and what is missing, in one line that says how
    an admin grants it."""
    uid = os.getuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = str(uid)
    uids, gids = _ranges(subuid, name, uid), _ranges(subgid, name, uid)
    tools = {t: shutil.which(t, path=ID_MAP_PATH) for t in ("newuidmap", "newgidmap")}
    missing = []
    if not (uids and gids):
        where = " and ".join(p for p, r in ((subuid, uids), (subgid, gids)) if not r)
        missing.append(f"no subordinate ids for {name} in {where} (an admin grants them: "
                       f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}, "
                       "a range no other user has)")
    if not all(tools.values()):
        missing.append("no newuidmap and newgidmap here (Debian's uidmap package: "
                       "apt-get install uidmap)")
    if missing:
        return None, "; ".join(missing)
    (ustart, ucount), (gstart, gcount) = uids[0], gids[0]
    return {"uid": [ustart, ucount], "gid": [gstart, gcount], **tools}, ""


def student_uid(subordinate: dict) -> int:
    """A uid for one student's process inside the grader's user namespace, among the mapped
    subordinate ones (1 to the smaller range's size), not one in use by another of this
    grader's processes (`release_uid` gives it back)."""
    top = min(subordinate["uid"][1], subordinate["gid"][1])
    pick = random.SystemRandom()
    with _uids_lock:
        uid = pick.randint(1, top)
        for _ in range(64):
            if uid not in _uids_in_use:
                break
            uid = pick.randint(1, top)
        _uids_in_use.add(uid)
    return uid


def release_uid(uid: int) -> None:
    with _uids_lock:
        _uids_in_use.discard(uid)


_uids_in_use: set[int] = set()
_uids_lock = threading.Lock()


def nproc_per_user_namespace(release: str | None = None) -> bool:
    """Whether this kernel counts RLIMIT_NPROC per uid and user namespace (Linux 5.14 on, its
    "ucounts"): then the nobody of a nested user namespace made for one student counts only
    that student's processes, though its uid outside is the grader's. Before, a uid's processes
    are counted all together, the grader's own included: no limit can be set there."""
    if not sys.platform.startswith("linux"):
        return False
    numbers = (release or os.uname().release).split("-")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) >= (5, 14)
    except (IndexError, ValueError):
        return False


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


@dataclass
class Layers:
    """The layers chosen for this platform, and how to start a process inside them."""

    namespaces: bool = False
    user_namespace: bool = False  # namespaces made without root, in a user namespace of their own
    own_uid: bool = False  # run as an unprivileged uid of its own (root, or subordinate ids)
    seccomp: bool = False  # a libseccomp binding is installed: the filter is loaded
    subordinate: dict | None = None  # an ordinary user's subordinate ids (`subordinate_ids`)
    missing: str = ""  # an ordinary user's: why the student gets no uid of its own, in one line

    @property
    def process_limit(self) -> bool:
        """RLIMIT_NPROC applies: a uid of its own, or a nested user namespace on a kernel that
        counts processes per user namespace (`nproc_per_user_namespace`)."""
        return self.own_uid or (self.namespaces and self.user_namespace
                                and nproc_per_user_namespace())

    def names(self, limits: Limits) -> list[str]:
        """One short line per layer that applies, for the report."""
        lines = []
        if self.namespaces:
            kind = "user, pid, mount, network, IPC, UTS" if self.user_namespace else \
                "pid, mount, network, IPC, UTS"
            lines.append(f"namespaces ({kind}): a root of its own with only Python, its "
                         f"packages and a {limits.work_bytes >> 20} MiB /tmp; no network")
            if self.own_uid:
                lines.append("own uid (one of the grader's subordinate uids)" if self.subordinate
                             else "own uid")
            else:
                lines.append("no privileges (a nested user namespace), but the grader's own uid "
                             "seen from the host"
                             + ("" if self.process_limit else ", and no process limit")
                             + (f": {self.missing}" if self.missing else ""))
            lines.append("system calls filtered (seccomp)" if self.seccomp else
                         "no system call filter (no libseccomp binding installed)")
        elif self.own_uid:
            lines.append("own uid (no namespaces: files readable by anyone stay readable)")
        else:
            lines.append("no namespaces, no own uid: the process sees what the grader's user sees")
        if resource_limits():
            lines.append(limits.describe(processes=self.process_limit))
        else:
            lines.append("no resource limits (this platform has no `resource` module): the "
                         "time limit and the output cap remain")
        lines.append("own session, scrubbed environment" if hasattr(os, "setsid") else
                     "scrubbed environment")
        return lines


@dataclass
class Spawn:
    """How to start one student's process: the command, the function to run in the child first
    (where no jail applies), the policy for the jail, and the cleanup after."""

    argv: list[str]
    preexec_fn: Callable[[], None] | None
    uid: int | None
    policy: dict | None = None  # what jail.enter does, where namespaces apply
    rlimits: dict = field(default_factory=dict)
    folder: Path | None = None  # the host folder it works in, where no jail applies

    def kill_all(self) -> None:
        """After the process ended or was killed: whatever it left behind goes too. In a pid
        namespace the kernel has done it already (its first process ends only once every other
        has), so only a uid without one needs killing. A subordinate uid is free again."""
        if self.uid is not None and self.policy is None:
            kill_uid(self.uid)
        if self.uid is not None and self.policy is not None and self.policy.get("subordinate"):
            release_uid(self.uid)


def make_policy(limits: Limits, layers: Layers, uid: int | None,
                hidden: Iterable[str] = ()) -> Policy:
    return Policy(read_only=read_only_paths(), hidden=hidden_paths(tuple(hidden)),
                  work_bytes=limits.work_bytes, work_files=limits.work_files, uid=uid,
                  nested_user=layers.user_namespace and uid is None,
                  subordinate=layers.subordinate if uid is not None else None,
                  rlimits=rlimits(limits, processes=layers.process_limit))


def prepare(limits: Limits, layers: Layers, hidden: Iterable[str] = (),
            folder: Path | None = None) -> Spawn:
    """How to start a graded process under `limits`, in `layers`; `folder` is the host folder
    it works in where no jail applies (made by the caller)."""
    if layers.subordinate:  # inside the grader's user namespace
        uid = student_uid(layers.subordinate)
    else:
        uid = random.SystemRandom().randrange(1 << 20, 1 << 30) if layers.own_uid else None
    if layers.namespaces:
        policy = make_policy(limits, layers, uid, hidden)
        return Spawn([sys.executable, "-I", str(JAIL)], None, uid, policy.to_json(),
                     policy.rlimits)
    limited = rlimits(limits, processes=uid is not None) if resource_limits() else {}
    if uid is not None and folder is not None:
        os.chown(folder, uid, uid)
        os.chmod(folder, 0o700)
    if not limited and uid is None:  # nothing to do in the child (Windows has no preexec_fn)
        return Spawn([sys.executable, "-I", str(RUNNER)], None, None, None, {}, folder)
    from . import jail  # here, before the fork: an import in a forked child can wait forever

    def preexec() -> None:
        jail.set_rlimits(limited)
        if uid is not None:
            jail.drop_privileges(uid)

    return Spawn([sys.executable, "-I", str(RUNNER)], preexec, uid, None, limited, folder)


_chosen: Layers | None = None
_lock = threading.Lock()


def choose_layers() -> Layers:
    """The strongest layers that work here, found once per grader process."""
    global _chosen
    with _lock:
        if _chosen is None:
            _chosen = _try_layers()
        return _chosen


def resource_limits() -> bool:
    """Whether this platform sets resource limits (`resource`, which Windows lacks)."""
    try:
        import resource  # noqa: F401
    except ImportError:
        return False
    return True


def namespaces_possible() -> bool:
    """Whether the namespaces' layers can be tried here: Linux, with `fork` and its C library
    (and not turned off by AUTOGRADER_NO_NAMESPACES=1)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork") \
            or os.environ.get("AUTOGRADER_NO_NAMESPACES") == "1":
        return False
    from . import jail

    try:
        jail.libc()
    except (OSError, TypeError):
        return False
    return True


def _candidates() -> list[Layers]:
    root = hasattr(os, "geteuid") and os.geteuid() == 0 and hasattr(os, "setresuid")
    out = []
    if namespaces_possible():
        from . import jail  # imports `resource` before any fork()

        seccomp = jail.syscall_filter(Policy(()).refused_syscalls) is not None
        filters = [True, False] if seccomp else [False]  # a filter that will not load here is
        if root:  # no reason to lose the namespaces
            out += [Layers(namespaces=True, own_uid=True, seccomp=f) for f in filters]
        else:
            subordinate, missing = subordinate_ids()
            if subordinate:
                out += [Layers(namespaces=True, user_namespace=True, own_uid=True, seccomp=f,
                               subordinate=subordinate) for f in filters]
            out += [Layers(namespaces=True, user_namespace=True, seccomp=f, missing=missing)
                    for f in filters]
    if root:
        out.append(Layers(own_uid=True))
    return out


def probe(layers: Layers) -> bool:
    """Start a process in `layers` as a graded one would start (the real jail), and check
    from inside that Python and torch can be read and only the working folder takes writes."""
    return _probe(layers)[0]


def _probe(layers: Layers) -> tuple[bool, str]:
    """`probe`, and how it failed: the last line the jail wrote, or its exit code."""
    from .. import wire

    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
        spawn = prepare(limits, layers, folder=Path(tmp))
        if spawn.policy is not None:
            if not layers.seccomp:
                spawn.policy["refused_syscalls"] = []
            argv, inside = spawn.argv, wire.frame(b"\0" * wire.TOKEN_BYTES, wire.POLICY, {
                "policy": spawn.policy, "channel_fd": 1, "probe": True})
        else:
            argv, inside = [sys.executable, "-I", "-c", (
                "import importlib.util as u, os; open(u.find_spec('torch').origin).close(); "
                "os.listdir('.'); open('probe', 'w').close()")], b""
        try:
            done = subprocess.run(argv, preexec_fn=spawn.preexec_fn, cwd=tmp, input=inside,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                  capture_output=True, timeout=60)
            ok = done.returncode == 0 and (spawn.policy is not None or (Path(tmp) / "probe").exists())
            said = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
            why = said.removeprefix("autograder: ") or (
                "its process could not read Python and its packages, or wrote outside /tmp"
                if done.returncode == 71 else f"it ended with {done.returncode}")
        except (OSError, subprocess.SubprocessError) as exc:
            ok, why = False, str(exc)
        finally:
            spawn.kill_all()
    return ok, "" if ok else why


def _try_layers() -> Layers:
    failed = ""
    for layers in _candidates():
        if failed and not layers.own_uid and layers.user_namespace and not layers.missing:
            layers.missing = failed
        ok, why = _probe(layers)
        if ok:
            return layers
        if layers.subordinate and not failed:
            failed = f"the grader's subordinate uids did not work here ({why})"
    return Layers()


class IsolationMissing(RuntimeError):
    """--require-isolation where namespaces do not apply; the message says why, in one line."""


def require_isolation(layers: Layers | None = None) -> None:
    """Raise `IsolationMissing` unless the namespaces' layers apply here."""
    layers = layers or choose_layers()
    if not layers.namespaces:
        found = "; ".join(layers.names(Limits()))
        raise IsolationMissing("--require-isolation: the sandbox's namespaces are not available "
                               f"here (the layers that would apply: {found}); grade on Linux "
                               "where unshare is allowed, or drop the option")
    if not layers.own_uid:
        raise IsolationMissing("--require-isolation: the student's process would run as the "
                               "grader's own uid seen from the host: "
                               f"{layers.missing or 'no subordinate ids'}; or drop the option")

