"""Staging a hand-in: inbound/ -> submitted/<student>/<id>/, plain files only, no link followed,
and the times and secret read from what was staged."""

from __future__ import annotations

import itertools
import os
import shutil
import stat
from datetime import datetime
from pathlib import Path

from ... import files
from .names import Submission

#: What a submission may bring into the course (the rest is left in the exchange).
MAX_FILES, MAX_FILE_BYTES, MAX_DEPTH = 100, 20 * 1024 * 1024, 4
#: Entries looked at for a hand-in's time, each round it waits (more than staging copies).
MAX_ENTRIES_TIMED = 4 * MAX_FILES
#: The largest `submission_secret.txt` read (nbgrader writes a short line).
MAX_SECRET_BYTES = 4096


def open_submission(inbound: Path, name: str) -> int:
    """A descriptor of `inbound/name`, a folder opened without following a link."""
    parent = os.open(inbound, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    finally:
        os.close(parent)


def last_change(inbound: Path, name: str) -> float:
    """When the submission folder or anything in it last changed: the latest ctime of the folder
    and of its first MAX_ENTRIES_TIMED entries (MAX_DEPTH folders down, no link followed). A
    student can make it later (touch a file), never earlier: only root sets a ctime back.
    Raises OSError where the folder cannot be opened."""
    top = open_submission(inbound, name)
    latest = os.fstat(top).st_ctime
    left = MAX_ENTRIES_TIMED
    stack = [(top, 0)]
    try:
        while stack and left > 0:
            fd, depth = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in itertools.islice(entries, left):
                        left -= 1
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        latest = max(latest, st.st_ctime)
                        if stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
                            try:
                                stack.append((os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY
                                                      | os.O_NOFOLLOW, dir_fd=fd), depth + 1))
                            except OSError:
                                continue
            except OSError:
                pass
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return latest


def stage(inbound: Path, sub: Submission, dest: Path) -> float:
    """Copy the submission's plain files (at most MAX_FILES, each at most MAX_FILE_BYTES, at most
    MAX_DEPTH folders down, among the first MAX_ENTRIES_TIMED names, which `last_change` times)
    into a fresh `dest`, with the one copier of what students hand in (`files.copy_tree`: no
    link followed; the student owns the folder and may change it while it is copied). Returns
    the latest ctime of what was copied (and of the folders it was in): when that content last
    changed."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    top = open_submission(inbound, sub.name)
    try:
        return files.copy_tree(top, dest, max_files=MAX_FILES, max_bytes=MAX_FILES * MAX_FILE_BYTES,
                               max_file_bytes=MAX_FILE_BYTES, max_names=MAX_ENTRIES_TIMED,
                               max_depth=MAX_DEPTH).latest
    finally:
        os.close(top)


def read_secret(folder: Path) -> tuple[str | None, str | None]:
    """(the staged `submission_secret.txt`'s text, None) or (None, why there is none usable): the
    student wrote it, and nbgrader reads it as UTF-8 text."""
    path = folder / "submission_secret.txt"
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SECRET_BYTES + 1)
    except FileNotFoundError:
        return None, "it has no submission_secret.txt"
    except OSError as exc:
        return None, f"its submission_secret.txt cannot be read ({exc.strerror})"
    if len(raw) > MAX_SECRET_BYTES:
        return None, f"its submission_secret.txt is over {MAX_SECRET_BYTES} bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "its submission_secret.txt is not UTF-8 text"
    if not text:
        return None, "its submission_secret.txt is empty"
    return text, None


def claimed_in_file(course: Path, sub: Submission) -> datetime | None:
    """What the staged `timestamp.txt` says (the student's; shown, never used), None where it says
    no date."""
    from nbgrader.utils import parse_utc

    try:
        raw = files.read_under(course, ("submitted", sub.student, sub.assignment,
                                        "timestamp.txt"), 1024)
        return parse_utc(raw.decode("utf-8", "replace").strip()) if raw else None
    except Exception:  # noqa: BLE001 - a link, too large, not a date: dateutil raises several kinds
        return None


def write_server_time(folder: Path, sub: Submission) -> None:
    """The staged `timestamp.txt`, which nbgrader's gradebook timestamp (and so its lateness)
    comes from: the server's time of the hand-in, in nbgrader's own format."""
    path = folder / "timestamp.txt"
    path.unlink(missing_ok=True)  # (stage copies plain files only: never a link here)
    path.write_text(sub.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
