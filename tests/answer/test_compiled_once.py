"""The grader compiles a job's cells for the answer language's guards, each distinct cell once in
its process (a batch's lesson cells once per worker, not once per student), and the student's
process runs that code; where it is another Python, the student's process compiles the cells
itself and the report is the same."""

from __future__ import annotations

import pytest

from autograder.answer import compiler
from tests.conftest import CORRECT, check_report, target_points

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}

#: Appended, on the grader's side only, to the cell that defines mse_grad: a wrong gradient.
WRONG_MSE = "\ndef mse_grad(inp, targ):\n    inp.g = 3. * (inp.squeeze() - targ).unsqueeze(-1) / inp.shape[0]\n"


@pytest.fixture
def compiles(monkeypatch):
    """The names of the cells the grader compiles, from an empty cache; the mse_grad cell is
    compiled with a wrong gradient appended, so that a report shows whose code ran."""
    names: list[str] = []
    real = compiler.compile_cell

    def counted(source: str, name: str):
        names.append(name)
        if "def mse_grad" in source:
            source += WRONG_MSE
        return real(source, name)

    compiler._compiled.cache_clear()
    monkeypatch.setattr(compiler, "compile_cell", counted)
    yield names
    compiler._compiled.cache_clear()


@pytest.mark.sandbox
def test_the_students_process_runs_the_code_the_grader_compiled(make_notebook, compiles):
    _, report = check_report(make_notebook(CORRECT))
    assert target_points(report)["mse_grad"] == 0.0, report  # the grader's code, not the cell's
    assert target_points(report)["lin_grad"] == FULL["lin_grad"]


@pytest.mark.sandbox
def test_a_second_hand_in_compiles_only_its_new_cells(make_notebook, compiles):
    check_report(make_notebook(CORRECT))
    first = list(compiles)
    assert len(first) >= 4, first  # the cells that run: the lesson's and the answers
    compiles.clear()
    relu = CORRECT["relu_grad"].replace("inp > 0", "0 < inp")
    assert relu != CORRECT["relu_grad"]
    _, report = check_report(make_notebook({**CORRECT, "relu_grad": relu}))
    assert len(compiles) == 1 and compiles[0] in first, compiles  # the one cell that changed
    assert target_points(report)["relu_grad"] == FULL["relu_grad"]


@pytest.mark.sandbox
def test_another_pythons_code_is_not_run_the_cells_are_compiled_again(make_notebook, compiles,
                                                                       monkeypatch):
    monkeypatch.setattr(compiler, "MAGIC", "another Python")
    _, report = check_report(make_notebook(CORRECT))
    assert target_points(report) == FULL, report  # compiled in the student's process, from the cells

