"""A lesson as data: what a worker that shares no disk with the grader needs to grade it.

A `LessonBundle` holds the files that loading and grading a lesson read (lesson.toml, lesson.py,
the source notebook, and the reference solutions where the course has them), by their paths
relative to a course (`lessons/<name>/...`, `solutions/<name>/reference.py`), with a hash of
them all. It is made once per lesson on the trusted side and sent to each Dask worker once; a
worker writes it, once per hash, into a private folder of its own (mode 0700, in its temporary
directory, which a student's process never sees) and loads it from there like any lesson.
Local grading never makes one: its threads read the course's folder where it is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..answer import notebook
from . import model as lessons
from .model import Lesson, LessonError

#: The largest bundle sent to workers: a lesson is a few files of text (25 to 32 kB here).
MAX_BUNDLE_BYTES = 16 << 20


@dataclass(frozen=True)
class LessonBundle:
    """A lesson's files as bytes, by path relative to a course; `digest` names their contents."""

    name: str  # the lesson's folder name (lessons/<name>/)
    files: tuple[tuple[str, bytes], ...]
    digest: str

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.files)


def bundle(lesson: Lesson) -> LessonBundle:
    """`lesson`'s files as data; `LessonError` (one line) where one cannot be read or they come to
    more than MAX_BUNDLE_BYTES."""
    name = lesson.folder.name
    wanted = [(f"lessons/{name}/{lessons.SPEC}", lesson.folder / lessons.SPEC),
              (f"lessons/{name}/lesson.py", lesson.folder / "lesson.py")]
    if lesson.source_path.is_file():
        wanted.append((f"lessons/{name}/{lesson.notebook}", lesson.source_path))
    if lesson.reference_path is not None:
        wanted.append((f"solutions/{name}/reference.py", lesson.reference_path))
    files, total = [], 0
    for relative, path in wanted:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BUNDLE_BYTES - total + 1)
        except OSError as exc:
            raise LessonError(f"{path} cannot be read to send to the workers: "
                              f"{exc.strerror or exc}") from None
        total += len(data)
        if total > MAX_BUNDLE_BYTES:
            raise LessonError(f"lesson {lesson.id}'s files come to more than "
                              f"{MAX_BUNDLE_BYTES >> 20} MiB: too large to send to the workers")
        files.append((relative, data))
    import hashlib

    digest = hashlib.sha256()
    for relative, data in files:
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    return LessonBundle(name, tuple(files), digest.hexdigest()[:32])


# --- on a worker ------------------------------------------------------------------------------

_lock = threading.Lock()
_unpacked: dict[str, tuple[Lesson, dict | None]] = {}
_root: list[Path] = []


def unpack(found: LessonBundle) -> tuple[Lesson, dict | None]:
    """(the lesson, its source notebook parsed) from a bundle: written once per digest in this
    process, into a private folder removed when it exits; later calls cost a dict lookup."""
    import atexit
    import shutil
    import tempfile

    with _lock:
        if found.digest in _unpacked:
            return _unpacked[found.digest]
        if not _root:
            _root.append(Path(tempfile.mkdtemp(prefix="autograder-lessons-")))  # 0700
            atexit.register(shutil.rmtree, _root[0], True)
        top = _root[0] / found.digest
        if top.exists():  # a write cut short by an error: start again
            shutil.rmtree(top)
        for relative, data in found.files:
            path = top.joinpath(*_parts(relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        _parts(f"lessons/{found.name}")
        lesson = lessons.load(top / "lessons" / found.name)
        source = (notebook.read_notebook(lesson.source_path) if lesson.source_path.is_file()
                  else None)
        _unpacked[found.digest] = (lesson, source)
        return lesson, source


def _parts(relative: str) -> tuple[str, ...]:
    """A bundle's path, checked: plain names under lessons/ or solutions/, nothing above."""
    parts = PurePosixPath(relative).parts
    if (len(parts) < 2 or parts[0] not in ("lessons", "solutions")
            or any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts)):
        raise LessonError(f"a lesson bundle holds {relative!r}: not a path inside a lesson")
    return parts
