"""`autograder demo [DIR]`: the story on a sample, in one command."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from .. import spec
from . import samples
from .release import release

#: One student's notebook: everything right but the classic mse_grad slip.
SAMPLE = {**samples.CORRECT,
          "mse_grad": "def mse_grad(inp, targ):\n"
                      "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"}


def demo(course: str | Path, console: Console) -> int:
    from ..cli import print_report
    from ..engine import check_notebook

    course = Path(course)
    released = release(course)
    console.print(f"released with nbgrader: {released}", highlight=False)
    nb = samples.fill(json.loads(released.read_text()), SAMPLE)
    path = samples.write(nb, course / "submitted" / "sample" / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME)
    console.print(f"checking a sample submission: {path}", highlight=False)
    report = check_notebook(path)
    print_report(report, console)
    return 0
