"""Class targets in data (issue 34, item 6): lesson.toml names the methods the probe calls and
stands in for (`methods`), so a lesson's own protocol needs no wrapper around the student's
class; and a `.backward()` of the student's own (on a layer their code made from a class of
their own) is their code, judged as such, not read as autograd.

The lesson is written here, as an author writes one.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.answer import rules
from autograder.lesson import model as lessons
from autograder.selfcheck import run_self_check
from tests.conftest import check_report

LESSON_TOML = '''
id = "protocol"
notebook = "protocol.ipynb"
self_check_seed = 6

[[target]]
name = "layer_backward"
entry = "Layer"
kind = "probe"
points = 2
checks = "probe"
{methods}

[[checkset.probe]]
name = "one-input"
weight = 1
kind = "probe"
cases = [{{ n = 1 }}]

[[checkset.probe]]
name = "latest-call"
weight = 1
kind = "probe"
cases = [{{ n = 3 }}]

[mistakes]
"layer_backward.does_nothing" = "backprop() calls no grad_of"
"layer_backward.wrong_arguments" = "grad_of gets the wrong arguments"
"layer_backward.inputs_left_out" = "grad_of gets out alone"
'''

#: This lesson's protocol: a layer is run by `run`, computes by `compute`, and its `backprop()`
#: hands `grad_of` the output and the inputs of its latest run.
METHODS = 'methods = { call = "run", forward = "compute", bwd = "grad_of", backward = "backprop" }'

LESSON_PY = ("from autograder.lesson_api import LessonCode\n\n\n"
             "class Protocol(LessonCode):\n    pass\n")

HEAD = ("class Layer:\n    def run(self, *args):\n        self.args = args\n"
        "        self.out = self.compute(*args)\n        return self.out\n\n"
        "    def backprop(self):\n")
RIGHT = HEAD + "        self.grad_of(self.out, *self.args)\n"
INPUTS_LEFT_OUT = HEAD + "        self.grad_of(self.out)\n"

#: The engine's default protocol (`__call__`, `forward`, `bwd`, `backward`), where the student's
#: `backward()` also runs the layers their class made from classes of their own.
OWN_BACKWARDS = '''class Scale:
    def backward(self):
        self.done = True


class Layer:
    def __init__(self):
        self.inner = Scale()
        self.layers = [Scale(), Scale()]

    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def backward(self):
        self.inner.backward()
        for layer in reversed(self.layers):
            layer.backward()
        self.bwd(self.out, *self.args)
'''

META = {"schema_version": 3, "locked": False}


def notebook(answer: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {
            **META, "grade": False, "solution": True, "grade_id": "layer_backward"}}),
        nbformat.v4.new_code_cell(
            'from autograder.selfcheck import self_check\n\nself_check("layer_backward", Layer)',
            metadata={"nbgrader": {**META, "grade": True, "solution": False, "points": 2,
                                   "grade_id": "check_layer_backward"}})])


def write_lesson(root: Path, methods: str = METHODS, answer: str = RIGHT) -> Path:
    folder = root / "protocol"
    folder.mkdir(parents=True)
    (root.parent / "solutions" / "protocol").mkdir(parents=True)
    (folder / "lesson.toml").write_text(LESSON_TOML.format(methods=methods))
    (folder / "lesson.py").write_text(LESSON_PY)
    nbformat.write(notebook(f"### BEGIN SOLUTION\n{answer}### END SOLUTION\n"),
                   folder / "protocol.ipynb")
    return folder


def checked(tmp_path: Path, answer: str) -> dict:
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook(answer), path)
    return check_report(path, seed=9)[1]


def self_checked(answer: str):
    """The self-check as a kernel runs it: the answer cell run as IPython runs a cell (its lines
    kept for tracebacks, under a name no file has), then the grade cell's call."""
    import linecache

    name = f"/tmp/ipykernel_0/{abs(hash(answer))}.py"
    linecache.cache[name] = (len(answer), None, answer.splitlines(True), name)
    namespace: dict = {}
    exec(compile(answer, name, "exec"), namespace)  # noqa: S102 - the test's own code
    return run_self_check("layer_backward", namespace["Layer"], device="cpu", lesson="protocol")


