"""What a student's process sees and may do: the one list (trusted side, standard library only).

`jail.enter` applies a `Policy`, in the same order for a process started cold (`python -I
jail.py`) and one forked from a warm parent (`forkserver.py`). Read top to bottom, this is the
whole sandbox where namespaces apply:

1. **Namespaces**: its own pid namespace (it is process 1: when it ends, every process it
   started ends with it), mount, network (no network at all), IPC (no System V segment or
   message queue outlives it, or is seen by another) and UTS (its own host name); as an ordinary
   user, inside a user namespace of the grader's, in which it ends up with no privilege at all.
2. **A root of its own**, built from nothing (a tmpfs): the system's directories, Python and its
   packages, this package, all read-only; `hidden` paths inside those left empty (the lessons'
   sources, nbgrader's exchange and data folders, Jupyter's, and the course's: `hidden_paths`,
   whatever the configuration, even where they lie inside `/usr`); a few devices
   (`/dev/null`, ...); a new `/proc` (it sees only its own processes); and one writable place,
   `/tmp`, a tmpfs of `work_bytes` and `work_files` owned by the student's uid, gone with the
   process. Nothing else of the machine is there: not the course, not another student's folder,
   not the host's `/tmp`, not a folder made after the grader started.
3. **No privilege**: a uid of its own where the grader is root, or where an ordinary user is
   granted subordinate ids (`subordinate`: the student's uid is one of them, mapped into the
   grader's user namespace, neither the instructor's nor root's on the host); else the nobody of
   a nested user namespace (the instructor's own uid, seen from the host). No new privileges,
   ever (`PR_SET_NO_NEW_PRIVS`).
4. **Limits**: address space, CPU time, file size, processes (`rlimits`; processes with a uid
   of its own, or in a nested user namespace where the kernel counts them per user namespace,
   Linux 5.14 on: `limits.Layers.process_limit`).
5. **System calls** (seccomp, where a libseccomp binding is installed): the ones that reach
   beyond the process (`ptrace`, `process_vm_*`, namespaces, mounts, `bpf`, keyrings, kernel
   modules, `io_uring`, ...) fail with EPERM.
6. It dies with its parent; its session is its own; its environment is `spec`'s short list.

Where namespaces are refused, the layers that still apply are named in the report
(`Layers.names`), and `--require-isolation` refuses to grade.
"""

from __future__ import annotations

import os
import site
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Where the student's process works, inside its root: the only place it may write.
WORK = "/tmp"
#: The system's directories that a Python, torch and the lesson's libraries read.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
#: A GPU's device files, bound where the machine has them (the student's process uses the GPU).
GPU_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset") + tuple(
    f"nvidia{i}" for i in range(16))

#: System calls that reach beyond the process, refused with EPERM (`clone` only with a
#: namespace flag; `clone3`, whose flags a filter cannot read, with ENOSYS so that the C library
#: falls back to `clone`).
REFUSED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
    "fspick", "fsconfig", "mount_setattr", "unshare", "setns",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup", "iopl", "ioperm",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
    "setdomainname", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
)


@dataclass(frozen=True)
class Policy:
    """One student's process, as `jail.enter` makes it (see the module's doc)."""

    read_only: tuple[str, ...]  # bound read-only at the same path
    hidden: tuple[str, ...] = ()  # inside those, left empty
    devices: tuple[str, ...] = DEVICES
    work_bytes: int = 64 << 20
    work_files: int = 4096
    shm_bytes: int = 16 << 20
    uid: int | None = None  # a uid of its own (the grader is root)
    nested_user: bool = False  # else: the nobody of a nested user namespace
    #: As an ordinary user granted subordinate ids (/etc/subuid, /etc/subgid): the ranges, and
    #: the `newuidmap`/`newgidmap` that map them (`jail.own_user_namespace`); `uid` is one of them.
    subordinate: dict | None = None
    rlimits: dict = field(default_factory=dict)
    refused_syscalls: tuple[str, ...] = REFUSED_SYSCALLS
    hostname: str = "autograder"

    def to_json(self) -> dict:
        return asdict(self)


def needed_paths() -> list[str]:
    """What the graded process reads besides the system: the interpreter, its packages, this
    package (its runner and wire), by their real paths, outermost first."""
    package = Path(__file__).resolve().parents[1]
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), str(package)}
    found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    # What a .pth file adds (a venv that borrows another's packages): package folders only,
    # never a checkout's root, which holds the reference solutions.
    found.update(p for p in sys.path if p and os.path.basename(os.path.normpath(p)) in (
        "site-packages", "dist-packages"))
    real = sorted({os.path.realpath(p) for p in found if p and os.path.exists(p)})
    return [p for p in real if not any(p.startswith(q + "/") for q in real if q != p)]


