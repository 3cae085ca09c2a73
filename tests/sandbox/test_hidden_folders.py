"""The jail shows no exchange and no course, whatever the configuration.

The student's root binds the system's folders (`/usr`, `/etc`, ...) read-only: nbgrader's default
exchange (`/usr/local/share/nbgrader/exchange`), Jupyter's folders there, and a course or an
exchange an instructor configured under them would be readable by the student's process, which
without subordinate ids has the instructor's uid on the host. `policy.hidden_paths` leaves them
empty: nbgrader's and Jupyter's default folders always (the student's `check` knows no course),
and the course's folders, its exchange and gradebook once the course side has read its
configuration (`course.config.hide_course`).

Root (CI here) makes non-empty folders where an instructor would (under `/usr/local/share`),
then a graded process lists them and tries to read what they hold: as root, and as an ordinary
user without and with subordinate ids (tests/support/userenv.py), each cold and warm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from autograder.sandbox import policy
from tests.support.userenv import ordinary_user, why_no_subordinate_ids, why_not

pytestmark = pytest.mark.sandbox

USER = "autograder-hide"
SECRET = "agreleased-" + uuid.uuid4().hex
SHARE = Path("/usr/local/share")


# --- what is named, anywhere --------------------------------------------------------------------

def test_nbgrader_and_jupyter_defaults_are_named_without_importing_nbgrader():
    done = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom autograder.sandbox import layers, policy\n"
        "print('/usr/local/share/nbgrader' in policy.NBGRADER_FOLDERS, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('nbgrader', 'traitlets', "
        "'jupyter_core')))")], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "[]"], done.stdout


def test_a_folder_that_holds_what_the_process_needs_is_hidden_around_it(tmp_path, monkeypatch):
    course = tmp_path / "course"
    (course / ".venv" / "lib").mkdir(parents=True)
    (course / "submitted" / "ada").mkdir(parents=True)
    (course / "gradebook.db").write_text("grades")
    needed = policy.needed_paths()
    monkeypatch.setattr(policy, "needed_paths", lambda: [*needed, str(course / ".venv" / "lib")])
    monkeypatch.setenv(policy.COURSE_PATHS, str(course))
    hidden = policy.hidden_paths()
    assert str(course / "submitted") in hidden and str(course / "gradebook.db") in hidden
    assert not any(h in (str(course), str(course / ".venv"), str(course / ".venv" / "lib"))
                   for h in hidden), hidden
    monkeypatch.setenv(policy.COURSE_PATHS, "/")  # a configuration that names the root
    assert not any(h in ("/", "/usr", *needed) for h in policy.hidden_paths())


# --- in the jail, as root and as ordinary users -------------------------------------------------

#: As the grader: the sandbox on raw cells, before the course is known (a student's `check`),
#: then after the course side read its configuration; one JSON line of what the process saw.
INNER = '''
import json, sys
from pathlib import Path
from autograder.sandbox import attempt, policy
from autograder.sandbox.launch import run_untrusted

attempt.GUARDED = False  # raw cells, which no answer could run: the sandbox alone holds them

look = json.loads(sys.argv[1])
course = Path(look["course"])
needed = policy.needed_paths
policy.needed_paths = lambda: [*needed(), str(course / "venv")]  # a course with its venv inside
CELL = """import json, os
seen = {}
for path in %r:
    try:
        seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path).read()
    except OSError as exc:
        seen[path] = "refused: " + exc.strerror
