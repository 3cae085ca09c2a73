"""What a student reads from `autograder check` that needs no sandbox: the device line's words,
the sandbox's layers only with --verbose, and the one line that says what an unusable file is.
In process and quick (the command itself: tests/check/test_check.py)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from autograder.answer.notebook import NotebookError, parse_notebook
from autograder.cli import print_report
from autograder.judge.devices import describe
from autograder.present.report import CheckResult, Report

SANDBOX = ("sandbox: namespaces (pid, mount, network, IPC, UTS); system calls filtered (seccomp); "
           "limits: 2 GiB memory")
NO_GPU = {"cpu": "failed", "gpu-ready": "failed", "cuda": "not available here",
          "gpu-ready-backend": "meta", "stand-in": "passed"}


def shown(report: Report, verbose: bool = False) -> str:
    out = io.StringIO()
    print_report(report, Console(file=out, width=200), verbose=verbose)
    return out.getvalue()


def half(devices: dict) -> Report:
    """mse_grad without the factor 2, as the engine reports it: its device line, the sandbox's."""
    check = CheckResult("mse_grad/values-float64", "mse_grad", False, 0.0, 1.0,
                        "inp.g is half of the true gradient", ["mse_grad.missing_factor_2"])
    notes = [n for n in (describe(devices), SANDBOX) if n]
    return Report([check], notes=notes, devices=devices)


def test_a_wrong_value_on_a_machine_without_a_gpu_is_one_plain_device_line():
    text = shown(half(NO_GPU))
    assert "devices: your code keeps tensors on their device (checked with stand-in CUDA " \
           "tensors, no GPU needed)" in text
    for word in ("meta", "GPU-readiness", "CUDA: not available", "not tried", "sandbox",
                 "seccomp", "namespaces"):
        assert word not in text


def test_verbose_adds_the_sandbox_and_why_real_cuda_did_not_run():
    text = shown(half(NO_GPU), verbose=True)
    assert "real CUDA was not tried: this machine has no GPU" in text
    assert SANDBOX in " ".join(text.split()) and "meta" not in text


def test_a_device_fault_says_so_and_why_real_cuda_did_not_run():
    said = describe({**NO_GPU, "stand-in": "failed"})
    assert said == ("not yet ready for a GPU: see the gpu-ready checks (run on stand-in CUDA "
                    "tensors, no GPU needed); real CUDA was not tried: this machine has no GPU")


@pytest.mark.parametrize("cuda", ["passed", "failed"])
def test_real_cuda_is_named_where_it_ran(cuda):
    said = describe({**NO_GPU, "cuda": cuda})
    assert said.endswith(f"; on this machine's GPU (real CUDA, TF32 off): {cuda}")


def test_device_cpu_is_said_only_with_verbose():
    devices = {**NO_GPU, "cuda": "not requested"}
    assert "not tried" not in describe(devices)
    assert describe(devices, verbose=True).endswith("real CUDA was not tried: --device cpu")


def test_no_stand_in_and_no_cuda_is_no_line():
    devices = {"cpu": "passed", "gpu-ready": "not run", "cuda": "not available here",
               "gpu-ready-backend": None, "stand-in": "not run"}
    assert describe(devices) == ""
    assert "devices:" not in shown(half(devices))


def test_a_report_kept_before_stand_in_reads_its_gpu_ready_lane():
    kept = {k: v for k, v in NO_GPU.items() if k != "stand-in"}
    assert describe(kept).startswith("not yet ready for a GPU")


@pytest.mark.parametrize("name,raw,said", [
    ("backward.ipynb", b"", "backward.ipynb is empty, not a notebook (was it saved?)"),
    ("backward.ipynb", b" \n\t", "backward.ipynb is empty, not a notebook (was it saved?)"),
    ("backward.py", b"def mse_grad(inp, targ):\n    inp.g = 2 * inp\n",
     "backward.py is a Python file, not a notebook: give the notebook itself, the .ipynb file"),
    ("backward.py", b"", "backward.py is a Python file, not a notebook: give the notebook "
                         "itself, the .ipynb file"),
    ("backward.html", b"<!DOCTYPE html>", "backward.html is a web page (HTML), not a notebook: "
                                          "give the notebook itself, the .ipynb file"),
    ("backward.ipynb", b'{"metadata": {}, "nbformat": 4}',
     "backward.ipynb is not a notebook: it is JSON, but has no cells"),
    ("backward.ipynb", b"[1, 2]", "backward.ipynb is not a notebook: it is JSON but not an object "
                                  "with cells"),
    ("backward.ipynb", b'{"cells": [', "backward.ipynb is not a notebook: it is not valid JSON "
                                       "(line 1)"),
])
def test_a_file_that_is_no_notebook_is_told_what_it_is(name, raw, said):
    with pytest.raises(NotebookError) as raised:
        parse_notebook(raw, name)
    assert str(raised.value) == said


