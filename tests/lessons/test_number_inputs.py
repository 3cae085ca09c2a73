"""Inputs that are numbers, not tensors: lesson.toml declares a float (`slope`) or an int (`k`),
and the answer is handed Python's float and int, in `check`, `grade` and the self-check alike. A
number declared wrong (a 0-d shape, a type the engine does not hand, a value of another type, a
number whose .g is collected) is one line when the lesson loads, naming the input and the file:
never "the grader failed: TypeError" at every submission.

The lesson is written here, as an author writes one (issue 34, item 4).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.lesson import model as lessons
from autograder.selfcheck import run_self_check
from tests.conftest import check_report

LESSON_TOML = '''
id = "numbers"
notebook = "numbers.ipynb"
self_check_seed = 4

[[target]]
name = "leaky_grad"
points = 2
args = ["inp", "out", "slope"]
grads = { out = "out.g" }
collect = ["inp"]
checks = "gradient"
inputs = { inp = ["n", "n_out"], "out.g" = ["n", "n_out"], slope = { type = "float", value = 0.1 } }
derived = { out = { forward = "leaky", of = ["inp", "slope"] } }
forward = { name = "leaky", of = ["inp", "slope"], upstream = "out.g" }

[[target]]
name = "power_grad"
points = 2
args = ["inp", "out", "k"]
grads = { out = "out.g" }
collect = ["inp"]
checks = "gradient"
inputs = { inp = ["n", "n_out"], k = { type = "int", value = 3 }, "out.g" = ["n", "n_out"] }
derived = { out = { forward = "power", of = ["inp", "k"] } }
forward = { name = "power", of = ["inp", "k"], upstream = "out.g" }
'''

LESSON_PY = '''
import torch

from autograder.lesson_api import LessonCode


def leaky(inp, slope):
    assert isinstance(slope, float), type(slope)  # the lesson's code is handed the number too
    return torch.where(inp > 0, inp, inp * slope)


def power(inp, k):
    assert isinstance(k, int), type(k)
    return inp ** k


class Numbers(LessonCode):
    pass
'''

#: Right answers that hold the lesson to its word: a Python float and a Python int.
RIGHT = {
    "leaky_grad": "def leaky_grad(inp, out, slope):\n"
                  "    assert type(slope) is float\n"
                  "    inp.g = ((inp > 0).to(inp.dtype) * (1 - slope) + slope) * out.g\n",
    "power_grad": "def power_grad(inp, out, k):\n"
                  "    assert type(k) is int\n"
                  "    inp.g = k * inp ** (k - 1) * out.g\n",
}

META = {"schema_version": 3, "locked": False}


def notebook(answers: dict[str, str]) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell("import torch")]
    for target, answer in answers.items():
        cells.append(nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {
            **META, "grade": False, "solution": True, "grade_id": target}}))
        cells.append(nbformat.v4.new_code_cell(
            f'from autograder.selfcheck import self_check\n\nself_check("{target}", {target})',
            metadata={"nbgrader": {**META, "grade": True, "solution": False, "points": 2,
                                   "grade_id": f"check_{target}"}}))
    return nbformat.v4.new_notebook(cells=cells)


def write_lesson(root: Path, toml: str = LESSON_TOML) -> Path:
    folder = root / "numbers"
    folder.mkdir(parents=True)
    (root.parent / "solutions" / "numbers").mkdir(parents=True)
    (folder / "lesson.toml").write_text(toml)
    (folder / "lesson.py").write_text(LESSON_PY)
    nbformat.write(notebook({t: f"### BEGIN SOLUTION\n{a}### END SOLUTION\n"
                             for t, a in RIGHT.items()}), folder / "numbers.ipynb")
    return folder


@pytest.fixture
def lessons_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "lessons"
    write_lesson(root)
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(root))
    return root


@pytest.mark.sandbox
def test_check_hands_the_answer_the_numbers_the_lesson_declares(lessons_root, tmp_path):
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook(RIGHT), path)
    _, report = check_report(path, seed=11)
    failed = [(c["id"], c["message"]) for c in report["checks"] if not c["passed"]]
    assert (report["score"], report["max_score"], failed) == (4, 4, [])


def test_the_self_check_hands_them_too(lessons_root, tmp_path):
    namespace: dict = {}
    for target, answer in RIGHT.items():
        cell = tmp_path / f"{target}.py"
        cell.write_text("import torch\n" + answer)
        exec(compile(cell.read_text(), str(cell), "exec"), namespace)  # noqa: S102
        report = run_self_check(target, namespace[target], device="cpu", lesson="numbers")
        assert (report.passed, report.score) == (True, 2), report.student_text(target)


@pytest.mark.parametrize("old, new, said", [
    ('slope = { type = "float", value = 0.1 }', "slope = []",
     "input 'slope' of target leaky_grad: its shape [] has no size (a 0-d tensor): a number is "
     '{ type = "float", value = ... } (or "int")'),
    ('slope = { type = "float", value = 0.1 }', 'slope = { type = "double", value = 0.1 }',
     "input 'slope' of target leaky_grad: its type 'double' is none the engine hands: one of "
     "tensor, float, int"),
    ('k = { type = "int", value = 3 }', 'k = { type = "int", value = 3.5 }',
     "input 'k' of target power_grad: its value 3.5 is not an int (a whole number)"),
    ('k = { type = "int", value = 3 }', 'k = { type = "int" }',
     "input 'k' of target power_grad is an int with no value ({ type = 'int', value = ... })"),
    ('slope = { type = "float", value = 0.1 }', 'slope = { type = "float", shape = [1] }',
     "input 'slope' of target leaky_grad is a float, a number: it has a value, not shape"),
    ('collect = ["inp"]\nchecks = "gradient"\ninputs = { inp = ["n", "n_out"], "out.g"',
     'collect = ["inp", "slope"]\nchecks = "gradient"\ninputs = { inp = ["n", "n_out"], "out.g"',
     "input 'slope' of target leaky_grad is a number, which has no .g: collect names only "
     "tensors"),
    ('inp = ["n", "n_out"], k', 'inp = ["n", -2], k',
     "input 'inp' of target power_grad: its size -2 is not a whole number of at least 1"),
    ('inp = ["n", "n_out"], k', 'inp = { shape = ["n"], draw = "uniform" }, k',
     "input 'inp' of target power_grad: its draw 'uniform' is none the engine makes (did you "
     "mean 'normal'?): one of normal, classes"),
])
def test_a_number_declared_wrong_is_one_line_when_the_lesson_loads(tmp_path, old, new, said):
    assert old in LESSON_TOML
    folder = write_lesson(tmp_path / "lessons", LESSON_TOML.replace(old, new, 1))
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder)
    assert str(raised.value) == f"{folder / 'lesson.toml'}: {said}"
