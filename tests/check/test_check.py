"""`autograder check` as a student or instructor uses it: scores, exit codes, JSON, messages."""

from __future__ import annotations

import json

import pytest

from tests.conftest import (
    BACKWARD,
    CORRECT,
    SOURCE,
    check_json,
    check_report,
    run_cli,
    target_mistakes,
    target_points,
)

pytestmark = pytest.mark.sandbox

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}


def test_the_solution_notebook_gets_full_marks():
    code, report = check_json(SOURCE)
    assert code == 0
    assert report["score"] == report["max_score"] == 10.0
    assert target_points(report) == FULL
    assert report["reference"] == "reference solutions and autograd"


def test_the_released_notebook_gets_zero_and_not_implemented_everywhere(released_path):
    code, report = check_json(released_path)
    assert code == 1
    assert report["score"] == 0.0 and report["max_score"] == 10.0
    for target in BACKWARD.names:
        assert f"{target}.not_implemented" in target_mistakes(report, target)


def test_the_released_notebook_has_stubs_and_no_solutions(released):
    text = json.dumps(released)
    assert "BEGIN SOLUTION" not in text and "out.g @ w.t()" not in text
    sources = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
               for c in released["cells"]}
    for target, signature in [("mse_grad", "def mse_grad(inp, targ):"),
                              ("relu_grad", "def relu_grad(inp, out):"),
                              ("lin_grad", "def lin_grad(inp, out, w, b):"),
                              ("module_backward", "def backward(self):")]:
        assert signature in sources[target]
        assert "raise NotImplementedError()" in sources[target]
    assert all(not c.get("outputs") for c in released["cells"] if c["cell_type"] == "code")


#: A file `check` cannot use, as a student may give it: (its name, its bytes or "folder" or None
#: for no file, what the one line says it is).
UNUSABLE = {
    "hello": ("homework.ipynb", b"hello", "homework.ipynb is not a notebook: it is not valid JSON"),
    "empty": ("homework.ipynb", b"", "homework.ipynb is empty, not a notebook"),
    "blank": ("homework.ipynb", b"\n  \n", "homework.ipynb is empty, not a notebook"),
    "python": ("backward.py", b"def mse_grad(inp, targ):\n    pass\n",
               "backward.py is a Python file, not a notebook: give the notebook itself, the "
               ".ipynb file"),
    "html": ("backward.html", b"<html></html>", "backward.html is a web page (HTML), not a notebook"),
    "list": ("homework.ipynb", b"[1, 2]", "homework.ipynb is not a notebook: it is JSON but not "
                                          "an object with cells"),
    "no cells": ("homework.ipynb", b'{"metadata": {}}',
                 "homework.ipynb is not a notebook: it is JSON, but has no cells"),
    "cells not a list": ("homework.ipynb", b'{"cells": 3}', "no list of cells"),
    "png": ("homework.ipynb", b"\x89PNG\r\n\x1a\n", "is not a notebook: it is not valid JSON"),
    "folder": ("homework", "folder", "homework is a folder, not a notebook (it holds backward.ipynb)"),
    "missing": ("nope.ipynb", None, "nope.ipynb: no such file"),
    "no lesson": ("homework.ipynb", b'{"cells": [], "metadata": {}, "nbformat": 4}',
                  "homework.ipynb is a notebook of no lesson this install knows (it knows "
                  "backward, classifier)"),
}


def unusable(tmp_path, kind: str) -> tuple[str, str]:
    """The file of `UNUSABLE[kind]`, made in tmp_path: (its name, relative to tmp_path; the words
    its line must hold)."""
    name, content, words = UNUSABLE[kind]
    if content == "folder":
        (tmp_path / name).mkdir()
        (tmp_path / name / "backward.ipynb").write_text("{}")
    elif content is not None:
        (tmp_path / name).write_bytes(content)
    return name, words


@pytest.mark.parametrize("kind", sorted(UNUSABLE))
def test_an_unusable_file_is_one_line_that_says_what_it_is_and_exit_2(tmp_path, kind):
    name, words = unusable(tmp_path, kind)
    done = run_cli("check", name, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing else printed
    assert done.stderr.startswith(f"autograder: {name}") and words in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["empty", "python", "no cells", "folder", "missing", "no lesson"])
