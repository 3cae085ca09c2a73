"""Each lesson's source notebook (the solutions filled in) runs from top to bottom in a real
Jupyter kernel, its self-checks pass, and its training curve (named in its lesson.toml) falls at
every epoch, as its text promises a student whose gradients are right."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.lesson import model as lessons

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.slow

LESSONS = lessons.available()


@pytest.mark.parametrize("lesson_id", sorted(LESSONS))
def test_the_source_notebook_runs_and_its_training_descends_cleanly(lesson_id, tmp_path):
    lesson = LESSONS[lesson_id]
    nb = nbformat.read(lesson.source_path, as_version=4)
    # lesson.toml's [training] names the list of training losses its notebook keeps, per epoch
    # (a lesson whose notebook trains nothing has none).
    name = tomllib.loads((lesson.folder / lessons.SPEC).read_text()).get("training", {}).get("losses")
    if name:
        nb.cells.append(nbformat.v4.new_code_cell(
            f"assert len({name}) >= 50, len({name})\n"
            f"assert all(a > b for a, b in zip({name}, {name}[1:])), {name}\n"
            f"print('falls from', round({name}[0], 2), 'to', round({name}[-1], 2))"))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "checks fail" not in text and ("falls from" in text or not name)
