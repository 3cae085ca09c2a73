"""Trusted, stdlib only: the last step before a student's process starts, inside its namespaces.

Run by `limits.py` as `unshare --pid --fork --kill-child --mount-proc --net --mount [--user
--map-root-user] -- python -I jail.py CONFIG`, where CONFIG (JSON) names the paths to hide, the
working directory, the uid to become (or none) and the command to exec. In the new mount
namespace it lays an empty tmpfs over every hidden directory (and /dev/null over
every hidden file), puts the working directory back where it was, gives up every privilege
(another uid as root; a nested user namespace otherwise, which also locks the mounts), asks to
be killed with its parent, and execs the command. It never runs student code itself.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

try:  # imported before any fork(): an import in a forked child can wait on a lock forever
    import resource
except ImportError:  # Windows
    resource = None

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {target}")


def hide(path: str) -> None:
    """An empty view in place of `path` (a directory or a file)."""
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if os.path.isdir(path):
        mount("tmpfs", path, "tmpfs", flags, "size=16k,nr_inodes=64,mode=0755")
    else:
        mount("/dev/null", path, None, MS_BIND)


def put_back(path: str, fd: int) -> None:
    """Put `path` (held open as `fd`) back where it was, over the empty tmpfs that hid it."""
    parents = []
    parent = os.path.dirname(path)
    while not os.path.isdir(parent):
        parents.append(parent)
        parent = os.path.dirname(parent)
    for p in reversed(parents):
        os.mkdir(p, 0o755)
    if os.path.isdir(f"/proc/self/fd/{fd}"):
        if not os.path.isdir(path):
            os.mkdir(path, 0o755)
    elif not os.path.exists(path):
        open(path, "x").close()
    mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)


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


def drop_privileges(uid: int | None) -> None:
    """Become `uid` (root) or a nobody of a nested user namespace (as a user): no capabilities."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        return
    outer_uid, outer_gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"1000 {outer_uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"1000 {outer_gid} 1")
    os.setresgid(1000, 1000, 1000)
    os.setresuid(1000, 1000, 1000)  # exec as a non-zero uid: no capabilities left after it


def main(config: dict) -> None:
    enter(config)
    command = config["command"]
    os.execv(command[0], command)


def enter(config: dict) -> None:
    """Hide, put back, lock, give up privileges, move to the working directory: all but exec.

    Called in a process that is already in its namespaces: here, after `unshare`; in a process
    forked from a warm parent (`zygote.py`), after it made them itself.
    """
    hidden = config["hide"]
    # What must stay visible but lies under a hidden path (the working directory in /tmp, a
    # Python under a private home) is opened first, then put back once the rest is hidden.
    keep = {p: os.open(p, os.O_PATH) for p in config["keep"]
            if any(p.startswith(h + "/") for h in hidden) and os.path.exists(p)}
    for path in hidden:
        try:
            hide(path)
        except OSError as exc:  # a path gone since it was listed: nothing to hide there
            if os.path.lexists(path):
                raise SystemExit(f"autograder jail: {exc}") from None
    for path, fd in sorted(keep.items()):
        put_back(path, fd)
        os.close(fd)
    for path in hidden:  # now that what was put back is there: read-only, whoever owns it
        if os.path.isdir(path) and not os.path.islink(path):
            mount("tmpfs", path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=16k,nr_inodes=64,mode=0755")
        elif os.path.exists(path):  # /dev/null laid over a file: nodev, or it takes writes
            mount("none", path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV | MS_NOSUID
                  | MS_NOEXEC)
    for path in config["keep"]:  # Python, torch, the runner: read-only, whoever owns them
        if path != config["workdir"] and os.path.exists(path):
            if path not in keep:
                mount(path, path, None, MS_BIND | MS_REC)
            mount("none", path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    for path in config.get("fresh", []):  # an empty, writable tmpfs (e.g. /dev/shm)
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    drop_privileges(config.get("uid"))
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # Changing credentials clears the parent-death signal: set it again, last.
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    os.chdir(config["workdir"])


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