def test_with_json_an_unusable_file_is_an_error_object_on_stdout(tmp_path, kind):
    name, words = unusable(tmp_path, kind)
    done = run_cli("check", name, "--json", cwd=tmp_path)
    assert done.returncode == 2
    said = json.loads(done.stdout)  # exactly one JSON object
    assert said == {"error": said["error"], "file": name} and words in said["error"]
    assert done.stderr == f"autograder: {said['error']}\n"  # and the same one line on stderr


@pytest.mark.parametrize("kind", ["a FIFO", "/dev/zero", "a link to /dev/zero"])
def test_a_file_that_is_not_a_plain_file_exits_2_promptly(tmp_path, kind):
    # A FIFO hung `check`, /dev/zero filled the memory: read as a plain file only, within the cap.
    import os
    import resource
    import subprocess
    import sys

    path = tmp_path / "backward.ipynb"
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "a link to /dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path = "/dev/zero"

    def limit() -> None:  # the old reader must fail fast here, not fill the machine
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    done = subprocess.run([sys.executable, "-m", "autograder", "check", str(path)],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"autograder: {path} is not a plain file\n"


CORRECT_VARIANTS = {
    "einsum": {
        "lin_grad": "import torch\ndef lin_grad(inp, out, w, b):\n"
                    "    inp.g = torch.einsum('nk,ik->ni', out.g, w)\n"
                    "    w.g = torch.einsum('ni,nk->ik', inp, out.g)\n"
                    "    b.g = torch.einsum('nk->k', out.g)\n",
    },
    "where": {
        "relu_grad": "import torch\ndef relu_grad(inp, out):\n"
                     "    inp.g = torch.where(inp > 0, out.g, torch.zeros_like(out.g))\n",
    },
    "loops": {
        "lin_grad": "import torch\ndef lin_grad(inp, out, w, b):\n"
                    "    n = inp.shape[0]\n"
                    "    inp.g = torch.zeros_like(inp); w.g = torch.zeros_like(w); b.g = torch.zeros_like(b)\n"
                    "    for i in range(n):\n"
                    "        inp.g[i] = w @ out.g[i]\n"
                    "        w.g += torch.outer(inp[i], out.g[i])\n"
                    "        b.g += out.g[i]\n",
        "mse_grad": "def mse_grad(inp, targ):\n"
                    "    g = inp.clone()\n"
                    "    for i in range(inp.shape[0]):\n"
                    "        g[i, 0] = 2 * (inp[i, 0] - targ[i]) / inp.shape[0]\n"
                    "    inp.g = g\n",
    },
    "view-reshape": {
        "mse_grad": "def mse_grad(inp, targ):\n"
                    "    inp.g = (2 * (inp.view(-1) - targ) / targ.numel()).reshape(inp.shape)\n",
    },
    "squeeze-helper-return": {
        "mse_grad": "def mse_grad(inp, targ):\n"
                    "    inp.g = (2. * (inp.squeeze() - targ) / targ.shape[0]).view(-1, 1)\n",
        "lin_grad": "def times_transpose(a, b):\n    return a @ b.t()\n\n"
                    "def lin_grad(inp, out, w, b):\n"
                    "    inp.g = times_transpose(out.g, w)\n"
                    "    w.g = times_transpose(inp.t(), out.g.t())\n"
                    "    b.g = out.g.sum(dim=0)\n",
        "module_backward": CORRECT["module_backward"].replace(
            "        self.bwd(self.out, *self.args)",
            "        return self.bwd(self.out, *self.args)"),
    },
    "clone-detach-prints-warnings": {
        "relu_grad": "import warnings\n"
                     "def relu_grad(inp, out):\n"
                     "    g = out.g.clone().detach()\n"
                     "    g[inp <= 0] = 0\n"
                     "    print('relu_grad:', tuple(g.shape), g.dtype)\n"
                     "    warnings.warn('is the mask right at exactly 0?')\n"
                     "    inp.g = g\n",
        "mse_grad": "def mse_grad(inp, targ):\n"
                    "    diff = inp.detach().clone().squeeze(-1) - targ\n"
                    "    inp.g = (2 * diff / len(targ)).unsqueeze(-1)\n",
    },
    "lesson-2019": {  # as written in the fast.ai lesson 8 notebook
        "mse_grad": "def mse_grad(inp, targ):\n"
                    "    inp.g = 2. * (inp.squeeze() - targ).unsqueeze(-1) / inp.shape[0]\n",
        "relu_grad": "def relu_grad(inp, out):\n    inp.g = (inp>0).float() * out.g\n",
        "lin_grad": "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                    "    w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)\n"
                    "    b.g = out.g.sum(0)\n",
    },
}