print("SEEN", json.dumps(seen))
"""
out = {}
for when in ("check", "course"):
    if when == "course":
        from autograder.course.config import course_config
        course_config(course)
    for warm in (False, True):
        cells = [{"index": 0, "source": CELL % (look["paths"],), "name": "cell 0",
                  "first_line": ""}]
        run = run_untrusted(cells, ([{"name": "a target", "calls": []}], {}), warm=warm,
                            cells_timeout=120)
        line = [x for x in run.stdout.splitlines() if x.startswith("SEEN ")]
        out[f"{when} {'warm' if warm else 'cold'}"] = json.loads(line[0][5:]) if line else (
            run.stdout + run.stderr[-2000:] + json.dumps(run.cell_errors))
print(json.dumps(out))
'''


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@contextmanager
def instructors_folders():
    """Non-empty folders where an instructor's server has them, readable by anyone (as nbgrader
    leaves a released lesson): nbgrader's default exchange, a Jupyter data folder, a course
    under /usr/local/share whose configuration names an exchange beside it, its venv inside.
    Afterwards its own folders go, and the parents it made where nothing else is in them now
    (another test may release into nbgrader's default exchange meanwhile)."""
    tag = uuid.uuid4().hex[:8]
    default = Path("/usr/local/share/nbgrader/exchange") / f"course-{tag}"  # nbgrader's default
    jupyter = SHARE / "jupyter" / f"nbgrader_cache-{tag}"
    course, exchange = SHARE / f"agcourse-{tag}", SHARE / f"agexchange-{tag}"
    parents = [p for p in (default.parent, default.parent.parent, jupyter.parent) if not p.exists()]
    try:
        for parent in reversed(parents):  # outermost first, as an administrator makes them
            parent.mkdir(exist_ok=True)
            parent.chmod(0o1777 if parent == default.parent else 0o755)
        released = default / "outbound" / "backward" / "backward.ipynb"
        _write(released, SECRET)
        _write(jupyter / "backward" / "backward.ipynb", SECRET)
        _write(exchange / "backprop" / "outbound" / "backward" / "backward.ipynb", SECRET)
        _write(course / "nbgrader_config.py", f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n")
        _write(course / "gradebook.db", SECRET)
        _write(course / "submitted" / "ada" / "backward" / "backward.ipynb", SECRET)
        _write(course / "venv" / "marker.txt", "the venv")
        for root in (default, jupyter, course, exchange):
            for path in (root, *root.rglob("*")):
                path.chmod(0o755 if path.is_dir() else 0o644)
        check = [str(default.parent), str(released), str(jupyter.parent), str(jupyter)]
        yield {"course": str(course), "check": check, "course_too": [
            str(exchange), str(exchange / "backprop" / "outbound" / "backward" / "backward.ipynb"),
            str(course / "submitted"), str(course / "gradebook.db"),
            str(course / "venv" / "marker.txt")]}
    finally:
        for path in (default, jupyter, course, exchange):
            shutil.rmtree(path, ignore_errors=True)
        for parent in parents:  # innermost first
            try:
                parent.rmdir()
            except OSError:
                pass


def empty(seen: list | str) -> bool:
    """What the process saw of a path: nothing (an empty folder or file, or a refusal)."""
    return seen in ([], "") or (isinstance(seen, str) and seen.startswith("refused: "))


def assert_nothing_seen(out: dict, look: dict) -> None:
    assert len(out) == 4, out
    for when, seen in out.items():
        assert isinstance(seen, dict), f"{when}: {seen}"
        for path in look["check"]:  # (a student's `check` knows no course: the defaults)
            assert empty(seen[path]), (when, path, seen)
    for when in ("course cold", "course warm"):
        seen = out[when]
        assert SECRET not in json.dumps(seen), f"{when}: {seen}"
        for path in look["course_too"][:-1]:
            assert empty(seen[path]), (when, path, seen)
        assert seen[look["course_too"][-1]] == "the venv", seen  # what it needs, it still reads


def _argument(folders: dict) -> str:
    return json.dumps({"course": folders["course"],
                       "paths": folders["check"] + folders["course_too"]})


needs_root = pytest.mark.skipif(why_not(USER) is not None, reason=str(why_not(USER)))


def _run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_root
def test_the_graded_process_lists_no_exchange_and_no_course_as_root():
    with instructors_folders() as folders:
        out = _run([sys.executable, "-c", INNER, _argument(folders)])
        assert_nothing_seen(out, folders)


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("subordinate", [
    False, pytest.param(True, marks=pytest.mark.skipif(why_no_subordinate_ids() is not None,
                                                       reason=str(why_no_subordinate_ids())))],
    ids=["nested-user", "subordinate-ids"])
def test_the_graded_process_lists_no_exchange_and_no_course_as_an_ordinary_user(subordinate):
    with instructors_folders() as folders, ordinary_user(
            USER + ("-subid" if subordinate else ""), subordinate=subordinate) as env:
        script = env.workdir("inner") / "inner.py"
        script.write_text(INNER)
        script.chmod(0o644)
        out = _run(env.command([env.python, str(script), _argument(folders)]))
        assert_nothing_seen(out, folders)


# --- through the course: `autograder grade` and stock `nbgrader autograde` -----------------------

#: mse_grad right only where the process sees nothing of the course and its exchange.
LOOKS = '''import os
def mse_grad(inp, targ):
    seen = []
    for path in {paths!r}:
        try:
            seen += os.listdir(path)
        except OSError:
            pass
    sign = 1.0 if not seen else -1.0
    inp.g = sign * 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
'''
#: `nbgrader autograde` with the rules and guards let through (tests/conftest.rules_let_through).
STOCK = ("import sys\nfrom autograder.answer import rules\nfrom autograder.sandbox import attempt\n"
         "from tests.conftest import _let_through\n"
         "rules.judge = _let_through\nattempt.GUARDED = False\n"
         "from nbgrader.apps.nbgraderapp import main\n"
         "sys.argv = ['nbgrader', 'autograde', 'backward', '--student', 'eve', '--force']\nmain()\n")


@needs_root
@pytest.mark.slow
def test_a_course_and_its_exchange_under_usr_are_hidden_from_grade_and_nbgrader_autograde():
    from nbgrader.api import Gradebook

    from autograder.course import samples
    from autograder.course.release import release
    from tests.conftest import CORRECT, REPO, UNCHECKED
    from tests.sandbox.test_attacks import FULL

    tag = uuid.uuid4().hex[:8]
    course, exchange = SHARE / f"agcourse-{tag}", SHARE / f"agexchange-{tag}"
    try:
        released = json.loads(release(course, "backprop", assignment="backward", exchange=exchange)[0]
                              .read_text())
        assert list(exchange.rglob("backward.ipynb"))  # nbgrader released it there
        answers = {**CORRECT, "mse_grad": LOOKS.format(paths=[str(exchange), str(course)])}
        samples.write(samples.fill(released, answers),
                      course / "submitted" / "eve" / "backward" / "backward.ipynb")
        env = {**os.environ, "PYTHONPATH": str(REPO), "AUTOGRADER_TARGET_TIMEOUT": "300"}
        env.pop(policy.COURSE_PATHS, None)  # each command finds the course's folders itself

        def scores() -> dict[str, float]:
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
                nb = gb.find_submission_notebook("backward", "backward", "eve")
                return {g.name.removeprefix("check_"): g.score for g in nb.grades}

        done = subprocess.run([*UNCHECKED, "grade", "--course", str(course)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        assert scores() == FULL
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
            gb.remove_submission("backward", "eve")
        done = subprocess.run([sys.executable, "-c", STOCK], cwd=course, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        assert scores() == FULL
    finally:
        for path in (course, exchange):
            shutil.rmtree(path, ignore_errors=True)
