"""The one way into the sandbox: `enter(policy)` applies `policy.Policy` (trusted code, stdlib and
ctypes; a libseccomp binding where installed), then the caller runs the graded program.

Two callers, one function:

- a cold start, `python -I jail.py` (`main` below): it reads the policy from its standard input
  (never from its command line, which every local user can read), makes a user namespace where
  the grader is not root (`own_user_namespace`: with the instructor's subordinate ids mapped,
  where the system grants them), then a pid namespace, and forks: the child is process 1 there, enters
  the jail and runs the runner; the parent only waits and hands on how it ended;
- a warm start (`forkserver.py`): a warm parent forks the child into a new pid namespace, and the
  child enters the jail the same way.

`enter` never runs student code itself, and leaves nothing of the policy where the student's
code could find it: it returns nothing, and its caller drops the policy before the runner starts.

Linux only where it calls the C library (`libc()`, loaded on first use): importing this module
is safe anywhere (Windows, macOS), and `set_rlimits` and `drop_privileges`, which the layers
without namespaces use, need only `resource` and `os`, where the platform has them.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import sys

try:  # imported before any fork(): an import in a forked child can wait on a lock forever
    import resource
except ImportError:  # Windows
    resource = None

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME, MS_PRIVATE, MS_RELATIME = 1024, 2048, 1 << 18, 1 << 21
MNT_DETACH = 2
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP = 0x10000000, 0x20000000, 0x40000000, 0x02000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
#: statvfs's flags of a mount, and the mount flags that keep them (a bind mount made in a user
#: namespace must keep what its source's mount locks).
_KEEP = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME,
         2048: MS_NODIRATIME, 4096: MS_RELATIME}
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}


@functools.cache
def libc() -> ctypes.CDLL:
    """This process's C library, loaded on first use (Windows has none to load by that name:
    TypeError there)."""
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    _check(libc().mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def set_rlimits(limits: dict) -> None:
    """Set resource limits, `{"RLIMIT_AS": (soft, hard), ...}`, where this platform has them."""
    if resource is None:
        return
    for name, (soft, hard) in limits.items():
        if hasattr(resource, name):
            try:
                resource.setrlimit(getattr(resource, name), (soft, hard))
            except (ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS: the other layers remain
                pass


def drop_privileges(uid: int) -> None:
    """Become `uid` (group `uid`, no supplementary groups)."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def map_user(inside: int, outside_uid: int, outside_gid: int) -> None:
    """In a user namespace just made: `inside` stands for the uid and gid outside."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{inside} {outside_uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{inside} {outside_gid} 1")


def own_user_namespace(subordinate: dict | None = None) -> None:
    """A user namespace in which this process is root (its own uid and gid stand for 0). With
    `subordinate` ids (`{"uid": [start, count], "gid": [start, count], "newuidmap": path,
    "newgidmap": path}`, the instructor's ranges in /etc/subuid and /etc/subgid), those are
    mapped too, from 1 on: a uid k there is the host's uid start + k - 1, one no other process of
    the instructor has. A process cannot write such a map for itself: a helper forked first,
    still outside, has the setuid `newuidmap` and `newgidmap` write it once this process has
    made the namespace. Raises OSError where either fails."""
    uid, gid = os.getuid(), os.getgid()
    if not subordinate:
        unshare(CLONE_NEWUSER)
        map_user(0, uid, gid)
        return
    ready_r, ready_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            os.close(ready_w)
            os.read(ready_r, 1)  # end of file: the parent has made its namespace (or failed)
            parent = str(os.getppid())
            for tool, own, key in (("newuidmap", uid, "uid"), ("newgidmap", gid, "gid")):
                start, count = subordinate[key]
                spawned = os.posix_spawn(subordinate[tool], [
                    tool, parent, "0", str(own), "1", "1", str(start), str(count)], {})
                if os.waitpid(spawned, 0)[1] != 0:
                    break
            else:
                code = 0
        finally:
            os._exit(code)
    os.close(ready_r)
    try:
        unshare(CLONE_NEWUSER)
    finally:
        os.close(ready_w)
        _, status = os.waitpid(helper, 0)
    if status != 0:
        raise OSError(errno.EPERM, "newuidmap or newgidmap could not map the subordinate ids")


def become_nobody() -> None:
    """A nested user namespace, in which this process is uid 1000 and has no capability over
    anything outside it (the mounts made before are locked there)."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    map_user(1000, uid, gid)
    os.setresgid(1000, 1000, 1000)
    os.setresuid(1000, 1000, 1000)


# --- the system calls filter ----------------------------------------------------------------------

def _seccomp():
    """The libseccomp binding installed here: Debian's `seccomp`, or `pyseccomp` (same API)."""
    for name in ("seccomp", "pyseccomp"):
        try:
            return __import__(name)
        except (ImportError, OSError):
            continue
    return None


_FILTERS: dict = {}


def syscall_filter(refused: tuple[str, ...]):
    """A filter refusing `refused` (and `clone` with a namespace flag), built once per process;
    None where no binding is installed."""
    key = tuple(refused)
    if key not in _FILTERS:
        sc = _seccomp()
        if sc is None:
            _FILTERS[key] = None
        else:
            flt = sc.SyscallFilter(sc.ALLOW)
            for name in refused:
                try:
                    flt.add_rule(sc.ERRNO(errno.EPERM), name)
                except (OSError, ValueError, RuntimeError):  # not a system call on this machine
                    pass
            for flag in (CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                         CLONE_NEWNET, CLONE_NEWCGROUP):
                flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
            try:
                flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
            except (OSError, ValueError, RuntimeError):
                pass
            _FILTERS[key] = flt
    return _FILTERS[key]


# --- building the root ----------------------------------------------------------------------------

def _keep_flags(path: str) -> int:
    try:
        found = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(flag for bit, flag in _KEEP.items() if found & bit)


def _place(target: str, like_dir: bool) -> None:
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if like_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def _bind(fd: int, source: str, target: str, read_only: bool = True) -> None:
    """Bind what `fd` holds (opened before anything was mounted over it) at `target`."""
    _place(target, os.path.isdir(f"/proc/self/fd/{fd}"))
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
              | _keep_flags(source))


