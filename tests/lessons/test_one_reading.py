"""One reading of what a lesson's own cells define: the in-notebook self-check, `check` and `grade`
give a module target the same points, with no `[language]` table in lesson.toml.

The lesson is written here, as an author writes one: a module target (kind "probe") whose answer
builds on the lesson's `Module`, a class of one of the lesson's own (non-answer) cells, and reads
an attribute that cell sets. Before, the self-check read the answer alone (`self.func`, which the
lesson's cell sets, read as torch.func: 0 points where `check` gave 2), and grading left out the
lesson's top-level `settings.scale = 1` that the answer reads (0 points where the self-check gave 2).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.selfcheck import run_self_check
from tests.conftest import check_report

LESSON_TOML = '''
id = "layers"
notebook = "layers.ipynb"
self_check_seed = 3

[[target]]
name = "layer_backward"
entry = "Layer"
kind = "probe"
points = 2
checks = "probe"

[[checkset.probe]]
name = "one-input"
weight = 1
kind = "probe"
cases = [{ n = 1 }]

[[checkset.probe]]
name = "two-inputs"
weight = 1
kind = "probe"
cases = [{ n = 2 }]
'''

LESSON_PY = ("from autograder.lesson_api import LessonCode\n\n\n"
             "class Layers(LessonCode):\n    pass\n")

#: The lesson's own cell, and the answer, by what the cell sets that the answer reads.
CASES = {
    # an attribute of the layer, set by the lesson's Module: its name is also torch.func's
    "attribute-set-by-the-lesson-class": (
        "import torch\n\n\nclass Module:\n    def __call__(self, *args):\n"
        "        self.args = args\n        self.func = self.forward\n"
        "        self.out = self.func(*args)\n        return self.out\n",
        "class Layer(Module):\n    def backward(self):\n        assert self.func is not None\n"
        "        self.bwd(self.out, *self.args)\n"),
    # an attribute of an object the lesson's cell made, set at the cell's top level
    "attribute-set-at-the-top-level": (
        "import torch\n\n\nclass Settings:\n    pass\n\n\nsettings = Settings()\n"
        "settings.scale = 1\n\n\nclass Module:\n    def __call__(self, *args):\n"
        "        self.args = args\n        self.out = self.forward(*args)\n"
        "        return self.out\n",
        "class Layer(Module):\n    def backward(self):\n        if settings.scale == 1:\n"
        "            self.bwd(self.out, *self.args)\n"),
}

META = {"schema_version": 3, "locked": False}


def notebook(lesson_cell: str, answer: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(lesson_cell),
        nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {
            **META, "grade": False, "solution": True, "grade_id": "layer_backward"}}),
        nbformat.v4.new_code_cell(
            'from autograder.selfcheck import self_check\n\n'
            'self_check("layer_backward", Layer, lesson="layers")',
            metadata={"nbgrader": {**META, "grade": True, "solution": False, "points": 2,
                                   "grade_id": "check_layer_backward"}})])


def write_lesson(root: Path, lesson_cell: str, answer: str) -> None:
    folder = root / "layers"
    folder.mkdir(parents=True)
    (root.parent / "solutions" / "layers").mkdir(parents=True)
    (folder / "lesson.toml").write_text(LESSON_TOML)
    (folder / "lesson.py").write_text(LESSON_PY)
    nbformat.write(notebook(lesson_cell, f"### BEGIN SOLUTION\n{answer}### END SOLUTION\n"),
                   folder / "layers.ipynb")


def self_check_points(lesson_cell: str, answer: str) -> float:
    """The self-check as the student's kernel runs it: the lesson's cell, then the answer cell,
    each run as IPython runs a cell (its lines kept for tracebacks, under a name no file has),
    then the grade cell's call."""
    import linecache

    namespace: dict = {"__name__": "__main__"}
    for text in (lesson_cell, answer):
        name = f"/tmp/ipykernel_0/{abs(hash(text))}.py"
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        exec(compile(text, name, "exec"), namespace)  # noqa: S102 - the test's own code
    report = run_self_check("layer_backward", namespace["Layer"], device="cpu", lesson="layers")
    return report.score


@pytest.mark.sandbox
@pytest.mark.parametrize("case", CASES)
def test_the_self_check_and_check_agree_on_what_the_lessons_cells_define(
        case, tmp_path, monkeypatch):
    lesson_cell, answer = CASES[case]
    write_lesson(tmp_path / "lessons", lesson_cell, answer)
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook(lesson_cell, answer), path)
    _, report = check_report(path, seed=5)
    checked = (report["score"], report["max_score"])
    assert (self_check_points(lesson_cell, answer), *checked) == (2, 2, 2), report
