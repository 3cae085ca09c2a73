"""Shared fixtures: a released course (real nbgrader), notebooks filled in as a student would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.course.release import release

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "assignments" / "backward" / "backward.ipynb"


@pytest.fixture(scope="session")
def released_path(tmp_path_factory) -> Path:
    """The student notebook, as `autograder release` (nbgrader generate_assignment) writes it."""
    return release(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="session")
def released(released_path) -> dict:
    return json.loads(released_path.read_text())


@pytest.fixture
def make_notebook(released, tmp_path):
    """Write a student notebook: the released one with some solution cells filled in."""

    def make(answers: dict[str, str] | None = None, extra_cells=(), name="backward.ipynb",
             correct_rest: bool = True) -> Path:
        filled = dict(samples.CORRECT) if correct_rest else {}
        filled.update(answers or {})
        return samples.write(samples.fill(released, filled, list(extra_cells)), tmp_path / name)

    return make


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`autograder ...` as a user runs it."""
    env = {**os.environ, "COLUMNS": "160"}  # a terminal's width, so that rich does not wrap
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def check_json(path: Path) -> tuple[int, dict]:
    done = run_cli("check", str(path), "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def target_points(report: dict) -> dict[str, float]:
    points: dict[str, float] = {}
    for c in report["checks"]:
        points[c["target"]] = round(points.get(c["target"], 0.0) + c["points"], 6)
    return points


def target_mistakes(report: dict, target: str) -> set[str]:
    return {m for c in report["checks"] if c["target"] == target for m in c["mistakes"]}