def _pivot(root: str) -> None:
    """Make `root` the root of this mount namespace; the old root is gone from it."""
    os.chdir(root)
    number = _PIVOT_ROOT.get(os.uname().machine)
    if number is not None:
        _check(libc().syscall(number, b".", b"."), "pivot_root")
        _check(libc().umount2(b".", MNT_DETACH), "umount old root")
    else:  # no pivot_root number known here: the old root stays, out of reach of a chroot
        _check(libc().chroot(b"."), "chroot")
    os.chdir("/")


def hide(root: str, paths: list[str], null: int | None) -> None:
    """Leave each of `paths` (inside what was bound at `root`) empty: a folder gets an empty
    read-only tmpfs over it, a file an unreadable /dev/null (`null`, held open). A path whose real
    place is outside the root (a link to the host's) is skipped: the policy names the real one."""
    done = set()
    for path in paths:
        target = os.path.realpath(root + path)
        if target in done or not target.startswith(root + "/") or not os.path.lexists(target):
            continue
        done.add(target)
        if os.path.isdir(target):
            mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,nr_inodes=4,mode=0555")
        elif null is not None:
            mount(f"/proc/self/fd/{null}", target, None, MS_BIND)
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
                  | MS_NOEXEC | _keep_flags(target))


def build_root(policy: dict, uid: int) -> None:
    """The student's root, from nothing (see `policy.py`), made the root of this namespace."""
    sources = {}
    for path in policy["read_only"]:
        if os.path.lexists(path) and not os.path.islink(path):
            sources[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
    links = {p: os.readlink(p) for p in policy["read_only"] if os.path.islink(p)}  # /lib -> usr/lib
    devices = {d: os.open(f"/dev/{d}", os.O_PATH | os.O_CLOEXEC) for d in policy["devices"]
               if os.path.exists(f"/dev/{d}")}
    root = "/tmp"  # any folder will do to mount on: this namespace only, and we hold what we bind
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    # The working folder first: what is bound below /tmp (an install there) goes inside it.
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={policy['work_bytes']},nr_inodes={policy['work_files']},mode=0700,"
          f"uid={uid},gid={uid}")
    for path, fd in sources.items():
        _bind(fd, path, root + path)
    for path, target in links.items():
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        os.symlink(target, root + path)
    hide(root, policy["hidden"], devices.get("null"))
    os.makedirs(root + "/dev", mode=0o755)
    for name, fd in devices.items():
        _bind(fd, f"/dev/{name}", f"{root}/dev/{name}", read_only=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/dev/shm")
    mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          f"size={policy['shm_bytes']},nr_inodes=256,mode=1777")
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for fd in (*sources.values(), *devices.values()):
        os.close(fd)
    _pivot(root)
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
          "size=1m,nr_inodes=4096,mode=0755")