@pytest.mark.sandbox
def test_the_probe_calls_the_methods_the_lesson_names(tmp_path, monkeypatch):
    write_lesson(tmp_path / "lessons")
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    right = checked(tmp_path, RIGHT)
    assert (right["score"], right["max_score"]) == (2, 2), right
    wrong = checked(tmp_path, INPUTS_LEFT_OUT)
    first = next(c for c in wrong["checks"] if c["id"] == "layer_backward/one-input")
    assert (wrong["score"], first["message"]) == (0, (
        "backprop() called grad_of(out), without the inputs: grad_of needs them too, "
        "self.grad_of(self.out, *self.args)"))
    assert set(first["mistakes"]) == {"layer_backward.inputs_left_out",
                                      "layer_backward.wrong_arguments"}
    assert self_checked(RIGHT).score == 2
    assert self_checked(INPUTS_LEFT_OUT).mistakes("layer_backward") == [
        "layer_backward.inputs_left_out", "layer_backward.wrong_arguments"]


@pytest.mark.sandbox
def test_the_students_own_layers_backward_is_their_code_not_autograd(tmp_path, monkeypatch):
    write_lesson(tmp_path / "lessons", methods="", answer=OWN_BACKWARDS)
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    report = checked(tmp_path, OWN_BACKWARDS)
    failed = [(c["id"], c["message"]) for c in report["checks"] if not c["passed"]]
    assert (report["score"], failed) == (2, [])
    assert self_checked(OWN_BACKWARDS).score == 2


def test_a_tensors_backward_is_still_autograd_beside_the_students_own():
    source = OWN_BACKWARDS.replace("        self.bwd(self.out, *self.args)\n",
                                   "        self.out.sum().backward()\n"
                                   "        out = self.out\n        out.backward()\n")
    found = [(f.what, f.line) for f in rules.findings_in(source) if f.kind == rules.AUTOGRAD]
    assert found == [(".backward()", 20), (".backward()", 22)]


@pytest.mark.parametrize("methods, said", [
    ('methods = { forward = "compute", bwd = "compute" }',
     "the methods of target layer_backward name one method for two parts: call = '__call__', "
     "forward = 'compute', bwd = 'compute', backward = 'backward'"),
    ('methods = { backward = "__del__" }',
     "the methods of target layer_backward: backward = '__del__' is not a method's name"),
    ('methods = { bwd = "grad of" }',
     "the methods of target layer_backward: bwd = 'grad of' is not a method's name"),
    ('methods = { backwards = "backprop" }',
     "unknown key 'backwards' in the methods of target layer_backward (did you mean "
     "'backward'?): the keys are call, forward, bwd, backward"),
])
def test_methods_a_probe_cannot_call_are_one_line_when_the_lesson_loads(tmp_path, methods,
                                                                         said):
    folder = write_lesson(tmp_path / "lessons", methods=methods)
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder)
    assert str(raised.value) == f"{folder / 'lesson.toml'}: {said}"


def test_methods_are_a_probe_targets(tmp_path):
    from tests.support import tanh

    folder = tanh.write(tmp_path / "lessons", tanh.toml(2, more="") .replace(
        'checks = "gradient"', 'checks = "gradient"\nmethods = { backward = "backprop" }'),
        "import torch\n\nfrom autograder.lesson_api import LessonCode\n\n\n"
        "def tanh(inp):\n    return torch.tanh(inp)\n\n\nclass Tanh(LessonCode):\n    pass\n")
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder)
    assert str(raised.value) == (f"{folder / 'lesson.toml'}: target tanh_grad is a function: "
                                 "methods are a probe target's")
