"""The student side where the platform has no namespaces and no fork (Windows, macOS, a locked-down
container): `autograder check` and the in-notebook self-check import and run, with the layers
that platform has, and say which apply.

This machine is Linux; a `sitecustomize.py` on PYTHONPATH takes the Linux-only parts away from
the grader's Python before anything is imported: `os.fork`, `os.unshare`, `os.setns`, the C
library of the process itself (`ctypes.CDLL(None)` raises, as on Windows), `resource`, `fcntl` and the
libseccomp bindings. The student's process is a fresh `python -I`, which never reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORRECT, REPO, target_mistakes, target_points

pytestmark = pytest.mark.sandbox

NOT_LINUX = '''
import ctypes, os, sys

for name in ("fork", "forkpty", "unshare", "setns", "pidfd_open"):
    if hasattr(os, name):
        delattr(os, name)
for name in ("resource", "fcntl", "seccomp", "pyseccomp"):
    sys.modules[name] = None  # `import resource` raises ImportError


class _NoOwnLibrary(ctypes.CDLL):
    """A library by its path loads (torch's); this process's own, `CDLL(None)`, raises as on
    Windows."""

    def __init__(self, name, *args, **kwargs):
        if name is None:
            raise TypeError("LoadLibrary() argument 1 must be str, not None")
        super().__init__(name, *args, **kwargs)


ctypes.CDLL = _NoOwnLibrary
'''

WRONG_MSE = "def mse_grad(inp, targ):\n    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1)\n"


def without_linux(tmp_path: Path) -> dict[str, str]:
    """The environment of a grader's Python that lacks the Linux-only parts."""
    folder = tmp_path / "not-linux"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(NOT_LINUX)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def test_the_stand_in_takes_the_linux_parts_away(tmp_path):
    code = ("import ctypes, os\n"
            "try:\n    import resource\nexcept ImportError:\n    resource = None\n"
            "try:\n    ctypes.CDLL(None)\nexcept TypeError:\n    print('no libc')\n"
            "print(hasattr(os, 'fork'), hasattr(os, 'unshare'), resource)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=without_linux(tmp_path))
    assert done.stdout.split("\n")[:2] == ["no libc", "False False None"], done.stderr


def test_check_grades_with_the_layers_this_platform_has_and_says_which(make_notebook,
                                                                     tmp_path):
    path = make_notebook({"mse_grad": WRONG_MSE})
    done = subprocess.run([sys.executable, "-m", "autograder", "check", str(path), "--json"],
                          capture_output=True, text=True, env=without_linux(tmp_path))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert target_points(report) == {"mse_grad": 0.0, "relu_grad": 2.0, "lin_grad": 3.0,
                                      "module_backward": 3.0}
    assert "mse_grad.not_averaged" in target_mistakes(report, "mse_grad")
    sandbox = next(n for n in report["notes"] if n.startswith("sandbox: "))
    assert "namespaces (" not in sandbox and "seccomp" not in sandbox
    assert "no resource limits (this platform has no `resource` module)" in sandbox
    assert "cold start" in sandbox


def test_check_require_isolation_refuses_in_one_line(make_notebook, tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "check",
                           str(make_notebook()), "--require-isolation"],
                          capture_output=True, text=True, env=without_linux(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("autograder: --require-isolation: the sandbox's namespaces "
                                  "are not available here")


def test_the_self_check_runs_without_the_linux_parts(tmp_path):
    code = ("import sys, torch\n"
            "from autograder.selfcheck import self_check\n"
            f"exec({CORRECT['mse_grad']!r})\n"
            "self_check('mse_grad', mse_grad)\n"
            "print('linux parts loaded:', sorted(m for m in sys.modules\n"
            "      if m.startswith('autograder.sandbox.jail') or m == 'autograder.sandbox.forkserver'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=without_linux(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "mse_grad: all " in done.stdout
    assert "linux parts loaded: []" in done.stdout
