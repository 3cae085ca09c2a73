"""`autograder check` never crashes, whatever the file: exit 0, 1 or 2, and JSON for 0 and 1.

Hypothesis mutates a small notebook: its bytes (broken JSON, mostly rejected at parse time, so
fast), then its structure (wrong types in cells and metadata, huge cells), which may run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autograder.cli import app
from tests.conftest import SOURCE

pytestmark = pytest.mark.sandbox

CORRECT_MSE = ("def mse_grad(inp, targ):\n"
               "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
BASE = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# The backward pass\n"]},
        {"cell_type": "code", "execution_count": None, "outputs": [], "source": CORRECT_MSE,
         "metadata": {"nbgrader": {"grade": False, "solution": True, "locked": False,
                                   "grade_id": "mse_grad", "schema_version": 3}}},
        {"cell_type": "code", "execution_count": None, "outputs": [], "source": "check('mse_grad')",
         "metadata": {"nbgrader": {"grade": True, "solution": False, "locked": True,
                                   "grade_id": "check_mse_grad", "points": 2,
                                   "schema_version": 3}}},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def check(path: Path) -> int:
    """Run `autograder check --json` in this process (its students' processes from warm
    parents: many checks in one process); assert the contract's outcomes; return the exit code."""
    result = CliRunner().invoke(app, ["check", str(path), "--json"], env={"AUTOGRADER_WARM": "1"})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output[-2000:]
    if result.exit_code in (0, 1):
        report = json.loads(result.stdout)
        assert isinstance(report["score"], float) and report["max_score"] >= report["score"]
    else:
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line says why
    return result.exit_code


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
HUGE_CELLS = ["x = 1\n" * 200_000, "#" * 3_000_000, ["a\n"] * 100_000,
              "def mse_grad(inp, targ):\n" + "    pass\n" * 100_000]
HUGE = st.sampled_from(HUGE_CELLS)


def paths(node, here=()):
    """Every place in a JSON document, as a tuple of keys."""
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*here, i))


def replace(doc, where, value):
    if not where:
        return value
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return doc


@FUZZ
@given(data=st.data())
def test_mutated_bytes_never_crash_check(tmp_path_factory, data):
    raw = bytearray(json.dumps(BASE, indent=1).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["cut", "insert", "flip"]))
        if action == "cut":
            del raw[at:at + data.draw(st.integers(1, 50))]
        elif action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=20))
        elif at < len(raw):
            raw[at] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("fuzz") / "backward.ipynb"
    path.write_bytes(bytes(raw))
    check(path)


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_notebooks_with_wrong_types_or_huge_cells_never_crash_check(tmp_path_factory, data):
    doc = json.loads(json.dumps(BASE))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(paths(doc))))
        doc = replace(doc, where, data.draw(JSON | HUGE if where[-1:] == ("source",) else JSON))
    path = tmp_path_factory.mktemp("fuzz") / "backward.ipynb"
    path.write_text(json.dumps(doc))
    check(path)


@pytest.mark.parametrize("index", range(len(HUGE_CELLS)))
def test_huge_cells_never_crash_check(tmp_path, index):
    doc = json.loads(json.dumps(BASE))
    doc["cells"][1]["source"] = HUGE_CELLS[index]
    path = tmp_path / "backward.ipynb"
    path.write_text(json.dumps(doc))
    check(path)


def test_the_source_notebook_checks_in_process():
    """The fuzz tests' harness works: a good notebook passes through it with exit 0."""
    assert check(SOURCE) == 0