def test_a_python_file_that_holds_a_notebook_is_read():
    assert parse_notebook(b'{"cells": [], "nbformat": 4}', "backward.py")["cells"] == []


# --- nothing a student reads runs past 88 columns -------------------------------------------------

LONG = ("in values-float64, w.g has shape (4, 5), the transpose of w's (5, 4): w.g = inp.t() @ "
        "out.g has w's shape; b.g has shape (3, 4) but b has shape (4,): b is added to every "
        "row, so sum out.g over the batch, out.g.sum(0)")
CODES = ["lin_grad.weight_transposed", "lin_grad.bias_not_summed", "lin_grad.wrong_shape"]
NOT_READY = {**NO_GPU, "stand-in": "failed"}


def long_report() -> Report:
    checks = [CheckResult(f"lin_grad/{name}", "lin_grad", False, 0.0, 1.0, LONG, CODES)
              for name in ("values-float64", "values-float32")]
    return Report(checks, notes=[describe(NOT_READY), SANDBOX], devices=NOT_READY)


@pytest.mark.parametrize("verbose", [False, True])
def test_check_keeps_every_line_within_88_columns_in_a_wide_terminal(monkeypatch, verbose):
    from autograder.present.terminal import student_console

    monkeypatch.setenv("COLUMNS", "200")  # a wide window: the table would take all of it
    out = io.StringIO()
    print_report(long_report(), student_console(file=out), verbose=verbose)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) == 88, lines  # as wide as it may be, no wider
    text = " ".join(out.getvalue().split())
    assert "devices: not yet ready for a GPU: see the gpu-ready checks" in text
    assert any("(3, 4) but b" in line for line in lines)  # a shape is not cut
    # A word longer than the column (a path, a student's string) folds whole, never cut short.
    word = "x" * 70 + "/end"
    out = io.StringIO()
    print_report(Report([CheckResult("mse_grad/values-float64", "mse_grad", False, 0.0, 1.0,
                                     f"mse_grad raised OSError: {word}", ["mse_grad.error"])]),
                 student_console(file=out))
    assert word in "".join(out.getvalue().replace("│", "").split()) and "…" not in out.getvalue()
    monkeypatch.setenv("COLUMNS", "60")  # a narrow one: narrower still
    assert student_console(file=io.StringIO()).width == 60


def test_the_self_check_keeps_every_line_within_88_columns(capsys):
    from autograder.selfcheck import SelfCheckFailed, self_check
    from tests.check.test_selfcheck import namespace_of

    source = ("def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
              "    w.g = out.g.t() @ inp\n    b.g = out.g\n")
    with pytest.raises(SelfCheckFailed):
        self_check("lin_grad", namespace_of(source)["lin_grad"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 88, out
    # The device line too, its words whole, under its own head.
    assert "\n  devices: your code keeps tensors on their device (checked with stand-in CUDA " \
           "tensors,\n           no GPU needed)" in out
    assert any("(3, 4) but b has shape (4,)" in line for line in out.splitlines())  # not cut
    assert "\n                 lin_grad.wrong_shape\n" in out  # the codes' line, wrapped whole


@pytest.mark.parametrize("width", range(40, 101, 3))
def test_a_wrapped_line_breaks_between_words_never_in_a_shape_or_a_term(width):
    from autograder.present.report import wrapped

    text = ("FAIL values-float64, values-float32: inp.g is half of the true gradient: d/dx of "
            "(x - t)^2 is 2(x - t); b.g has shape (3, 4) but b has shape (4,): inp.g = "
            "(inp > 0) * out.g (the lin_grad cell, line 4)")
    lines = wrapped(text, width)
    assert all(len(line) <= width for line in lines), lines
    assert " ".join(" ".join(lines).split()) == text  # every word, in order
    for whole in ("(x - t)^2", "2(x - t);", "(3, 4)", "(4,):", "(inp > 0)"):
        assert any(whole in line for line in lines), (whole, lines)
