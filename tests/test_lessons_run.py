"""Each lesson's source notebook (the solutions filled in) runs from top to bottom in a real
Jupyter kernel, its self-checks pass, and its training curve falls at every epoch, as its text
promises a student whose gradients are right."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO

pytestmark = pytest.mark.slow

#: The name of each lesson's list of training losses, per epoch.
LOSSES = {"backward": "train_losses", "classifier": "losses"}


@pytest.mark.parametrize("lesson", sorted(LOSSES))
def test_the_source_notebook_runs_and_its_training_descends_cleanly(lesson, tmp_path):
    folder = REPO / "assignments" / lesson
    nb = nbformat.read(folder / f"{lesson}.ipynb", as_version=4)
    name = LOSSES[lesson]
    nb.cells.append(nbformat.v4.new_code_cell(
        f"assert len({name}) >= 50, len({name})\n"
        f"assert all(a > b for a, b in zip({name}, {name}[1:])), {name}\n"
        f"print('falls from', round({name}[0], 2), 'to', round({name}[-1], 2))"))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "checks fail" not in text and "falls from" in text
