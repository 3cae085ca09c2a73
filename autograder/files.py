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
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: How `read_under` opens the folders on its way: only to walk through (Linux's O_PATH), so that
#: a folder one may pass but not list (the exchange's feedback/, mode 0711) is passed.
_WALK = getattr(os, "O_PATH", os.O_RDONLY)


class Refused(ValueError):
    """The file cannot be read as a plain file here; the message says why, in one line."""


def read_under(root: Path, parts: tuple[str, ...] | list[str], cap: int) -> bytes | None:
    """The bytes of `root/parts...`, at most `cap`; None if it is not there. Raises `Refused`
    for a link (at any step), anything but a plain file, or a file over the cap."""
    shown = "/".join(parts)
    fds = []
    try:
        where = os.open(root, _WALK | _DIRECTORY)
        fds.append(where)
        for part in parts[:-1]:
            where = os.open(part, _WALK | _DIRECTORY | _NOFOLLOW, dir_fd=where)
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


#: How many folders down a copy goes at most (each level holds one descriptor while it is copied).
MAX_COPY_DEPTH = 16


@dataclass
class Copied:
    """What `copy_tree` copied, what its caps left out, and when what it copied last changed."""

    files: int = 0
    bytes: int = 0
    past_count: int = 0  # plain files past `max_files` (not opened: a name is all they cost)
    past_bytes: int = 0  # files that would have taken the copy past `max_bytes`
    too_large: int = 0  # files larger than `max_file_bytes`
    failed: int = 0  # files that could not be written there
    too_deep: int = 0  # folders below `max_depth`, not looked into
    stopped: bool = False  # the copy looked at `max_names` names and no more
    latest: float = 0.0  # the latest ctime of the folders and files copied (after each read)

    def left_out(self, max_files: int, max_bytes: int, max_file_bytes: int,
                 max_names: int) -> str | None:
        """One line saying what the caps left out, or None."""
        parts = [f"{self.past_count} past the first {max_files}" if self.past_count else "",
                 f"{self.past_bytes} past {_size(max_bytes)} in all" if self.past_bytes else "",
                 f"{self.too_large} larger than {_size(max_file_bytes)} each"
                 if self.too_large else "",
                 f"{self.failed} that could not be written" if self.failed else "",
                 f"{self.too_deep} folders more than {MAX_COPY_DEPTH} down" if self.too_deep
                 else "",
                 f"and the folder was looked at no further than {max_names} names"
                 if self.stopped else ""]
        parts = [part for part in parts if part]
        if not parts:
            return None
        count = self.past_count + self.past_bytes + self.too_large + self.failed
        return (f"{count} of the other files handed in were not copied beside the graded "
                f"notebook ({', '.join(parts)}); {self.files} were")


def copy_tree(top: int, dest: Path, *, max_files: int, max_bytes: int, max_file_bytes: int,
              max_names: int, max_depth: int = MAX_COPY_DEPTH, notebooks: bool = True,
              ignore: list[str] | tuple[str, ...] = ()) -> Copied:
    """Copy the plain files below the folder open as `top` to the same places below `dest`.

    The one copy of what a student hands in (`grade`'s other files, `serve`'s staging): the
    student owns the folder and may change it while it is copied, so each folder and file is
    opened from the folder above it, by descriptor, never through a link (a link, a FIFO, a
    device is left where it is), and each file is read within its cap. Folders in name order,
    a folder's files before its subfolders, `max_depth` folders down at most, without
    recursion; at most `max_files` files, `max_bytes` in all, each at most `max_file_bytes`,
    no more than `max_names` names looked at; `notebooks` false leaves `*.ipynb` out, and
    `ignore` names what to leave out as nbgrader's globs do. Modes keep their permission bits
    only (never set-user-ID)."""
    out = Copied(latest=os.fstat(top).st_ctime)
    left = [max_names]
    stack: list[tuple[tuple[str, ...], int, Iterator[str]]] = []

    def enter(rel: tuple[str, ...], fd: int) -> None:
        try:
            with os.scandir(fd) as found:
                entries = sorted(itertools.islice(found, left[0]), key=lambda e: e.name)
        except OSError:  # gone, unreadable
            entries = []
        left[0] -= len(entries)
        folders = []
        for entry in entries:
            name = entry.name
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if ignored(name, ignore):
                continue
            if stat.S_ISDIR(mode):
                folders.append(name)
            elif stat.S_ISREG(mode) and (notebooks or not name.endswith(".ipynb")):
                _copy_file(fd, name, dest.joinpath(*rel, name), out, max_files, max_bytes,
                           max_file_bytes)
        stack.append((rel, fd, iter(folders)))

    enter((), os.dup(top))
    try:
        while stack and left[0] > 0:
            rel, fd, folders = stack[-1]
            name = next(folders, None)
            if name is None:
                stack.pop()
                os.close(fd)
            elif len(stack) > max_depth:
                out.too_deep += 1
            else:
                try:
                    sub = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
                except OSError:  # a link swapped in, gone
                    continue
                out.latest = max(out.latest, os.fstat(sub).st_ctime)
                enter((*rel, name), sub)
    finally:
        for _, fd, _ in stack:
            os.close(fd)
    out.stopped = left[0] <= 0
    return out


def _copy_file(folder: int, name: str, target: Path, out: Copied, max_files: int,
               max_bytes: int, max_file_bytes: int) -> None:
    if out.files >= max_files:
        out.past_count += 1
        return
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:  # a link swapped in (ELOOP), gone, unreadable
        return
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        if info.st_size > max_file_bytes:
            out.too_large += 1
            return
        if out.bytes + info.st_size > max_bytes:
            out.past_bytes += 1
            return
        data = f.read(max_file_bytes + 1)  # within the cap, even if it grows as it is read
        out.latest = max(out.latest, os.fstat(fd).st_ctime)  # a write while it was read counts
    if len(data) > max_file_bytes:
        out.too_large += 1
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):
            os.remove(target)
        target.write_bytes(data)
        os.chmod(target, stat.S_IMODE(info.st_mode) & 0o777)
    except OSError:  # a path too long there, a folder of that name, a full disk
        out.failed += 1
        return
    out.files += 1
    out.bytes += len(data)


def copy_plain(source: Path, dest: Path, ignore: list[str], max_files: int, max_bytes: int,
               max_file_bytes: int) -> str | None:
    """`copy_tree` of the folder `source` (opened without following a link), but `*.ipynb`,
    looking at no more than ten times `max_files` names. Returns one line saying what the
    caps left out, or None."""
    try:
        top = os.open(source, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
    except OSError:
        return None
    try:
        copied = copy_tree(top, Path(dest), max_files=max_files, max_bytes=max_bytes,
                           max_file_bytes=max_file_bytes, max_names=10 * max_files,
                           notebooks=False, ignore=ignore)
    finally:
        os.close(top)
    return copied.left_out(max_files, max_bytes, max_file_bytes, 10 * max_files)


def _size(cap: int) -> str:
    return f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap} bytes"
