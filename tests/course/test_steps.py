"""nbgrader's metadata check with its schema compiled once: the same verdict as stock's, notebook
for notebook, on good and on damaged nbgrader metadata. (The steps on the class's open gradebook
are compared with stock nbgrader file for file in tests/course/test_course.py.) And the parts copied
from nbgrader refuse, in one line, a version they were not copied from."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbgrader.preprocessors import CheckCellMetadata

from autograder.course.nbgrader_parts import CheckCellMetadataOnce, VersionMismatch, check_versions

pytestmark = pytest.mark.sandbox


def damaged(released: dict, how: str) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    meta = graded[0].metadata.nbgrader
    if how == "points not a number":
        meta["points"] = "ten"
    elif how == "schema too old":
        meta["schema_version"] = 1
    elif how == "schema too new":
        meta["schema_version"] = 9
    elif how == "no grade_id":
        del meta["grade_id"]
    elif how == "a grade_id twice":
        graded[1].metadata.nbgrader["grade_id"] = meta["grade_id"]
    elif how == "an unknown key":
        meta["bonus"] = True
    return nb


def verdict(step, nb: nbformat.NotebookNode) -> tuple:
    try:
        out, _ = step(nb, {})
    except Exception as exc:  # noqa: BLE001 - the verdict is the exception
        return type(exc).__name__, str(exc)
    return "ok", json.dumps(out, sort_keys=True)


@pytest.mark.parametrize("how", ["as released", "points not a number", "schema too old",
                                 "schema too new", "no grade_id", "a grade_id twice",
                                 "an unknown key"])
def test_the_metadata_check_gives_stocks_verdict(released, how):
    stock = verdict(CheckCellMetadata(), damaged(released, how))
    ours = CheckCellMetadataOnce()
    assert verdict(ours, damaged(released, how)) == stock
    assert verdict(ours, damaged(released, how)) == stock  # and again, its validator reused
    assert (stock[0] == "ok") == (how == "as released")


def test_the_copied_parts_refuse_another_nbgrader_in_one_line():
    check_versions()  # the installed ones, which the parts were copied from
    with pytest.raises(VersionMismatch) as refused:
        check_versions({"nbgrader": "0.10.0"})
    said = str(refused.value)
    assert "\n" not in said and "nbgrader 0.10.0 is installed" in said
    assert "pip install 'nbgrader==0.9.*'" in said
