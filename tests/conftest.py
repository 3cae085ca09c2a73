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
from autograder.lesson import model as lessons
from tests.support import REQUIRE_SANDBOX

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "assignments" / "backward" / "backward.ipynb"
#: The first lesson, its right answers and its sample class (assignments/backward/).
BACKWARD = lessons.load(REPO / "assignments" / "backward")
CORRECT = samples.of(BACKWARD).CORRECT
CLASS = samples.of(BACKWARD).CLASS

#: Tests in tiers. `make test-fast` runs what is in process and quick (-m "not sandbox and not
#: slow and not cuda"); `make test` runs everything. A test file names its tier at its top
#: (`pytestmark`); a test elsewhere is `sandbox` by its own mark, or when it uses a fixture that
#: releases a course (nbgrader) or writes a notebook for the CLI (below).
SANDBOX_FIXTURES = {"released", "released_path", "make_notebook", "honest_alone", "graded"}


def needs_layer(missing: bool, reason: str) -> pytest.MarkDecorator:
    """A test that needs a layer of the sandbox (namespaces, an own uid, warm workers, the
    system call filter): skipped where `missing`, saying `reason`; failed instead under
    AUTOGRADER_REQUIRE_SANDBOX=1."""
    if missing and REQUIRE_SANDBOX:
        return pytest.mark.layer_missing(reason)
    return pytest.mark.skipif(missing, reason=reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "layer_missing(reason): a layer of the sandbox this "
                                       "machine lacks, under AUTOGRADER_REQUIRE_SANDBOX=1")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)


def pytest_runtest_setup(item):
    for mark in item.iter_markers("layer_missing"):
        pytest.fail(f"AUTOGRADER_REQUIRE_SANDBOX=1 (.ci/run) and this test needs what this "
                    f"machine lacks: {mark.args[0]}", pytrace=False)


@pytest.fixture(scope="session")
def released_path(tmp_path_factory) -> Path:
    """The student notebook, as `autograder release` (nbgrader generate_assignment) writes it."""
    return release(tmp_path_factory.mktemp("course"), assignment="backward")[0]


@pytest.fixture(scope="session")
def released(released_path) -> dict:
    return json.loads(released_path.read_text())


@pytest.fixture(scope="session")
def released_classifier(tmp_path_factory) -> dict:
    """The classifier lesson's student notebook, as `autograder release` writes it."""
    course = tmp_path_factory.mktemp("classifier-course")
    return json.loads(release(course, assignment="classifier")[0].read_text())


@pytest.fixture
def ample_deadlines(monkeypatch):
    """A limit test's deadlines, far past the time its limit (memory, CPU, file size, processes,
    output) takes to be hit on a busy machine: the test then sees the limit, never a race of the
    limit against the clock (CI runs beside other jobs on 2 cores). In this process and for a
    command it starts."""
    from autograder import settings

    for name, seconds in (("TARGET_TIMEOUT", 300), ("CELLS_TIMEOUT", 300),
                          ("START_TIMEOUT", 300), ("SUBMISSION_TIMEOUT", 900)):
        monkeypatch.setattr(settings, name, float(seconds))
        monkeypatch.setenv(f"AUTOGRADER_{name}", str(seconds))


@pytest.fixture
def make_notebook(released, tmp_path):
    """Write a student notebook: the released one with some solution cells filled in."""

    def make(answers: dict[str, str] | None = None, extra_cells=(), name="backward.ipynb",
             correct_rest: bool = True) -> Path:
        filled = dict(CORRECT) if correct_rest else {}
        filled.update(answers or {})
        return samples.write(samples.fill(released, filled, list(extra_cells)), tmp_path / name)

    return make


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`autograder ...` as a user runs it."""
    env = {**os.environ, "COLUMNS": "160"}  # a terminal's width, so that rich does not wrap
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def check_json(path: Path) -> tuple[int, dict]:
    """`autograder check --json` as a user runs it: (exit code, the report)."""
    done = run_cli("check", str(path), "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def check_report(path: Path, seed: int | None = None) -> tuple[int, dict]:
    """What `check_json` gives, from the same engine in this process, the student's process
    forked from a warm parent (tests/sandbox/test_warm.py: a warm start's report is a cold one's, check
    by check): a fraction of a second, where the command costs a Python and torch each time.
    The command's own behaviour (exit codes, one JSON object, the table) is tested with
    `check_json` and `run_cli`."""
    from autograder.engine import check_notebook

    report = check_notebook(path, seed=seed, warm=True)
    return (0 if report.passed else 1), json.loads(report.to_json())


def target_points(report: dict) -> dict[str, float]:
    points: dict[str, float] = {}
    for c in report["checks"]:
        points[c["target"]] = round(points.get(c["target"], 0.0) + c["points"], 6)
    return points


def target_mistakes(report: dict, target: str) -> set[str]:
    return {m for c in report["checks"] if c["target"] == target for m in c["mistakes"]}


def _let_through(answers, *args, **kwargs):
    return {target: [] for target in answers}


@pytest.fixture
def rules_let_through(monkeypatch):
    """A bug in the rules and the guards, made on purpose: every answer cell runs whatever it holds, so that
    what the test sees is the sandbox's own doing (grading never runs code outside the answer
    language; `tests/answer/test_language.py` shows each such construct refused)."""
    from autograder.answer import rules
    from autograder.sandbox import attempt

    monkeypatch.setattr(rules, "judge", _let_through)
    monkeypatch.setattr(attempt, "GUARDED", False)  # nor the answer language's run-time guards


@pytest.fixture
def unguarded(monkeypatch):
    """The student's process runs cells as plain Python, without the answer language's guards:
    for the tests of the sandbox itself, which hand it code no answer could run."""
    from autograder.sandbox import attempt

    monkeypatch.setattr(attempt, "GUARDED", False)


#: `python -m tests.support.unchecked ARGS`: the `autograder` command with the rules let through.
UNCHECKED = [sys.executable, "-m", "tests.support.unchecked"]
