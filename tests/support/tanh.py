"""A small lesson of the tests' own, not in assignments/: the gradient of tanh, as an author writes
one. `write(root, toml, lesson_py)` puts it in `root/tanh/` and its reference (and, where given,
its sample class) in `root/../solutions/tanh/`, where a lesson's solutions live."""

from __future__ import annotations

from pathlib import Path

import nbformat

RIGHT = "def tanh_grad(inp, out):\n    inp.g = (1 - out ** 2) * out.g\n"

#: The lesson's head and its one target, as lesson.toml says it: `points` and `checks` (a TOML
#: value: "gradient", the engine's standard set, or a list of checks) filled in by `toml`.
TARGET = '''
id = "tanh"
title = "The gradient of tanh"
notebook = "tanh.ipynb"
self_check_seed = 8

[[target]]
name = "tanh_grad"
points = {points}
args = ["inp", "out"]
grads = {{ out = "out.g" }}
collect = ["inp"]
checks = {checks}
inputs = {{ inp = ["n", "n_out"], "out.g" = ["n", "n_out"] }}
derived = {{ out = {{ forward = "tanh", of = ["inp"] }} }}
forward = {{ name = "tanh", of = ["inp"], upstream = "out.g" }}
'''


def toml(points: float, checks: str = '"gradient"', more: str = "") -> str:
    return TARGET.format(points=points, checks=checks) + more


def notebook(answer: str, points: float = 2) -> nbformat.NotebookNode:
    """The lesson's notebook: an answer cell and its grade cell, as nbgrader marks them."""
    meta = {"schema_version": 3, "locked": False}
    answer_cell = nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {
        **meta, "grade": False, "solution": True, "grade_id": "tanh_grad"}})
    grade_cell = nbformat.v4.new_code_cell(
        "from autograder.selfcheck import self_check\n\n"
        'self_check("tanh_grad", tanh_grad, lesson="tanh")',
        metadata={"nbgrader": {**meta, "grade": True, "solution": False, "points": points,
                               "grade_id": "check_tanh_grad"}})
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# The gradient of tanh"),
        nbformat.v4.new_code_cell("import torch"), answer_cell, grade_cell])


def write(root: Path, lesson_toml: str, lesson_py: str, points: float = 2,
          samples: str | None = None) -> Path:
    """The lesson in `root/tanh/` (its source notebook answered by `RIGHT`); its reference, and
    `samples` where given, in `root/../solutions/tanh/`. Returns the lesson's folder."""
    folder = root / "tanh"
    folder.mkdir(parents=True)
    solutions = root.parent / "solutions" / "tanh"
    solutions.mkdir(parents=True)
    (folder / "lesson.toml").write_text(lesson_toml)
    (folder / "lesson.py").write_text(lesson_py)
    (solutions / "reference.py").write_text(RIGHT)
    if samples is not None:
        (solutions / "samples.py").write_text(samples)
    source = "### BEGIN SOLUTION\n" + RIGHT + "### END SOLUTION\n"
    nbformat.write(notebook(source, points), folder / "tanh.ipynb")
    return folder
