"""Why a student's process ended, in words that name the limit it hit (trusted side).

The runner reports an error as plain data; it cannot know the grader's limits, so an error that
is a limit (memory, file size, the working folder's size) is told here which one. A process that
ended without a word is classed from its exit status and the end of its standard error: timeout,
memory or crashed.
"""

from __future__ import annotations

import signal

from .layers import Limits

MEMORY_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "can't allocate memory",
                "out of memory")


def ran_out_of_memory(error: object) -> bool:
    if not isinstance(error, dict):
        return False
    text = f"{error.get('type')}: {error.get('message')}"
    return any(sign in text for sign in MEMORY_SIGNS)


def name_the_limit(error: object, limits: Limits) -> None:
    """An error that is a limit says so, with the limit (the runner cannot know it)."""
    if ran_out_of_memory(error):
        error["type"] = "MemoryError"
        error["limit"] = f"the memory limit is {limits.memory_text()}"
    elif isinstance(error, dict) and "File too large" in str(error.get("message")):
        error["limit"] = f"the file size limit is {limits.file_size >> 20} MiB"
    elif isinstance(error, dict) and "No space left on device" in str(error.get("message")):
        error["limit"] = (f"its folder holds {limits.work_bytes >> 20} MiB and "
                          f"{limits.work_files} files")


def why_it_ended(returncode: int | None, timed_out: bool, limit: float, limits: Limits,
                 stderr_tail: str = "") -> tuple[str, str]:
    """Timeout, memory or crashed, with the limit that was hit where one was."""
    if timed_out:
        return "timeout", f"still running after {limit:g} s (the time limit)"
    if any(sign in stderr_tail for sign in MEMORY_SIGNS):
        return "memory", f"the process ran out of memory (the memory limit is {limits.memory_text()})"
    if returncode is not None and returncode < 0:
        number = -returncode
        sig = signal.Signals(number).name if number in signal.valid_signals() else number
        if number == getattr(signal, "SIGXCPU", None):
            return "crashed", (f"the process was killed by {sig}: it used more than "
                               f"{limits.cpu_seconds} s of CPU (the CPU time limit)")
        return "crashed", f"the process was killed by {sig}"
    if returncode is not None and returncode >= 128 and returncode - 128 in signal.valid_signals():
        return why_it_ended(128 - returncode, False, limit, limits)  # a signal, told by a wrapper
    return "crashed", f"the process exited with code {returncode}"
