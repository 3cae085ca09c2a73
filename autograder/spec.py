"""The one source of truth for what is checked: targets, checks, weights, tolerances, seeds.

Points per target live in the source notebook's grade cells (nbgrader metadata), where an
instructor edits them; a check's share of its target's points is its weight over the target's
total weight. Everything else about grading lives here and is used alike by the in-notebook
self-check, `autograder check` and `autograder grade`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

ASSIGNMENT_ID = "backward"
NOTEBOOK_NAME = "backward.ipynb"

#: Targets, in the order the lesson introduces them.
TARGETS: tuple[str, ...] = ("mse_grad", "relu_grad", "lin_grad", "module_backward")

#: What each target's answer defines: the function, or the class, the grader calls.
ENTRIES: dict[str, str] = {"mse_grad": "mse_grad", "relu_grad": "relu_grad",
                           "lin_grad": "lin_grad", "module_backward": "Module"}

#: Points used only when no notebook says otherwise (the source notebook is the real place).
FALLBACK_POINTS: dict[str, float] = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}

#: The grade cell that carries a target's points is named after it.
def grade_cell_id(target: str) -> str:
    return f"check_{target}"


#: Largest relative error allowed, measured as max|got - true| / max(max|true|, 1). The same on
#: CUDA: the runner turns TF32 off before each call, so float32 matmuls keep float32 precision.
TOLERANCES: dict[str, float] = {"float64": 1e-9, "float32": 1e-4}

#: What `--device` asks for: "cpu" never touches a GPU; "cuda" needs one (unusable without);
#: "all" uses one where the student's process finds it. Each runs the GPU-readiness cases.
DEVICE_CHOICES: tuple[str, ...] = ("all", "cpu", "cuda")

#: Seed of the in-notebook self-check. `check` draws a fresh seed each run (`--seed` repeats
#: one); `grade` draws each student's inputs from the course's secret seed (in its
#: nbgrader_config.py) and the student id, so that a regrade repeats them. Either way an answer
#: hard-coded for known inputs fails.
SELF_CHECK_SEED = 2019

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

#: Limits of a student's process (see `autograder/sandbox/limits.py`). Memory is address space
#: where no cgroup applies: CPU-only torch maps about 0.7 GiB just by being imported.
MEMORY_LIMIT = int(_from_env("AUTOGRADER_MEMORY_LIMIT", 2 << 30))  # bytes
CPU_TIME_LIMIT = int(_from_env("AUTOGRADER_CPU_TIME_LIMIT", 120))  # seconds of CPU, per process
FILE_SIZE_LIMIT = int(_from_env("AUTOGRADER_FILE_SIZE_LIMIT", 64 << 20))  # bytes, per file
PROCESS_LIMIT = int(_from_env("AUTOGRADER_PROCESS_LIMIT", 128))  # processes and threads
#: The student's one writable place, its own /tmp (where namespaces apply): bytes and files.
WORK_BYTES = int(_from_env("AUTOGRADER_WORK_BYTES", 64 << 20))
WORK_FILES = int(_from_env("AUTOGRADER_WORK_FILES", 4096))


@dataclass(frozen=True)
class Case:
    """One call of a student's function: its sizes, dtype and device.

    `n` is the batch size, `n_in`/`n_out` a linear layer's sizes (`n_out` is also the width of a
    ReLU's input), and `zeros` puts exact zeros where a ReLU's subgradient is ambiguous.
    `device="cuda"` runs on a real GPU, only where the student's process has one; with `fake`,
    it runs anywhere on fake CUDA tensors (FakeTensorMode, or `meta`), checking structure only.
    """

    n: int
    n_in: int = 5
    n_out: int = 3
    dtype: str = "float64"
    device: str = "cpu"
    zeros: bool = False
    fake: bool = False

    @property
    def lane(self) -> str:
        """Where the case runs: "cpu", "gpu-ready" (fake CUDA, any machine) or "cuda" (a GPU)."""
        return "gpu-ready" if self.fake else self.device.split(":")[0]


@dataclass(frozen=True)
class Check:
    """A sub-check of a target: it passes when every one of its cases does."""

    name: str
    weight: float
    # "values": gradients right; "unchanged": inputs not mutated; "probe": Module.backward;
    # "static": the source read, not run (a gate: when it fails, the target scores 0)
    kind: str
    cases: tuple[Case, ...] = field(default_factory=tuple)
    summary: str = ""

    def id(self, target: str) -> str:
        return f"{target}/{self.name}"


#: The gate: hand-written gradients, as plain code (`rules.py`). Weight 0, yet failing it takes
#: the target's points.
NO_AUTOGRAD = Check("no-autograd", 0, "static", (),
                    "written by hand: no .backward(), .grad, requires_grad or torch.autograd")


# Batch sizes: never N = 2, where a gradient not averaged (x N) or a bias averaged (x 1/N) could
# not be told from a missing factor 2 (x 1/2); N = 1 is its own check (the squeeze() trap).
def _gradient_checks(zeros: bool = False) -> tuple[Check, ...]:
    return (
        NO_AUTOGRAD,
        Check("values-float64", 4, "values",
              (Case(n=3, n_in=5, n_out=4, zeros=zeros), Case(n=8, n_in=3, n_out=6, zeros=zeros)),
              "the gradient matches autograd in float64, at two batch sizes, non-square layers"
              + (", exact zeros (where either subgradient, 0 or 1, is accepted)" if zeros else "")),
        Check("batch-of-one", 2, "values", (Case(n=1, n_in=4, n_out=2),),
              "a batch of one sample (N = 1) works"),
        Check("values-float32", 2, "values", (Case(n=6, n_in=7, n_out=5, dtype="float32"),),
              "float32 inputs give a float32 gradient that matches"),
        Check("inputs-unchanged", 1, "unchanged", (Case(n=4, n_in=6, n_out=3),),
              "the right gradient, leaving the inputs and the upstream gradient unchanged"),
        # The same points on every machine: the fake-CUDA cases always run; on a GPU the real
        # CUDA cases are extra cases of this check (a .g must also match the float64 truth).
        # The CPU case first: a GPU-ready wrong gradient earns nothing, as for inputs-unchanged.
        Check("gpu-ready", 1, "values",
              (Case(n=4, n_in=6, n_out=3, zeros=zeros),
               Case(n=4, n_in=6, n_out=3, device="cuda", fake=True, zeros=zeros),
               Case(n=5, n_in=3, n_out=4, dtype="float32", device="cuda", fake=True),
               Case(n=3, n_in=5, n_out=4, device="cuda", zeros=zeros),
               Case(n=6, n_in=7, n_out=5, dtype="float32", device="cuda")),
              "the right gradient, and the code runs on a GPU: each .g on its tensor's device"),
    )


def _probe_checks() -> tuple[Check, ...]:
    return (
        NO_AUTOGRAD,
        Check("one-input", 1, "probe", (Case(n=1),),
              "backward() calls bwd(out, inp) for a layer with one input"),
        Check("two-inputs", 1, "probe", (Case(n=2), Case(n=2, device="cuda")),
              "backward() calls bwd(out, inp, targ) for a layer with two inputs"),
        Check("latest-call", 1, "probe", (Case(n=3),),
              "after two calls, backward() uses the latest out and args"),
    )


CHECKS: dict[str, tuple[Check, ...]] = {
    "mse_grad": _gradient_checks(),
    "relu_grad": _gradient_checks(zeros=True),
    "lin_grad": _gradient_checks(),
    "module_backward": _probe_checks(),
}


def lanes_for(device: str) -> tuple[str, ...]:
    """The lanes a `--device` choice runs (see `spec.DEVICE_CHOICES`)."""
    if device not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {device!r}: one of {', '.join(DEVICE_CHOICES)}")
    return ("cpu", "gpu-ready") if device == "cpu" else ("cpu", "gpu-ready", "cuda")


class DeviceUnavailable(RuntimeError):
    """`--device cuda` where the student's process finds no GPU."""
