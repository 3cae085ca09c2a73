"""Reading what students hand in (trusted side, standard library only): never through a link.

A submission folder is the student's: any name in it may be a link to another student's work, to
the source notebook, or to `/etc/shadow`; a FIFO that blocks a reader forever; a file of
gigabytes. `read_under` opens each part of a path from the folder above it, refusing links at
every step, reads only plain files, and no more than a cap. Its reasons never quote what a file
holds.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class Refused(ValueError):
    """The file cannot be read as a plain file here; the message says why, in one line."""


def read_under(root: Path, parts: tuple[str, ...] | list[str], cap: int) -> bytes | None:
    """The bytes of `root/parts...`, at most `cap`; None if it is not there. Raises `Refused`
    for a link (at any step), anything but a plain file, or a file over the cap."""
    shown = "/".join(parts)
    fds = []
    try:
        where = os.open(root, os.O_RDONLY | _DIRECTORY)
        fds.append(where)
        for part in parts[:-1]:
            where = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=where)
            fds.append(where)
        fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=where)
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{shown} is not a plain file")
        if info.st_size > cap:
            raise Refused(f"{shown} is larger than {_size(cap)}")
        data = bytearray()
        while len(data) <= cap and (chunk := os.read(fd, 1 << 20)):
            data += chunk
        if len(data) > cap:
            raise Refused(f"{shown} is larger than {_size(cap)}")
        return bytes(data)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP or ENOTDIR: a link where a folder or the file should be
        link = link_on_the_way(root, parts)
        if link is not None:
            raise Refused(f"{link} is a link: links in a submission are not graded") from None
        raise Refused(f"{shown} cannot be read ({exc.strerror})") from None
    finally:
        for fd in fds:
            os.close(fd)


def link_on_the_way(root: Path, parts) -> str | None:
    """The first step of `root/parts...` that is a link (relative to `root`), or None."""
    here = Path(root)
    for i, part in enumerate(parts):
        here = here / part
        if here.is_symlink():
            return "/".join(parts[: i + 1])
    return None


def plain_files(root: Path, cap: int) -> list[str]:
    """The plain files below `root` (relative paths), links and other kinds left out, each at
    most `cap` bytes; links to folders are not walked into."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in files:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size <= cap:
                found.append(os.path.relpath(path, root))
    return sorted(found)


def _size(cap: int) -> str:
    return f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap} bytes"
