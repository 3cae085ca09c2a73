"""What a student reads when an answer does not run at all: a syntax error or a misspelt name is
said as Python says it, on every check of its target (the static one included), and the device
line says nothing of a GPU about code that never ran."""

from __future__ import annotations

import pytest

from tests.conftest import CORRECT, check_report

pytestmark = pytest.mark.sandbox

SYNTAX_ERROR = CORRECT["mse_grad"].replace("inp.shape[0]", "inp.shape[0")
NAME_ERROR = CORRECT["mse_grad"].replace("(inp.squeeze", "(inpt.squeeze")


def failing(report: dict, target: str) -> dict[str, dict]:
    return {c["id"]: c for c in report["checks"] if c["target"] == target and not c["passed"]}


def test_a_syntax_error_reads_as_python_says_it_on_every_check(make_notebook):
    _, report = check_report(make_notebook({"mse_grad": SYNTAX_ERROR}))
    checks = failing(report, "mse_grad")
    assert set(checks) >= {"mse_grad/no-autograd", "mse_grad/values-float64"}, checks
    for check in checks.values():
        assert "SyntaxError: '[' was never closed" in check["message"], check
        assert "answer language" not in check["message"], check
        assert "there is no mse_grad to read" not in check["message"], check
        assert check["mistakes"] == ["mse_grad.error"], check


@pytest.mark.parametrize("answer", [SYNTAX_ERROR, NAME_ERROR], ids=["syntax", "name"])
def test_code_that_never_ran_is_not_called_unready_for_a_gpu(make_notebook, answer):
    _, report = check_report(make_notebook({"mse_grad": answer}))
    assert failing(report, "mse_grad")
    notes = "\n".join(report["notes"])
    assert "not yet ready for a GPU" not in notes, notes
    assert "keeps tensors on their device" not in notes, notes
    assert report["devices"]["stand-in"] == "not run", report["devices"]
