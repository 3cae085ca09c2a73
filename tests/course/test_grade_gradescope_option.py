"""`autograder grade --gradescope`: Gradescope's files only when asked for.

Without the option `grade` writes what the contract lists (gradebook, autograded/, feedback/,
grades.csv) and no gradescope/ folder; with it, each submission's
gradescope/<student>/<assignment>/results.json as well, the score the gradebook has.
"""

from __future__ import annotations

import json

import pytest

from autograder.course import samples
from autograder.course.release import release
from tests.conftest import BACKWARD, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

NO_FACTOR_2 = ("def mse_grad(inp, targ):\n"
               "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")


def test_grade_writes_gradescope_files_only_with_the_option(tmp_path):
    course = tmp_path / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    samples.write_class(released, course, BACKWARD, {"bob": ({"mse_grad": NO_FACTOR_2}, [])})

    done = run_cli("grade", "--course", str(course), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert (course / "grades.csv").is_file()
    assert (course / "feedback" / "bob" / "backward" / "backward.html").is_file()
    assert not (course / "gradescope").exists()

    done = run_cli("grade", "--course", str(course), "--workers", "1", "--gradescope")
    assert done.returncode == 0, done.stderr
    assert [p.relative_to(course).as_posix() for p in (course / "gradescope").rglob("*")
            if p.is_file()] == ["gradescope/bob/backward/results.json"]
    data = json.loads((course / "gradescope" / "bob" / "backward" / "results.json").read_text())
    assert data["score"] == 8.0
    assert [t["name"] for t in data["tests"] if t["status"] == "failed"] == ["mse_grad"]
