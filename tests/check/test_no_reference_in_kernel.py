"""A student's self-check runs in the student's kernel: it must never open the instructor's
reference solutions (solutions/<id>/, or a wheel's autograder/solutions/), even where this
install carries them, and even when it diagnoses inputs mixed up, which asks for the right
formula on other inputs. Its plan is built without solutions; the diagnosis takes autograd's.

The check is an audit hook (`sys.addaudithook`, event "open") in a fresh interpreter, which
sees every file Python opens, however it is opened (import, open(), io, pathlib).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, sys

    opened = []

    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.path.abspath(os.fsdecode(args[0])))

    sys.addaudithook(hook)

    import importlib.util
    from pathlib import Path

    answer = Path(sys.argv[1])
    spec = importlib.util.spec_from_file_location("answer", answer)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    import autograder
    from autograder.selfcheck import run_self_check

    target, lesson = sys.argv[2], sys.argv[3]
    report = run_self_check(target, getattr(module, target), device="cpu", lesson=lesson)
    print(json.dumps({"mistakes": list(report.mistakes()),
                      "text": report.student_text(target),
                      "package": str(Path(autograder.__file__).resolve().parent),
                      "opened": opened}))
""")

#: relu_grad with inp and out.g swapped (tests/judge/test_diagnosis.py, "relu: inp and out.g swapped"):
#: autograd on the lesson's forward names it.
SWAPPED = ("import torch\n\n"
           "def relu_grad(inp, out):\n"
           "    inp.g = (out.g > 0).to(inp.dtype) * inp\n")
#: log_softmax_grad with inp where its derived input out belongs (exp(inp) for softmax): only a
#: formula that reads `out`, the reference's, names that, so grading does (with the solutions:
#: tests/judge/test_diagnosis.py) and the self-check gives the general reading and the lesson's hint.
DERIVED = ("import torch\n\n"
           "def log_softmax_grad(inp, out):\n"
           "    inp.g = out.g - inp.exp() * out.g.sum(-1, keepdim=True)\n")


def self_check_in_a_fresh_process(tmp_path: Path, source: str, target: str, lesson: str) -> dict:
    answer = tmp_path / "answer.py"
    answer.write_text(source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(answer), target, lesson],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert_no_reference_opened(seen, lesson)
    return seen


def assert_no_reference_opened(seen: dict, lesson: str) -> None:
    # The package is this checkout's, and it carries the reference: the test is not empty.
    package = Path(seen["package"])
    assert package == REPO / "autograder"
    assert (REPO / "solutions" / lesson / "reference.py").is_file()
    forbidden = [REPO / "solutions", package / "solutions"]
    opened = [Path(p) for p in seen["opened"]]
    assert any(p.name == "lesson.py" and p.parent.name == lesson for p in opened), \
        "the hook saw the lesson's own files opened"
    leaked = [str(p) for p in opened if any(p == f or f in p.parents for f in forbidden)]
    assert leaked == [], f"the self-check opened the instructor's files: {leaked}"


def test_a_self_check_diagnosing_swapped_inputs_opens_no_reference(tmp_path):
    seen = self_check_in_a_fresh_process(tmp_path, SWAPPED, "relu_grad", "backward")
    # And the diagnosis is still given, in the grader's words.
    assert "relu_grad.inputs_swapped" in seen["mistakes"]
    assert "inp.g is the gradient with inp and out.g swapped" in " ".join(seen["text"].split())


def test_a_self_check_of_an_input_where_a_derived_one_belongs_opens_no_reference(tmp_path):
    seen = self_check_in_a_fresh_process(tmp_path, DERIVED, "log_softmax_grad", "classifier")
    assert "log_softmax_grad.wrong_values" in seen["mistakes"]
    assert "softmax(inp) is out.exp()" in " ".join(seen["text"].split())
