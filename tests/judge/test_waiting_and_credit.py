"""Issue 23, items 2 and 3: one mistake reads as one mistake (the checks that wait for the right
values say so, and earn nothing), and a target that sets several `.g` earns each one's share."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from autograder.course.gradescope import results
from autograder.lesson import model as lessons
from autograder.present.report import CheckResult, Report
from autograder.selfcheck import SelfCheckFailed, run_self_check, self_check
from tests.conftest import check_report, target_points

NO_FACTOR_2 = ("import torch\ndef mse_grad(inp, targ):\n"
               "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]\n")
REQUIRES_GRAD = ("import torch\ndef lin_grad(inp, out, w, b):\n    inp.requires_grad_()\n"
                 "    inp.g = out.g @ w.t()\n    w.g = inp.t() @ out.g\n    b.g = out.g.sum(0)\n")
W_TRANSPOSED = ("import torch\ndef lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                "    w.g = out.g.t() @ inp\n    b.g = out.g.sum(0)\n")
STUB = "import torch\ndef lin_grad(inp, out, w, b):\n    pass\n"
#: inp.g and b.g right, w.g not: and out.g changed in place.
MUTATES = ("import torch\ndef lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
           "    w.g = out.g.t() @ inp\n    b.g = out.g.sum(0)\n    out.g.zero_()\n")


def load_function(tmp_path: Path, source: str, name: str):
    """`name` from a file, as a notebook's cell keeps it: its source readable, for the gate."""
    path = tmp_path / f"student_{abs(hash(source))}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def states(report: Report) -> dict[str, tuple[str, str]]:
    return {c.name: (c.state, c.waits_for) for c in report.checks}


def test_a_missing_factor_2_fails_the_values_and_the_rest_wait_for_them(tmp_path, capsys):
    report = run_self_check("mse_grad", load_function(tmp_path, NO_FACTOR_2, "mse_grad"))
    assert states(report) == {
        "no-autograd": ("passed", ""), "values-float64": ("failed", ""),
        "batch-of-one": ("waiting", "values-float64"), "values-float32": ("failed", ""),
        "inputs-unchanged": ("waiting", "values-float64"),
        "gpu-ready": ("waiting", "values-float64")}
    assert report.score == 0.0  # waiting earns nothing: the points rule stays
    with pytest.raises(SelfCheckFailed, match=r"mse_grad: 2 of 6 checks fail, 3 wait"):
        self_check("mse_grad", load_function(tmp_path, NO_FACTOR_2, "mse_grad"))
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert flat.count("inp.g is half of the true gradient") == 1  # one mistake, said once
    assert flat.count("mse_grad.missing_factor_2") == 1
    assert ("waiting for the right values (values-float64): batch-of-one, inputs-unchanged, "
            "gpu-ready") in flat
    assert "FAIL values-float64, values-float32:" in flat and "pass: no-autograd" in flat


def test_autograd_in_lin_grad_is_one_failed_gate_and_checks_waiting_for_it(tmp_path, capsys):
    report = run_self_check("lin_grad", load_function(tmp_path, REQUIRES_GRAD, "lin_grad"))
    assert report.score == 0.0  # the gate still takes all of the target's points
    assert states(report)["no-autograd"] == ("failed", "")
    assert {s for name, s in states(report).items() if name != "no-autograd"} == {
        ("waiting", "no-autograd")}
    assert report.head("lin_grad") == "lin_grad: 1 of 6 checks fail, 5 wait"
    text = report.student_text("lin_grad")
    assert "waiting for no-autograd: values-float64, batch-of-one, values-float32," in text
    assert text.count("lin_grad.uses_autograd") == 1 and "6 of 6" not in text
    # The per-check lines (formgrader's graded cell) say which check each waits for.
    assert "WAIT lin_grad/gpu-ready (0/0.3): waits for no-autograd" in report.target_text("lin_grad")


def test_lin_grad_with_w_transposed_earns_the_share_of_inp_g_and_b_g(tmp_path):
    report = run_self_check("lin_grad", load_function(tmp_path, W_TRANSPOSED, "lin_grad"))
    assert report.target_score("lin_grad") == (2.0, 3.0)
    for c in report.checks:
        if c.name != "no-autograd":  # each check: two thirds of its share, none passed in full
            assert c.points == pytest.approx(c.max_points * 2 / 3) and not c.passed
    assert states(report)["batch-of-one"] == ("waiting", "values-float64")
    stub = run_self_check("lin_grad", load_function(tmp_path, STUB, "lin_grad"))
    assert stub.target_score("lin_grad") == (0.0, 3.0)  # a stub earns nothing


def test_a_partly_right_gradient_earns_nothing_for_inputs_unchanged_where_it_changes_them(
        tmp_path):
    report = run_self_check("lin_grad", load_function(tmp_path, MUTATES, "lin_grad"))
    checks = {c.name: c for c in report.checks}
    assert checks["inputs-unchanged"].points == 0.0
    assert checks["values-float64"].points == pytest.approx(checks["values-float64"].max_points * 2 / 3)


