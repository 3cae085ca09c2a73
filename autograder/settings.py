"""The engine's settings: devices, deadlines, budgets and limits, the same for every lesson.

What is checked (targets, checks, weights, cases, tolerances, the self-check's seed, default
points) is each lesson's, in its folder (`lesson.py`). Points and seeds are resolved in one
place each (`resolve.py`), used alike by the in-notebook self-check, `check` and `grade`.
"""

from __future__ import annotations

import os

#: What `--device` asks for: "cpu" never touches a GPU; "cuda" needs one (unusable without);
#: "all" uses one where the student's process finds it. Each runs the GPU-readiness cases.
DEVICE_CHOICES: tuple[str, ...] = ("all", "cpu", "cuda")

def _from_env(name: str, default: float) -> float:
    """A limit an operator (or a test) may set in the environment, e.g. AUTOGRADER_CELLS_TIMEOUT."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


#: What a warm parent imports once for all the students' processes it forks (batch grading).
#: The graded process runs the answers and only the lesson code they need (`program.py`).
PRELOAD: tuple[str, ...] = ("torch",)

#: Seconds of wall-clock time: the program's cells, then each target's calls. A student's
#: process still running then is killed (SIGKILL), with everything it started.
CELLS_TIMEOUT = _from_env("AUTOGRADER_CELLS_TIMEOUT", 60.0)
TARGET_TIMEOUT = _from_env("AUTOGRADER_TARGET_TIMEOUT", 10.0)

#: Seconds a process of the grader's may take to start, before any of the student's code runs
#: (a cold one imports torch): not counted in the deadlines above.
START_TIMEOUT = _from_env("AUTOGRADER_START_TIMEOUT", 60.0)

#: Budgets of one submission, all its restarts together, whatever its code says or does: seconds
#: of wall-clock time, seconds of CPU, and restarts (a process that died or hung in a cell runs
#: again without that cell; in a target, without that target).
SUBMISSION_TIMEOUT = _from_env("AUTOGRADER_SUBMISSION_TIMEOUT", 120.0)
SUBMISSION_CPU = _from_env("AUTOGRADER_SUBMISSION_CPU", 120.0)
MAX_RESTARTS = 3
#: Bytes of what the student's code prints that are kept, per stream, all restarts together.
MAX_OUTPUT = 1 << 20

#: Limits of a student's process (see `autograder/sandbox/layers.py`). Memory is address space
#: where no cgroup applies: CPU-only torch maps about 0.7 GiB just by being imported.
MEMORY_LIMIT = int(_from_env("AUTOGRADER_MEMORY_LIMIT", 2 << 30))  # bytes
CPU_TIME_LIMIT = int(_from_env("AUTOGRADER_CPU_TIME_LIMIT", 120))  # seconds of CPU, per process
FILE_SIZE_LIMIT = int(_from_env("AUTOGRADER_FILE_SIZE_LIMIT", 64 << 20))  # bytes, per file
PROCESS_LIMIT = int(_from_env("AUTOGRADER_PROCESS_LIMIT", 128))  # processes and threads
#: The student's one writable place, its own /tmp (where namespaces apply): bytes and files.
WORK_BYTES = int(_from_env("AUTOGRADER_WORK_BYTES", 64 << 20))
WORK_FILES = int(_from_env("AUTOGRADER_WORK_FILES", 4096))


def lanes_for(device: str) -> tuple[str, ...]:
    """The lanes a `--device` choice runs (see `DEVICE_CHOICES`)."""
    if device not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {device!r}: one of {', '.join(DEVICE_CHOICES)}")
    return ("cpu", "gpu-ready") if device == "cpu" else ("cpu", "gpu-ready", "cuda")


class DeviceUnavailable(RuntimeError):
    """`--device cuda` where the student's process finds no GPU."""
