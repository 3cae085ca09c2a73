"""Reading what students hand in (trusted side, standard library only): never through a link.

A submission folder is the student's: any name in it may be a link to another student's work, to
the source notebook, or to `/etc/shadow`; a FIFO that blocks a reader forever; a file of
gigabytes. `read_under` opens each part of a path from the folder above it, refusing links at
every step, reads only plain files, and no more than a cap. Its reasons never quote what a file
holds.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import shutil
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


def walk(root: Path, limit: int, skip=lambda name: False):
    """`(folder, entries)` for each folder below `root` (`folder` relative, as a tuple of names;
    `entries` its `os.DirEntry`s in name order), top down, in one pass: never into a link or a
    folder `skip` names, without recursion (a folder nested thousands deep is one more step), and
    no more than `limit` entries in all (then a last `(None, [])` says it stopped there)."""
    stack: list[tuple[str, ...]] = [()]
    left = limit
    while stack and left > 0:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, *rel)) as found:
                entries = sorted(itertools.islice(found, left), key=lambda e: e.name)
        except OSError:  # gone, unreadable, a path too long
            continue
        left -= len(entries)
        yield rel, entries
        stack.extend((*rel, e.name) for e in reversed(entries)
                     if not skip(e.name) and _is_folder(e))
    if left <= 0:
        yield None, []  # the limit was reached: the caller says so


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def ignored(name: str, ignore: list[str]) -> bool:
    """Whether nbgrader's `CourseDirectory.ignore` globs name `name` (as its `is_ignored` does,
    with glob's rule that `*` matches no leading dot), without listing the folder."""
    return any(fnmatch.fnmatchcase(name, glob) and not (name.startswith(".")
                                                         and not glob.startswith("."))
               for glob in ignore)


def copy_plain(source: Path, dest: Path, ignore: list[str], max_files: int, max_bytes: int,
               max_file_bytes: int) -> str | None:
    """Copy the plain files below `source` (but `*.ipynb` and what `ignore` names) to the same
    places below `dest`, in one walk, in name order: never through a link (a link, a FIFO, a
    device is left where it is), at most `max_files` files, `max_bytes` in all, each at most
    `max_file_bytes`; the walk looks at no more than ten times `max_files` names. Returns one
    line saying what the caps left out, or None."""
    copied = total = past_count = past_bytes = too_large = failed = 0
    reached = False
    for rel, entries in walk(source, 10 * max_files, lambda name: ignored(name, ignore)):
        if rel is None:
            reached = True
            break
        for entry in entries:
            name = entry.name
            if _is_folder(entry) or name.endswith(".ipynb") or ignored(name, ignore) \
                    or entry.is_symlink():
                continue
            if copied >= max_files:
                past_count += 1  # not opened: past the cap, a name is all it costs
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK)
            except OSError:  # a link (ELOOP), gone, unreadable
                continue
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    continue
                if info.st_size > max_file_bytes:
                    too_large += 1
                elif total + info.st_size > max_bytes:
                    past_bytes += 1
                else:
                    try:
                        _copy(f, os.path.join(dest, *rel, name), stat.S_IMODE(info.st_mode))
                    except OSError:  # a path too long there, a folder of that name, a full disk
                        failed += 1
                        continue
                    copied += 1
                    total += info.st_size
    left = [f"{past_count} past the first {max_files}" if past_count else "",
            f"{past_bytes} past {_size(max_bytes)} in all" if past_bytes else "",
            f"{too_large} larger than {_size(max_file_bytes)} each" if too_large else "",
            f"{failed} that could not be written" if failed else "",
            f"and the folder was looked at no further than {10 * max_files} names"
            if reached else ""]
    left = [part for part in left if part]
    if not left:
        return None
    return (f"{past_count + past_bytes + too_large + failed} of the other files handed in were not copied "
            f"beside the graded notebook ({', '.join(left)}); {copied} were")


def _copy(source, target: str, mode: int) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        os.remove(target)
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    os.chmod(target, mode)


def _size(cap: int) -> str:
    return f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap} bytes"
