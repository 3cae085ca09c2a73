"""A failing self-check in a notebook: Run All goes on, and Validate shows the diagnosis itself."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.course import samples
from tests.conftest import CORRECT

#: The commonest mistake: the factor 2 of d/dx (x - t)^2 left out.
NO_FACTOR_2 = ("def mse_grad(inp, targ):\n"
               "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")


def outputs_of(cell) -> tuple[str, str]:
    """(stdout, stderr) of a cell, as the notebook shows them."""
    said = {"stdout": "", "stderr": ""}
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            said[output["name"]] += output["text"]
    return said["stdout"], said["stderr"]


@pytest.mark.slow
def test_run_all_goes_past_a_failing_self_check_to_every_later_one(released, tmp_path):
    # Run All, as JupyterLab does it: the kernel runs the cells in order and stops at the first
    # error (nbclient with allow_errors=False stops the same way).
    nb = samples.fill(released, {**CORRECT, "mse_grad": NO_FACTOR_2})
    path = samples.write(nb, tmp_path / "backward.ipynb")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    checks = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell
              for cell in notebook.cells if cell.cell_type == "code"}
    out, err = outputs_of(checks["check_mse_grad"])
    flat = " ".join(out.split())
    # The diagnosis, whole, and one clear line that it failed (not a traceback).
    assert "inp.g is half of the true gradient" in flat and "mse_grad.missing_factor_2" in flat
    assert err.strip().startswith("self-check failed: mse_grad: "), err
    assert "the cells below still run" in err and "Traceback" not in out + err
    # Every later self-check ran, and says so.
    for target in ("relu_grad", "lin_grad", "module_backward"):
        later, later_err = outputs_of(checks[f"check_{target}"])
        assert f"{target}: all " in later and not later_err, (target, later, later_err)


@pytest.mark.slow
def test_nbgrader_validate_shows_the_diagnosis_itself(released, tmp_path):
    nb = samples.fill(released, {**CORRECT, "mse_grad": NO_FACTOR_2})
    path = samples.write(nb, tmp_path / "backward.ipynb")
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)],
                          capture_output=True, text=True, timeout=900)
    said = done.stdout + done.stderr
    assert "VALIDATION FAILED" in said
    # What "(see above)" points at is there: the report's mistake, in the student's words.
    error = said.split("The error was:", 1)[1]
    assert "inp.g is half of the true gradient" in " ".join(error.split()), said
    assert error.index("mse_grad.missing_factor_2") < error.index("(see above)"), said