@pytest.mark.parametrize("style", sorted(CORRECT_VARIANTS))
def test_correct_solutions_written_differently_get_full_marks(make_notebook, style):
    code, report = check_report(make_notebook(CORRECT_VARIANTS[style]))
    assert target_points(report) == FULL, [c for c in report["checks"] if not c["passed"]]
    assert code == 0
    assert not any(c["mistakes"] for c in report["checks"])


def test_a_print_inside_a_stub_does_not_break_json(make_notebook):
    noisy = ("def mse_grad(inp, targ):\n"
             "    print('{\"score\": 10}')\n"
             "    _ = print('{\"score\": 10}')  # a print as a value runs in grading too\n"
             "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
    done = run_cli("check", str(make_notebook({"mse_grad": noisy})), "--json")
    assert done.returncode == 0
    report = json.loads(done.stdout)  # exactly one JSON object: nothing else on stdout
    assert report["score"] == 10.0


def test_a_broken_cell_is_named_and_costs_only_its_target(make_notebook):
    code, report = check_report(make_notebook({"relu_grad": "def relu_grad(inp, out)\n    pass\n"}))
    points = target_points(report)
    assert points["relu_grad"] == 0.0 and points["mse_grad"] == 2.0
    messages = [c["message"] for c in report["checks"] if c["target"] == "relu_grad"]
    assert any("SyntaxError" in m for m in messages)


def test_the_table_names_the_failure(make_notebook):
    path = make_notebook({"mse_grad": "def mse_grad(inp, targ):\n    pass\n"})
    done = run_cli("check", str(path))
    assert done.returncode == 1
    assert "mse_grad did not set inp.g" in " ".join(done.stdout.replace("│", " ").split())
    assert "score: 8 / 10" in done.stdout


MISSING_FACTOR_2 = ("def mse_grad(inp, targ):\n"
                    "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]\n")


def test_a_student_reads_the_mistake_and_their_devices_not_the_sandbox(make_notebook):
    done = run_cli("check", str(make_notebook({"mse_grad": MISSING_FACTOR_2})))
    assert done.returncode == 1 and done.stderr == ""
    assert max(len(line) for line in done.stdout.splitlines()) <= 88  # a wide terminal too
    flat = " ".join(done.stdout.replace("│", " ").split())  # the table's cells, read on
    assert "inp.g is half of the true gradient" in flat and "score: 8 / 10" in flat
    # One device line in a student's words: a wrong value is not a device fault.
    assert flat.count("devices:") == 1
    assert "devices: your code keeps tensors on their device (checked with stand-in CUDA " \
           "tensors, no GPU needed)" in flat
    for word in ("sandbox", "seccomp", "namespaces", "rlimit", "meta", "GPU-readiness",
                 "not available here", "real CUDA was not tried"):
        assert word not in done.stdout


def test_verbose_adds_the_sandbox_and_says_why_cuda_did_not_run(make_notebook):
    import torch

    done = run_cli("check", "--verbose", str(make_notebook({"mse_grad": MISSING_FACTOR_2})))
    assert done.returncode == 1
    flat = " ".join(done.stdout.split())
    assert "sandbox: " in flat and "meta" not in flat and "GPU-readiness" not in flat
    assert ("real CUDA was not tried: this machine has no GPU" in flat) != torch.cuda.is_available()


def test_the_json_report_keeps_the_sandbox_and_device_notes(make_notebook):
    code, report = check_json(make_notebook({"mse_grad": MISSING_FACTOR_2}))
    assert code == 1
    assert any(n.startswith("sandbox: ") for n in report["notes"])
    assert any(n.startswith("your code keeps tensors on their device") for n in report["notes"])
    assert report["devices"]["stand-in"] == "passed" and report["devices"]["cpu"] == "failed"


def test_torch_is_not_imported_before_the_students_process_starts():
    # `check` starts the student's process first and imports torch while its cells run (about
    # 1.5 s of overlap); importing torch earlier, even for an exception class, undoes that.
    import subprocess
    import sys

    code = ("import sys\n"
            "import autograder.cli, autograder.engine, autograder.answer.notebook, autograder.settings\n"
            "import autograder.sandbox.launch\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
