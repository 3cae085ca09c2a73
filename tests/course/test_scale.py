"""Parallel and Dask grading give exactly the scores of serial grading."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import pytest

from autograder.course import local_pool, samples
from autograder.course.grade import grade_course
from autograder.course.release import release
from tests.conftest import BACKWARD

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

MEMBERS = {
    "ada": ({}, []),
    "ben": ({"mse_grad": "def mse_grad(inp, targ):\n    inp.g = -2. * (inp.squeeze(-1) - targ)"
                         ".unsqueeze(-1) / inp.shape[0]\n"}, []),
    "cai": ({"lin_grad": "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                         "    w.g = inp.t() @ out.g\n    b.g = out.g.mean(0)\n"}, []),
    "dee": b"not a notebook",
}


def scores(course: Path) -> dict[str, tuple[str, str]]:
    with open(course / "grades.csv") as f:
        return {row["student_id"]: (row["raw_score"], row["max_score"]) for row in csv.DictReader(f)}


def cell_scores(course: Path) -> dict[str, list[str]]:
    """Each student's graded notebook: what every grade cell says (the report, with the seed's
    inputs behind it), so that 'the same scores' also means the same checks and messages."""
    found = {}
    for path in sorted(course.glob("autograded/*/backward/backward.ipynb")):
        nb = json.loads(path.read_text())
        found[path.parts[-3]] = [json.dumps(c.get("outputs")) for c in nb["cells"]
                                 if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    return found


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A released course with a small class handed in (copied for each way of grading)."""
    course = tmp_path_factory.mktemp("scale") / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    samples.write_class(released, course, BACKWARD, MEMBERS)
    return course


def graded_copy(course: Path, name: str, **how) -> Path:
    copy = course.parent / name
    shutil.copytree(course, copy)
    grade_course(copy, **how)
    return copy


def test_parallel_grading_gives_exactly_the_scores_of_serial_grading(course):
    serial = graded_copy(course, "serial", workers=1)
    parallel = graded_copy(course, "parallel", workers=2)
    assert scores(serial) == scores(parallel)
    assert cell_scores(serial) == cell_scores(parallel)
    assert float(scores(serial)["ada"][0]) == 10.0 and float(scores(serial)["dee"][0]) == 0.0
    assert float(scores(serial)["ben"][0]) < 10.0 and float(scores(serial)["cai"][0]) < 10.0


def test_grading_processes_give_the_scores_of_threads_and_one_that_dies_costs_nothing(
        course, monkeypatch):
    threads = graded_copy(course, "threads", workers=2)  # a small class: threads
    monkeypatch.setattr(local_pool, "PROCESSES_FROM", 1)  # this class in grading processes
    killed = []

    def kill_a_grading_process(total, outcome):
        if outcome is not None and not killed:
            for child in multiprocessing.active_children():  # the grading processes (no
                os.kill(child.pid, signal.SIGKILL)          # feedback process for 4 pages)
                killed.append(child.pid)

    processes = course.parent / "processes"
    shutil.copytree(course, processes)
    grade_course(processes, workers=2, on_progress=kill_a_grading_process)
    assert killed, "the class was not graded in processes"
    assert scores(processes) == scores(threads)
    assert cell_scores(processes) == cell_scores(threads)


def test_grading_on_a_dask_cluster_gives_exactly_the_local_scores(course):
    distributed = pytest.importorskip("distributed")
    local = graded_copy(course, "local", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        on_dask = graded_copy(course, "dask", scheduler=cluster.scheduler_address)
    assert scores(on_dask) == scores(local)
    assert cell_scores(on_dask) == cell_scores(local)


def test_an_unreachable_scheduler_is_one_clear_error(course, tmp_path):
    from tests.conftest import run_cli

    copy = tmp_path / "c"
    shutil.copytree(course, copy)
    done = run_cli("grade", "--course", str(copy), "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
