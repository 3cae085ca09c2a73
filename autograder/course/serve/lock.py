"""`DIR/serve/lock`: held (flock) by a running `autograder serve` of the course, and looked at by
`autograder grade`, which must not write a SQLite gradebook beside it. The kernel lets go of
the lock when its process ends, however it ends (`kill -9` too): a stale file never blocks."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

#: The lock's file, in the course.
LOCK = ("serve", "lock")


def hold(course: Path) -> IO | None:
    """The lock, held by this process (an open file: closing it lets go), or None where another
    process holds it."""
    folder = course.joinpath(*LOCK[:-1])
    folder.mkdir(exist_ok=True)
    handle = course.joinpath(*LOCK).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def serving(course: Path) -> bool:
    """Whether an `autograder serve` holds the course's lock now (looked at, not kept)."""
    try:
        handle = course.joinpath(*LOCK).open("r")
    except OSError:  # none: never served
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False