def enter(policy: dict) -> None:
    """Everything between being process 1 of a new pid namespace and running the student's code:
    the other namespaces, the root, privileges, limits, the filter, the parent-death signal, the
    working folder. Raises OSError where any of it fails (the caller then gives up)."""
    uid = policy.get("uid")
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    name = policy.get("hostname", "autograder").encode()
    _check(libc().sethostname(name, len(name)), "sethostname")
    flt = syscall_filter(tuple(policy["refused_syscalls"]))  # built while the host is visible
    build_root(policy, uid if uid is not None else 0)  # 0: the grader, in its user namespace
    if uid is not None:
        drop_privileges(uid)
    elif policy.get("nested_user"):
        become_nobody()
    set_rlimits(policy["rlimits"])
    _check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if flt is not None:
        flt.load()
    # Changing credentials clears the parent-death signal: set it again, last.
    _check(libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    os.chdir("/tmp")


def check_inside() -> bool:
    """In a jail just entered: torch is there to read, the root is there to list, and only the
    working folder takes writes."""
    import importlib.util

    try:
        with open(importlib.util.find_spec("torch").origin, "rb"):
            pass
        os.listdir("/")
        with open("/tmp/probe", "w"):
            pass
    except (OSError, AttributeError):
        return False
    try:
        with open("/probe", "w"):
            return False  # the root took a write
    except OSError:
        return True


# --- a cold start ---------------------------------------------------------------------------------

def main() -> None:
    """`python -I jail.py`: the policy frame on standard input (then the runner's frames)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from autograder import wire

    frame = wire.read_frame(0)
    policy, channel, probe = frame.meta["policy"], frame.meta["channel_fd"], frame.meta.get("probe")
    del frame
    if policy.get("nested_user") or policy.get("subordinate"):  # as an ordinary user: a user
        try:  # namespace first, in which we are root
            own_user_namespace(policy.get("subordinate"))
        except OSError as exc:
            os.write(2, f"autograder: the sandbox could not start: {exc}\n".encode())
            os._exit(70)
    unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        try:
            _check(libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
            enter(policy)
        except BaseException as exc:  # noqa: BLE001 - no student code has run: say why, stop
            os.write(2, f"autograder: the sandbox could not start: {exc}\n".encode())
            os._exit(70)
        del policy
        if probe:  # the grader trying the layers: what the runner needs, and no more
            os._exit(0 if check_inside() else 71)
        from autograder.untrusted import runner

        runner.main(0, channel)
        os._exit(0)
    # The parent: it holds nothing the child needs, and ends with it, as it ended.
    for fd in (0, channel):
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