def read_only_paths() -> tuple[str, ...]:
    """The system's directories that exist here, then what Python needs."""
    system = [p for p in SYSTEM if os.path.exists(p)]
    rest = [p for p in needed_paths() if not any(p == s or p.startswith(s + "/") for s in system)]
    gpu = [f"/dev/{d}" for d in GPU_DEVICES if os.path.exists(f"/dev/{d}")]
    if gpu:  # CUDA reads the PCI devices' descriptions too
        rest += ["/sys"] + gpu
    return tuple(system + rest)


#: nbgrader's and Jupyter's folders on any machine, wherever the course puts its own: nbgrader's
#: default exchange (`/usr/local/share/nbgrader/exchange`) and the root its documentation uses
#: (`/srv/nbgrader/exchange`), Jupyter's system data folders (nbgrader's caches and extensions'
#: data) and configuration folders (a JupyterHub's `nbgrader_config.py` names the course and its
#: exchange), JupyterHub's own.
NBGRADER_FOLDERS = ("/usr/local/share/nbgrader", "/usr/share/nbgrader", "/srv/nbgrader",
                    "/usr/local/share/jupyter", "/usr/share/jupyter", "/etc/jupyter",
                    "/usr/local/etc/jupyter", "/etc/jupyterhub", "/srv/jupyterhub")
#: What the course side names (`course.config.hide_course`): the course's folder, its exchange
#: and the gradebook, as the course's configuration says, in the environment so that the
#: grading processes a grader starts inherit it (os.pathsep between paths).
COURSE_PATHS = "AUTOGRADER_COURSE_PATHS"


def jupyter_paths() -> list[str]:
    """Jupyter's data and configuration folders for this Python and this user (as
    `jupyter_core.paths` finds them, without importing it: the student's `check` has only torch)."""
    found = []
    for prefix in {sys.prefix, sys.base_prefix}:
        found += [os.path.join(prefix, "share", "jupyter"), os.path.join(prefix, "etc", "jupyter")]
    for name in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR",
                 "JUPYTER_RUNTIME_DIR"):
        found += [p for p in os.environ.get(name, "").split(os.pathsep) if p]
    home = os.path.expanduser("~")
    if home != "~":
        found += [os.path.join(home, ".local", "share", "jupyter"), os.path.join(home, ".jupyter")]
    return found


def hidden_paths(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every folder to leave empty inside what the student's process reads (`Policy.hidden`),
    absolute and by their real paths too: the lessons' sources (`lesson_paths`), nbgrader's and
    Jupyter's folders (`NBGRADER_FOLDERS`, `jupyter_paths`), the course's (`COURSE_PATHS`) and
    `extra`. One that holds a path the process needs (a course with its venv inside) is not
    hidden itself: everything else in it is (`_around`)."""
    named = [*lesson_paths(), *NBGRADER_FOLDERS, *jupyter_paths(),
             *os.environ.get(COURSE_PATHS, "").split(os.pathsep), *extra]
    needed = {os.path.realpath(p) for p in (*SYSTEM, *needed_paths()) if os.path.exists(p)}
    found: list[str] = []
    for path in named:
        if not path or not os.path.isabs(path):
            continue
        for each in dict.fromkeys((os.path.normpath(path), os.path.realpath(path))):
            found += _around(each, needed)
    return tuple(dict.fromkeys(found))


def _around(path: str, needed: set[str], depth: int = 0) -> list[str]:
    """`path`, or where it holds something `needed`, each of its entries but those (a needed
    path itself, or one that holds a system folder, is never hidden)."""
    if not os.path.lexists(path):
        return []
    inside = [n for n in needed if n == path or n.startswith(path.rstrip("/") + "/")]
    if not inside:
        return [path]
    if path in needed or depth > 8 or any(n in SYSTEM for n in inside):
        return []
    try:
        names = sorted(os.listdir(path))[:1000]
    except OSError:
        return []
    return [p for name in names for p in _around(os.path.join(path, name), needed, depth + 1)]


def lesson_paths() -> tuple[str, ...]:
    """What must stay out of reach inside the bound paths: the reference solutions and the
    lessons' sources, where this install keeps them inside a bound folder (a checkout's
    lessons and solutions, `assignments/` and `solutions/`, sit beside the package, which is bound
    alone; a wheel's sit inside it, in `autograder/lessons/` and `autograder/solutions/`, kept out
    here)."""
    package = Path(__file__).resolve().parents[1]
    return tuple(str(p) for p in (package / "lessons", package / "solutions") if p.exists())