def test_a_line_over_checks_with_different_numbers_says_whose_numbers_it_gives():
    said = "inp.g is N = 3 times the true gradient"
    report = Report([
        CheckResult("mse_grad/values-float64", "mse_grad", False, 0.0, 1.0, said, ["mse_grad.x"]),
        CheckResult("mse_grad/values-float32", "mse_grad", False, 0.0, 1.0,
                    "inp.g is N = 6 times the true gradient", ["mse_grad.x"]),
        CheckResult("relu_grad/values-float64", "relu_grad", False, 0.0, 1.0, said, ["relu_grad.x"]),
        CheckResult("relu_grad/values-float32", "relu_grad", False, 0.0, 1.0, said, ["relu_grad.x"]),
    ])
    (line,), _ = report.grouped("mse_grad")
    assert line == (["values-float64", "values-float32"],
                    f"in values-float64, {said}", ["mse_grad.x"])
    (line,), _ = report.grouped("relu_grad")
    assert line[1] == said  # the same words for every check: nothing to add


def test_a_report_without_states_reads_as_before():
    # A report kept before states existed: passed or failed, from `passed`.
    check = CheckResult("mse_grad/values-float64", "mse_grad", True, 1.0, 1.0, "right")
    assert check.state == "passed" and check.waits_for == ""
    assert json.loads(Report([check]).to_json())["checks"][0]["state"] == "passed"


def lesson_with(tmp_path: Path, credit: str) -> Path:
    folder = tmp_path / "backward"
    source = lessons.find("backward").folder
    text = (source / "lesson.toml").read_text()
    line = "credit = { inp = 1, w = 1, b = 1 }"
    assert line in text
    folder.mkdir()
    (folder / "lesson.toml").write_text(text.replace(line, credit))
    (folder / "lesson.py").write_text((source / "lesson.py").read_text())
    return folder


@pytest.mark.parametrize("credit,says", [
    ("credit = { inp = 1, w = 1 }", "credit names inp, w; it gives a weight to each .g"),
    ("credit = { inp = 1, w = 1, b = 1, out = 1 }", "credit names b, inp, out, w"),
    ('credit = { inp = 1, w = "one", b = 1 }', "credit for w is not a number"),
    ("credit = { inp = 0, w = 0, b = 0 }", "gives every .g a weight of 0"),
    ("credit = 3", "credit is not a table of weights"),
])
def test_a_credit_that_cannot_be_used_is_one_line(tmp_path, credit, says):
    with pytest.raises(lessons.LessonError, match=says) as raised:
        lessons.load(lesson_with(tmp_path, credit))
    assert "\n" not in str(raised.value) and "lin_grad's" in str(raised.value)


def test_credit_weights_are_the_lessons_and_all_or_nothing_without_them(tmp_path):
    weighted = lessons.load(lesson_with(tmp_path, "credit = { inp = 2, w = 1, b = 1 }"))
    assert weighted.target("lin_grad").credit == (("inp", 2.0), ("w", 1.0), ("b", 1.0))
    assert lessons.find("backward").target("mse_grad").credit == ()


@pytest.mark.sandbox
def test_check_grade_and_gradescope_give_the_self_checks_score(make_notebook, tmp_path):
    _, report = check_report(make_notebook({"lin_grad": W_TRANSPOSED}))
    assert target_points(report)["lin_grad"] == 2.0
    checks = [CheckResult(**c) for c in report["checks"]]
    data = results(Report(checks, lesson=report["lesson"]))
    assert [t["score"] for t in data["tests"] if t["name"] == "lin_grad"] == [2.0]
    own = run_self_check("lin_grad", load_function(tmp_path, W_TRANSPOSED, "lin_grad"))
    assert own.target_score("lin_grad") == (2.0, 3.0)
    assert {c["state"] for c in report["checks"] if c["target"] == "mse_grad"} == {"passed"}


def test_a_check_right_on_its_own_says_which_gradients_earn_while_it_waits(tmp_path):
    bias_averaged = ("import torch\ndef lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                     "    w.g = inp.t() @ out.g\n    b.g = out.g.mean(0)\n")
    report = run_self_check("lin_grad", load_function(tmp_path, bias_averaged, "lin_grad"))
    one = next(c for c in report.checks if c.name == "batch-of-one")  # at N = 1, mean is sum
    assert (one.state, one.waits_for) == ("waiting", "values-float64")
    assert one.message.startswith("only the points of inp.g, w.g while lin_grad/values-float64 fails")
    assert one.points == pytest.approx(one.max_points * 2 / 3)
    assert report.target_score("lin_grad") == (2.0, 3.0)


def test_checks_table_says_the_mistake_once_and_the_waiting_checks_on_their_own_line(tmp_path):
    from rich.console import Console

    from autograder.cli import print_report

    console = Console(width=200, record=True)
    print_report(run_self_check("lin_grad", load_function(tmp_path, W_TRANSPOSED, "lin_grad")),
                 console)
    table = console.export_text()
    assert table.count("lin_grad.weight_transposed") == 1 and "2 / 3" in table
    assert ("waiting for the right values (values-float64): batch-of-one, inputs-unchanged, "
            "gpu-ready") in table
