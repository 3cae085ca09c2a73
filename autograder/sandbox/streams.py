"""The threads on the pipes of a student's process (trusted side): what it prints, kept within a
budget, and what the grader sends it, written without ever blocking the grader."""

from __future__ import annotations

import os
import threading


class Output:
    """One stream of what the student's processes print, all of them together: the first
    `budget` bytes are kept, the rest counted."""

    def __init__(self, budget: int) -> None:
        self.kept, self.dropped, self.left = bytearray(), 0, budget
        self.lock = threading.Lock()

    def take(self, chunk: bytes) -> None:
        with self.lock:
            room = min(self.left, len(chunk))
            self.kept += chunk[:room]
            self.left -= room
            self.dropped += len(chunk) - room

    def text(self) -> str:
        note = f"\n[... {self.dropped} more bytes not kept]" if self.dropped else ""
        return self.kept.decode("utf-8", "replace") + note


class Capture(threading.Thread):
    """Drains a pipe so that a flood never blocks the student, into a shared `Output`."""

    def __init__(self, stream, output: Output) -> None:
        super().__init__(daemon=True)
        self.stream, self.output, self.tail = stream, output, b""

    def run(self) -> None:
        while chunk := self.stream.read1(65536):
            self.output.take(chunk)
            self.tail = (self.tail + chunk)[-4096:]  # how it ended, even after a flood


class Sender(threading.Thread):
    """Writes the first frames, then (once drawn) the work, on the student's standard input: a
    frame larger than the pipe holds never blocks the grader."""

    def __init__(self, fd: int, first: bytes) -> None:
        super().__init__(daemon=True)
        self.fd, self.frames = fd, [first]
        self.ready = threading.Event()

    def then(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.ready.set()

    def run(self) -> None:
        try:
            self._write(self.frames[0])
            self.ready.wait()
            self._write(self.frames[1])
        except OSError:  # the process ended first
            pass
        finally:
            os.close(self.fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
