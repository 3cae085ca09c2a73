"""Dask workers that share no disk with the grader: they need only the package installed.

Two real `dask worker` processes, in a mount namespace where an empty tmpfs lies
over the folder that holds the courses (and over the checkout's own lessons and solutions), in
another working directory: what they grade with travels to them as data. They give exactly the
scores and grade-cell outputs of local grading, and `autograder serve --scheduler` grades on them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.course.release import release
from tests.conftest import BACKWARD, CORRECT, REPO, run_cli
from tests.course.test_scale import MEMBERS, cell_scores, graded_copy, scores
from tests.support.courseusers import COURSE_ID, submit_as

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

#: What the workers cannot see besides the courses: the lessons and solutions this checkout
#: carries (a worker has the package alone).
CHECKOUT_LESSONS = (REPO / "assignments", REPO / "solutions")


def why_no_namespace() -> str | None:
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs over the course in the workers' mount namespace"
    if not shutil.which("unshare") or subprocess.run(
            ["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        return "needs `unshare --mount` (util-linux) and mount namespaces"
    return None


@pytest.fixture(scope="module")
def hidden(tmp_path_factory) -> Path:
    """The folder that holds the courses: the workers see an empty tmpfs in its place."""
    return tmp_path_factory.mktemp("nodisk")


@pytest.fixture(scope="module")
def cluster(hidden, tmp_path_factory):
    """A scheduler here and two `dask worker` processes that cannot see `hidden`."""
    if reason := why_no_namespace():
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("worker")
    (work / "tmp").mkdir()
    mounts = "".join(f"mount -t tmpfs -o mode=0755 none '{path}' && "
                     for path in (hidden, *CHECKOUT_LESSONS))
    with distributed.LocalCluster(n_workers=0, dashboard_address=None, processes=True) as local:
        dask = Path(sys.executable).parent / "dask"
        script = (f"{mounts}cd '{work}' && exec '{dask}' worker {local.scheduler_address} "
                  f"--nworkers 2 --nthreads 1 --no-dashboard --local-directory '{work}'")
        worker = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                   script], env={**os.environ, "TMPDIR": str(work / "tmp")},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            with distributed.Client(local.scheduler_address) as client:
                client.wait_for_workers(2, timeout=120)
            yield local.scheduler_address
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def test_the_workers_cannot_see_the_course(cluster, hidden):
    course = hidden / "a-course"
    course.mkdir()
    with distributed.Client(cluster) as client:
        seen = client.run(os.listdir, str(course), on_error="return")
        lessons = client.run(os.listdir, str(CHECKOUT_LESSONS[1]), on_error="return")
    assert len(seen) == 2 and all(isinstance(e, FileNotFoundError) for e in seen.values()), seen
    assert list(lessons.values()) == [[], []]


def test_workers_that_cannot_see_the_course_give_exactly_the_local_scores(cluster, hidden):
    course = hidden / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    samples.write_class(released, course, BACKWARD, MEMBERS)
    local = graded_copy(course, "local", workers=2)
    on_dask = graded_copy(course, "dask", scheduler=cluster)
    assert scores(on_dask) == scores(local)
    assert cell_scores(on_dask) == cell_scores(local)
    assert float(scores(on_dask)["ada"][0]) == 10.0 and float(scores(on_dask)["ben"][0]) < 10.0


def test_serve_grades_on_workers_that_cannot_see_the_course(cluster, hidden):
    course, exchange = hidden / "served", hidden / "exchange"
    released = json.loads(release(course, COURSE_ID, assignment="backward",
                                  exchange=exchange)[0].read_text())
    submit_as(exchange, "ada", samples.fill(released, CORRECT), hidden / "students")
    done = run_cli("serve", "--course", str(course), "--scheduler", cluster, "--once")
    assert done.returncode == 0, done.stderr
    assert "graded ada backward: 10 / 10" in done.stdout
    [entry] = [json.loads(line) for line in
               (course / "serve" / "journal.jsonl").read_text().splitlines()]
    assert entry["state"] == "graded" and entry["score"] == 10.0
    assert (exchange / COURSE_ID / "feedback" / f"{entry['feedback']}.html").is_file()


def test_a_lesson_travels_as_a_few_files_written_once_per_worker():
    from autograder.lesson.bundle import LessonBundle, bundle, unpack
    from autograder.lesson.model import LessonError

    made = bundle(BACKWARD)
    assert sorted(name for name, _ in made.files) == [
        "lessons/backward/backward.ipynb", "lessons/backward/lesson.py",
        "lessons/backward/lesson.toml", "solutions/backward/reference.py"]
    assert made.size < 64 * 1024  # sent once per worker, not with each task
    lesson, source = unpack(made)
    assert unpack(made) == (lesson, source)  # the second time: nothing written again
    assert lesson.folder != BACKWARD.folder and lesson.targets == BACKWARD.targets
    assert lesson.folder.parents[2].stat().st_mode & 0o777 == 0o700
    assert lesson.reference() is not None and source["cells"]
    forged = LessonBundle("backward", (("lessons/../../x", b""),), "0" * 32)
    with pytest.raises(LessonError, match="not a path inside a lesson"):
        unpack(forged)
