"""The fork server of the warm workers: torch and the lesson's libraries imported once, a fork each.

Started by the trusted side (`warm.py`) as `python -I forkserver.py FD MODULES [user]`: FD is a Unix
socket, MODULES (JSON) what to import, `user` a user namespace to make first (its subordinate ids
come as the socket's first message). This first process, the mother, imports them, then only forks
warm parents: one per socket it is sent, each sharing the mother's memory until it writes. A warm
parent serves its socket: for each request, it forks a child, the first process of a new pid
namespace, that enters the jail through the same function as a cold start (`jail.enter`: the other
namespaces, its own root, its uid, limits, the system call filter), then runs the runner. Neither
ever runs student code itself, and a child closes the sockets before it does. Imports only the
standard library, torch, its sibling `jail.py` and the untrusted runner. Linux only, and never
imported: `warm.supported` says where it runs.

The mother answers each socket with {"pid": P}. A warm parent serves one request at a time: the
trusted side sends a JSON request with four descriptors (the child's stdout and stderr, its
standard input, on which the job comes, and its channel); the parent answers {"pid": P} once
the child has started and {"status": S} (as os.waitpid gives it) once it has ended. Each ends
when its socket closes, or when its own parent dies.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import json
import os
import signal
import socket
import sys

# `python -I` leaves the script's own folder off sys.path: the siblings are found here, the
# runner in the package (the folder above `autograder/`).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jail  # noqa: E402

from autograder.untrusted import runner  # noqa: E402

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1


def preload(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - not installed here: the child imports it, or fails
            pass
    # The system call filter, built once here (libseccomp compiles it), loaded by each child.
    from autograder.sandbox.policy import REFUSED_SYSCALLS

    jail.syscall_filter(REFUSED_SYSCALLS)


#: glibc's mallopt parameters: memory freed below 64 MiB is kept for the next allocation instead
#: of going back to the kernel (a training loop frees and allocates the same tensors each step,
#: and every page the kernel hands out again is a page fault).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    mallopt = getattr(jail.libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, 64 << 20)
        mallopt(M_TRIM_THRESHOLD, 64 << 20)


def die_with_parent() -> None:
    jail._check(jail.libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")


def new_pid_namespace_for_children(own: int) -> None:
    """Make this process's next child the first process (pid 1) of a new pid namespace: back to
    its own namespace for children (`own`: its /proc/self/ns/pid, open), then a new one."""
    jail._check(jail.libc().setns(own, CLONE_NEWPID), "setns")
    jail._check(jail.libc().unshare(CLONE_NEWPID), "unshare")


def child(request: dict, fds: list[int], failed: OSError | None = None) -> None:
    """The student's process, before its code: never returns. It enters the jail as a cold start
    does (`jail.enter`, the same function), then empties the request, which its caller's frame
    also holds: nothing of the policy is left for the student's code to find."""
    try:
        die_with_parent()  # the parent dies with the grader's thread: none of this outlives it
        if failed is not None:  # the parent could not make its pid namespace
            raise failed
        try:
            os.setsid()
        except OSError:  # the parent made it a group leader first: killable as a group already
            pass
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # out of the way of 0 to 3
        for fd in fds:
            os.close(fd)
        for fd, to in zip(high, (1, 2, 0, 3), strict=True):  # out, err, job, channel
            os.dup2(fd, to)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        keep_freed_memory()
        if request.get("policy") is not None:
            jail.enter(request["policy"])
        else:  # no namespaces here: limits and a uid of its own at most, in a host folder
            jail.set_rlimits(request["rlimits"])
            if request.get("uid") is not None:
                jail.drop_privileges(request["uid"])
            os.chdir(request["folder"])
        request.clear()
        fds.clear()
    except BaseException as exc:  # noqa: BLE001 - nothing of the parent's may run on in a child
        try:
            os.write(2, f"autograder: the sandbox could not start: {exc}\n".encode())
        except OSError:
            pass
        os._exit(70)
    runner.main(0, 3)
    os._exit(0)


def serve(sock: socket.socket) -> None:
    """A warm parent: one student's process at a time, until the socket closes."""
    own_pid_namespace = None
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        message = None
        failed = None
        if request.get("policy") is not None:  # its child starts in a pid namespace of its own
            try:
                if own_pid_namespace is None:
                    own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY)
                new_pid_namespace_for_children(own_pid_namespace)
            except OSError as exc:
                failed = exc
        pid = os.fork()
        if pid == 0:
            sock.close()
            if own_pid_namespace is not None:
                os.close(own_pid_namespace)
            child(request, fds, failed)
        try:
            os.setpgid(pid, pid)  # without namespaces, the child's group is what is killed
        except OSError:
            pass
        for received in fds:
            os.close(received)
        request = None
        pidfd = os.pidfd_open(pid)  # the grader signals it by this: its pid here is not its pid there
        socket.send_fds(sock, [json.dumps({"pid": pid}).encode()], [pidfd])
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        sock.sendall(json.dumps({"status": status,
                                 "cpu": usage.ru_utime + usage.ru_stime}).encode())


def own_namespaces(subordinate: dict | None = None) -> None:
    """For a grader that is not root: a user namespace, in which this process is root (with the
    grader's `subordinate` ids mapped from 1 on, where it has some: `jail.own_user_namespace`),
    and a pid namespace it is the first process of, made while it is still single-threaded
    (before torch). Its warm parents then make each child's namespaces as a root grader's do,
    and each child ends as one of the subordinate uids, as a root grader's ends as a uid of its
    own, or else as the nobody of a nested user namespace (`jail.become_nobody`). The process
    that called this only waits, and ends as its child ends."""
    jail.own_user_namespace(subordinate)
    jail.unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        die_with_parent()
        return
    for fd in range(3, 256):  # the socket is the child's now
        try:
            os.close(fd)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main(fd: int, modules: list[str], user: bool = False) -> None:
    """`user`: make a user namespace first (a grader that is not root); its first message on
    the socket then says which subordinate ids to map too (JSON: {} for none), never the
    command line, which every process forked from here would show as its own."""
    die_with_parent()
    mother = socket.socket(fileno=fd)
    if user:
        try:
            subordinate = json.loads(mother.recv(1 << 16) or b"null")
        except (OSError, ValueError):
            return
        own_namespaces(subordinate or None)
        subordinate = None
    preload(modules)
    runner.calls.refuse_autograd_for_good()  # once, for every student's process forked from here
    runner.guards.policy_for()  # the answer language's policy too (it reads dir(torch) once)
    # What was imported stays out of the collector's sight: a collection in a child would touch,
    # and so copy, every page of it.
    gc.freeze()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(mother, 1024, 1)
        except OSError:
            return
        if not message or len(fds) != 1:
            return
        while True:  # warm parents that have ended
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        pid = os.fork()
        if pid == 0:
            try:
                mother.close()
                die_with_parent()
                serve(socket.socket(fileno=fds[0]))
            finally:
                os._exit(0)
        os.close(fds[0])
        mother.sendall(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:4] == ["user"])
