"""What a graded cell and its notes say (preprocessor.py), and math without network
(offline_math.py): the parts of the feedback page and formgrader that need no course."""

from __future__ import annotations

import nbformat

from autograder.course.offline_math import markdown_with_mathml
from autograder.course.preprocessor import graded_output, notes_for_student
from autograder.judge.devices import describe
from autograder.present.report import CheckResult, Report

CHECKS = ("values-float64", "batch-of-one", "values-float32", "no-autograd")


def report(lanes: dict, codes: tuple[str, ...] = ("mse_grad.missing_factor_2",)) -> Report:
    checks = [CheckResult(f"mse_grad/{name}", "mse_grad", name == "no-autograd",
                          0.5 if name == "no-autograd" else 0.0, 0.5,
                          "passed" if name == "no-autograd" else f"inp.g is half ({name})",
                          [] if name == "no-autograd" else list(codes)) for name in CHECKS]
    devices = {"cpu": "passed", "cuda": "not available here", "gpu-ready": "passed",
               "gpu-ready-backend": "meta", **lanes}
    return Report(checks, notes=[describe(devices), "sandbox: namespaces, seccomp",
                                 "cell 3 raised NameError"], devices=devices)


def test_a_graded_cell_says_one_mistake_once_with_its_checks_and_codes_on_their_own_line():
    out = graded_output(report({"cpu": "failed", "gpu-ready": "failed"}), "mse_grad")
    text = out.data["text/plain"].splitlines()  # wrapped at 88 columns
    assert text[0] == "mse_grad: 0.5 / 2"
    # Messages that differ by check: the line names the check whose words it gives.
    assert text[1:3] == ["  FAIL values-float64, batch-of-one, values-float32: in values-float64, "
                         "inp.g is half", "       (values-float64)"]
    assert text[3] == "       mistakes: mse_grad.missing_factor_2"
    assert text[4] == "  pass: no-autograd" and len(text) == 5
    html = out.data["text/html"]
    assert html.count('class="autograder-mistake"') == 1 and "pre-wrap" in html
    assert "(0/0.5)" not in html and "(0/0.5)" not in out.data["text/plain"]


def test_a_message_is_escaped_in_the_graded_cell():
    r = report({})
    r.checks[0].message = "<script>alert(1)</script>"
    r.checks[0].mistakes = ["mse_grad.other"]
    html = graded_output(r, "mse_grad").data["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_notes_say_the_devices_only_where_a_device_failed_for_a_device_reason():
    # Wrong everywhere (the factor 2): the device line says nothing about the code.
    assert notes_for_student(report({"cpu": "failed", "gpu-ready": "failed"})) == [
        "cell 3 raised NameError"]
    # Right on the CPU, wrong on the GPU's stand-in: said, without the backend's name.
    said = notes_for_student(report({"gpu-ready": "failed"}))
    assert said[0].startswith("not yet ready for a GPU: see the gpu-ready checks")
    # Mixed devices, named by its code: said even where the CPU fails too.
    said = notes_for_student(report({"cpu": "failed", "gpu-ready": "failed"},
                                    ("mse_grad.wrong_device",)))
    assert said[0].startswith("not yet ready for a GPU") and "meta" not in said[0]
    assert not any("sandbox" in n for n in said)


def test_math_becomes_mathml_and_code_and_prices_keep_their_dollars():
    out = markdown_with_mathml(r"ReLU is $\max(x, 0)$; $$\frac{1}{N}$$ and `a$b$c` cost $5 or $10.")
    assert out.count("<math ") == 2 and 'display="block"' in out
    assert "`a$b$c`" in out and "$5 or $10" in out and r"\max" not in out
    fenced = "```\nx = $y$\n```\n"
    assert markdown_with_mathml(fenced) == fenced
    assert "one_hot" in markdown_with_mathml(r"$\text{one\_hot}$")
    assert "\\" not in markdown_with_mathml(r"$\text{one\_hot}$").split("one_hot")[0][-5:]


def test_a_notes_cell_is_escaped_and_wraps():
    from autograder.course.preprocessor import notes_cell

    cell = notes_cell(nbformat.v4.new_notebook(), "Notes", ["line <b>1</b>"])
    assert "&lt;b&gt;1&lt;/b&gt;" in cell.source and "pre-wrap" in cell.source


def test_a_graded_cell_shows_the_checks_that_wait_on_their_own_line():
    r = report({})
    waiting = CheckResult("mse_grad/inputs-unchanged", "mse_grad", False, 0.0, 0.5, "waits",
                          ["mse_grad.missing_factor_2"], state="waiting",
                          waits_for="values-float64")
    r.checks.append(waiting)
    out = graded_output(r, "mse_grad")
    assert "  waiting for the right values (values-float64): inputs-unchanged" in \
        out.data["text/plain"].splitlines()
    html = out.data["text/html"]
    assert html.count('class="autograder-waiting"') == 1 and "inputs-unchanged" in html
