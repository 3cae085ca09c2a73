"""The in-notebook self-check: the grader's checks in the student's kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from autograder.course import samples
from autograder.selfcheck import SelfCheckFailed, run_self_check, self_check
from tests.conftest import CORRECT


def namespace_of(source: str) -> dict:
    ns: dict = {"torch": torch}
    exec(source, ns)
    return ns


@pytest.mark.parametrize("target,name", [("mse_grad", "mse_grad"), ("relu_grad", "relu_grad"),
                                         ("lin_grad", "lin_grad"), ("module_backward", "Module")])
def test_a_correct_answer_passes_and_says_so(target, name, capsys):
    assert run_self_check(target, namespace_of(CORRECT[target])[name]).passed
    assert self_check(target, namespace_of(CORRECT[target])[name]) is None
    assert f"{target}: all " in capsys.readouterr().out


def test_a_wrong_answer_raises_with_the_same_message_as_the_grader(capsys):
    ns = namespace_of("def mse_grad(inp, targ):\n    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1)\n")
    with pytest.raises(SelfCheckFailed, match="mse_grad: .* checks fail") as raised:
        self_check("mse_grad", ns["mse_grad"])
    out = " ".join(capsys.readouterr().out.split())
    # One line per distinct mistake, naming the checks it covers, as `autograder check` does.
    assert out.count("mse is a mean, so divide by N = inp.shape[0]") == 1
    assert "FAIL values-float64, values-float32: in values-float64, inp.g is" in out
    # The checks that need the right values first wait for them: one mistake, said once.
    assert ("waiting for the right values (values-float64): batch-of-one, inputs-unchanged, "
            "gpu-ready") in out
    assert "mistakes: mse_grad.missing_factor_2, mse_grad.not_averaged, mse_grad.wrong_values" in out
    # The devices line: wrong values are not a device fault, and no "meta" or CUDA-less noise.
    assert "devices: your code keeps tensors on their device" in out
    assert "meta" not in out and "not available here" not in out
    # In a notebook: one line, not a traceback into the grader.
    assert raised.value._render_traceback_() == [f"SelfCheckFailed: {raised.value}"]


@pytest.mark.sandbox  # a fresh Python
def test_the_self_check_imports_with_only_torch():
    # No nbgrader, nbformat, typer or rich may be needed by the engine (GPU machines lack them).
    assert in_a_fresh_python(
        "import sys\n"
        "for name in ('nbgrader', 'nbformat', 'typer', 'rich', 'IPython', 'sklearn'):\n"
        "    sys.modules[name] = None\n"
        "from autograder.selfcheck import self_check\n"
        "from autograder.engine import check_notebook\n"
        "print('ok')\n") == "ok"


@pytest.mark.sandbox  # a fresh Python
def test_the_self_check_runs_where_the_sandbox_cannot_even_be_imported():
    # As on Windows, where the jail's import-time ctypes.CDLL(None) fails: the self-check judges
    # in the student's kernel and needs no sandbox module at all.
    assert in_a_fresh_python(
        "import sys\n"
        "class NoSandbox:\n"
        "    @staticmethod\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        if name.startswith('autograder.sandbox'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoSandbox())\n"
        "from autograder.selfcheck import run_self_check\n"
        "def mse_grad(inp, targ):\n"
        "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"
        "report = run_self_check('mse_grad', mse_grad, device='cpu')\n"
        "print(report.score, report.max_score)\n") == "2.0 2.0"


def in_a_fresh_python(code: str) -> str:
    """What `code` prints in a new Python process (its errors, if it fails)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_nbgrader_validate_reports_a_failing_self_check(released, tmp_path):
    wrong = samples.fill(released, {**CORRECT,
                                    "mse_grad": "def mse_grad(inp, targ):\n    inp.g = 0 * inp\n"})
    right = samples.fill(released, CORRECT)
    results = {}
    for name, nb in (("wrong", wrong), ("right", right)):
        path = samples.write(nb, tmp_path / name / "backward.ipynb")
        done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)],
                              capture_output=True, text=True)
        results[name] = done.stdout + done.stderr
    assert "Success! Your notebook passes all the tests." in results["right"]
    assert "VALIDATION FAILED" in results["wrong"]
    assert "mse_grad" in results["wrong"]  # the failing self-check names its target


def test_a_class_defined_in_a_notebook_cell_has_its_source_read(capsys):
    # IPython keeps each cell's lines in linecache under a file name of its own, where
    # inspect cannot find a class: the self-check reads it there, as `check` reads the cell.
    import linecache

    source = "import torch\n" + CORRECT["module_backward"]
    name = "/tmp/ipykernel_0000/2178309.py"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)
    report = run_self_check("module_backward", namespace["Module"])
    gate = next(c for c in report.checks if c.id == "module_backward/no-autograd")
    assert gate.passed and gate.message.startswith("written by hand"), gate.message
    with_autograd = source.replace("        self.bwd(self.out, *self.args)\n",
                                   "        self.out.sum().backward()\n")
    linecache.cache[name] = (len(with_autograd), None, with_autograd.splitlines(True), name)
    exec(compile(with_autograd, name, "exec"), namespace)
    report = run_self_check("module_backward", namespace["Module"])
    assert "module_backward.uses_autograd" in report.mistakes()


def test_a_wrong_shape_is_not_told_as_a_device_fault(capsys):
    # w.g transposed: its stand-in CUDA call has the wrong shape too, as on the CPU, and its
    # tensors on their device; the device line says so, not "not yet ready for a GPU".
    source = ("def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
              "    w.g = out.g.t() @ inp\n    b.g = out.g.sum(0)\n")
    with pytest.raises(SelfCheckFailed):
        self_check("lin_grad", namespace_of(source)["lin_grad"])
    out = " ".join(capsys.readouterr().out.split())
    assert "lin_grad.weight_transposed" in out
    assert "devices: your code keeps tensors on their device" in out
    assert "not yet ready for a GPU" not in out
    # A tensor made on the CPU is a device fault still, beside the same wrong shape.
    cpu_made = source.replace("out.g.t() @ inp", "(out.g.t() @ inp).cpu()")
    with pytest.raises(SelfCheckFailed):
        self_check("lin_grad", namespace_of(cpu_made)["lin_grad"])
    assert "devices: not yet ready for a GPU" in " ".join(capsys.readouterr().out.split())
