"""What a student reads from `autograder check` that needs no sandbox: the device line's words,
the sandbox's layers only with --verbose, and the one line that says what an unusable file is.
In process and quick (the command itself: tests/test_check.py)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from autograder.cli import print_report
from autograder.devices import describe
from autograder.notebook import NotebookError, parse_notebook
from autograder.report import CheckResult, Report

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
