"""The jail: bounded time, nothing shared, nothing followed.

Each finding of the issue, through the real `check` or `grade` where a notebook can reach it, and
on the sandbox itself (`run_untrusted` with raw cells, which bypass the rules) where only code
the rules refuse could: budgets of a submission, System V memory, links in `submitted/`, the
student's one small writable place, what the student's process can learn of its jail,
`--require-isolation`, the system call filter.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.sandbox import layers as layers_module
from autograder.sandbox import warm
from autograder.sandbox.launch import Budget, run_untrusted
from autograder.sandbox.layers import Layers, Limits, choose_layers, prepare
from tests.conftest import (
    BACKWARD,
    CORRECT,
    REPO,
    check_json,
    check_report,
    needs_layer,
    target_mistakes,
    target_points,
)
from tests.sandbox.test_attacks import FULL, RIGHT_MSE, linux_only

# These hand the sandbox code no answer could run: the answer language's guards are off.
pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("unguarded")]

LAYERS = choose_layers()
WAYS = [False] + ([True] if warm.supported(LAYERS) else [])
needs_namespaces = needs_layer(not LAYERS.namespaces, "no namespaces here")
needs_seccomp = needs_layer(not LAYERS.seccomp, "no libseccomp binding here")


def run_cells(sources: list[str], warm_start: bool = False, **kwargs):
    cells = [{"index": i, "source": s, "name": f"cell {i}", "first_line": ""}
             for i, s in enumerate(sources)]
    return run_untrusted(cells, ([{"name": "a target", "calls": []}], {}), warm=warm_start,
                         **kwargs)


def said(run) -> str:
    return json.dumps(run.cell_errors) + run.stdout + run.stderr


# --- 1. budgets: one wall-clock and one CPU budget, a few restarts, bounded output --------------

def test_a_submission_that_hangs_in_every_answer_takes_its_budget_and_no_more(make_notebook):
    hang = "while True:\n    pass\n"  # in the answer language: only the budget stops it
    answers = {t: hang + CORRECT[t] for t in FULL}
    # Deadlines far past the budget: what stops it is the budget, however busy the machine.
    env = {**os.environ, "AUTOGRADER_CELLS_TIMEOUT": "120", "AUTOGRADER_TARGET_TIMEOUT": "120",
           "AUTOGRADER_SUBMISSION_TIMEOUT": "10", "AUTOGRADER_SUBMISSION_CPU": "600"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "autograder", "check",
                           str(make_notebook(answers)), "--json"],
                          capture_output=True, text=True, env=env)
    took = time.monotonic() - start
    report = json.loads(done.stdout)
    assert report["score"] == 0.0
    assert "budget of a submission" in json.dumps(report["checks"])
    # Four answers that each hang 120 s would take 480 s one restart after another.
    assert took < 240, took


#: Deadlines and a budget far past what the tests below take on a busy machine: each sees the
#: limit it is about (restarts, output, CPU), never a race with the clock.
AMPLE = {"cells_timeout": 300, "budget": Budget(wall=900)}


def test_restarts_are_few_and_fixed_however_many_cells_die():
    run = run_cells(["import os\nos._exit(1)\n"] * 10 + ["print('the last')"], WAYS[-1], **AMPLE)
    assert run.restarts == 3
    assert sorted(run.cell_errors) == [0, 1, 2, 3]
    assert "the last" not in run.stdout
    assert "gave up after 3 restarts" in run.targets["a target"].detail


def test_what_is_kept_of_the_output_is_bounded_over_all_restarts():
    flood = "import os, sys\nsys.stdout.write('x' * 600_000)\nsys.stdout.flush()\nos._exit(1)\n"
    run = run_cells([flood] * 6, WAYS[-1], **AMPLE)
    assert run.restarts == 3
    assert len(run.stdout) < (1 << 20) + 200 and "more bytes not kept" in run.stdout


def test_the_cpu_budget_counts_every_restart():
    start = time.monotonic()
    run = run_cells(["while True:\n    pass\n"] * 4, WAYS[-1], cells_timeout=300,
                    budget=Budget(cpu=3, wall=900))
    assert time.monotonic() - start < 600  # four cells hanging to their deadline: 1,200 s
    assert "its 3 s of CPU" in run.targets["a target"].detail
    assert run.restarts <= 1


# --- 2. System V shared memory dies with the process ----------------------------------------------

SYSV = '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(0, 64 << 20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
address = libc.shmat(shmid, None, 0)
ctypes.memset(address, 1, 64 << 20)
libc.shmdt(ctypes.c_void_p(address))
print("made", shmid)
'''
SYSV_LOOK = '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
print("seen" if libc.shmctl({shmid}, 2, buf) == 0 else "gone")  # IPC_STAT
'''


def sysv_segments() -> int:
    return len(Path("/proc/sysvipc/shm").read_text().splitlines()) - 1


@linux_only
@needs_namespaces
@pytest.mark.parametrize("warm_start", WAYS, ids=lambda w: "warm" if w else "cold")
def test_system_v_shared_memory_dies_with_the_process(warm_start):
    before = sysv_segments()
    made = run_cells([SYSV], warm_start)
    assert "made" in made.stdout, said(made)
    shmid = int(made.stdout.split("made")[1].split()[0])
    assert sysv_segments() == before  # nothing left on the machine
    looked = run_cells([SYSV_LOOK.format(shmid=shmid)], warm_start)
    assert "gone" in looked.stdout, said(looked)


@linux_only
def test_a_notebook_leaves_no_system_v_memory_behind(make_notebook):
    before = sysv_segments()
    code, report = check_json(make_notebook(after(SYSV), extra_cells=[SYSV]))
    assert target_mistakes(report, "mse_grad") == {"mse_grad.not_allowed"}
    assert {t: p for t, p in target_points(report).items() if t != "mse_grad"} == {
        t: p for t, p in FULL.items() if t != "mse_grad"}
    assert sysv_segments() == before


def after(attack: str) -> dict[str, str]:
    return {"mse_grad": RIGHT_MSE + attack}


# --- 3. links in submitted/ are not followed ------------------------------------------------------

@pytest.mark.slow
def test_links_in_a_submission_are_never_followed(released, tmp_path):
    from nbgrader.api import Gradebook

    from autograder.course.release import release

    course = tmp_path / "course"
    released_nb = json.loads(release(course, assignment="backward")[0].read_text())
    secret = "agsecret" + uuid.uuid4().hex
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{secret}\n")

    def hand_in(student: str, nb: dict | None = None) -> Path:
        folder = course / "submitted" / student / "backward"
        folder.mkdir(parents=True)
        if nb is not None:
            samples.write(nb, folder / "backward.ipynb")
        return folder

    right = samples.fill(released_nb, CORRECT)
    alice = hand_in("alice", right)
    (course / "submitted" / "linked").symlink_to(course / "submitted" / "alice")
    (hand_in("nblink") / "backward.ipynb").symlink_to(alice / "backward.ipynb")
    (hand_in("srclink") / "backward.ipynb").symlink_to(REPO / "assignments/backward/backward.ipynb")
    for name, target in (("shadow", "/etc/shadow"), ("environ", "/proc/self/environ"),
                         ("secret", outside)):
        (hand_in(name, right) / "timestamp.txt").symlink_to(target)
    (hand_in("extra", right) / "notes.txt").symlink_to(outside)
    os.mkfifo(hand_in("fifo") / "backward.ipynb")
    env = {**os.environ, "AUTOGRADER_TEST_SECRET": secret}
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "--course", str(course)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        scores = {s: gb.find_submission("backward", s).score
                  for s in ("alice", "linked", "nblink", "srclink", "shadow", "environ", "secret",
                            "extra", "fifo")}
        comments = " ".join(c.auto_comment or "" for s in scores
                            for c in gb.find_submission_notebook("backward", "backward", s).comments)
    assert scores == {"alice": 10.0, "extra": 10.0, **dict.fromkeys(
        ("linked", "nblink", "srclink", "shadow", "environ", "secret", "fifo"), 0.0)}
    rows = (course / "grades.csv").read_text()
    assert "submitted/linked is a link" in rows and "backward.ipynb is a link" in rows
    assert "timestamp.txt is a link" in rows and "not a plain file" in rows
    assert not (course / "autograded" / "extra" / "backward" / "notes.txt").exists()
    everything = rows + comments + done.stdout + "".join(
        p.read_text(errors="replace") for p in (course / "feedback").rglob("*.html"))
    for leak in (secret, "BEGIN SOLUTION", "root:"):
        assert leak not in everything, leak


# --- 5. the one writable place: its own, small, gone afterwards -----------------------------------

FILL = '''
import os
marker = {marker!r}
wrote, made, outside = 0, 0, []
try:
    with open("big", "wb") as f:
        for _ in range(200):
            f.write(b"x" * (1 << 20))
            wrote += 1
except OSError:
    pass
try:
    for i in range(20000):
        open(f"f{{i}}", "w").close()
        made += 1
except OSError:
    pass
for place in (marker, "/var/tmp/" + os.path.basename(marker), os.path.expanduser("~/x"),
              {repo!r} + "/x", "/x"):
    try:
        with open(place, "w") as f:
            f.write("left")
        outside.append(place)
    except OSError:
        pass
raise RuntimeError(f"wrote {{wrote}} MiB, made {{made}} files, outside {{outside}}")
'''


@linux_only
@needs_namespaces
def test_the_only_writable_place_is_small_its_own_and_gone_afterwards(make_notebook, tmp_path,
                                                                      rules_let_through,
                                                                      ample_deadlines):
    shared = Path(f"/tmp/agmarker-{uuid.uuid4().hex}")
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    marker = str(shared / "left-behind")
    free = shutil.disk_usage("/tmp").free
    try:
        code, report = check_report(make_notebook(after(FILL.format(marker=marker, repo=str(REPO)))))
        notes = json.dumps(report["notes"])
        wrote = int(notes.split("wrote ")[1].split(" MiB")[0])
        made = int(notes.split("made ")[1].split(" files")[0])
        assert wrote <= 64 and made <= 4096, notes
        assert not os.path.exists(marker) and not list(shared.iterdir())
        assert not os.path.exists(f"/var/tmp/{shared.name}")
        assert abs(shutil.disk_usage("/tmp").free - free) < (32 << 20)
        assert target_points(report) == FULL
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@linux_only
@needs_namespaces
def test_an_install_under_tmp_is_read_only_in_the_jail(tmp_path, monkeypatch):
    install = Path(f"/tmp/aginstall-{uuid.uuid4().hex}")
    install.mkdir()
    (install / "module.py").write_text("X = 1\n")
    os.chmod(install, 0o755)
    os.chmod(install / "module.py", 0o644)
    paths = layers_module.read_only_paths()
    monkeypatch.setattr(layers_module, "read_only_paths", lambda: (*paths, str(install)))
    try:
        cell = (f"print(open({str(install / 'module.py')!r}).read().strip())\n"
                "import os\n"
                f"for p in ({str(install / 'new.py')!r}, {str(install / 'module.py')!r}):\n"
                "    try:\n        open(p, 'w').write('changed')\n        print('wrote', p)\n"
                "    except OSError as e:\n        print('refused', e.strerror)\n")
        run = run_cells([cell])
        assert "X = 1" in run.stdout and "wrote" not in run.stdout, said(run)
        assert (install / "module.py").read_text() == "X = 1\n"
        assert sorted(p.name for p in install.iterdir()) == ["module.py"]
    finally:
        shutil.rmtree(install, ignore_errors=True)


# --- 6. what the student's process learns of its jail ---------------------------------------------

LOOK_FOR_THE_JAIL = '''
import gc, os, sys
found = []
frame = sys._getframe()
while frame is not None:
    found += [k for k, v in frame.f_locals.items() if isinstance(v, dict) and
              {"policy", "read_only", "rlimits", "refused_syscalls"} & set(map(str, v))]
    frame = frame.f_back
for obj in gc.get_objects():
    if isinstance(obj, dict) and {"read_only", "refused_syscalls"} <= set(map(str, obj)):
        found.append("a policy in memory")
cmdline = open("/proc/self/cmdline", "rb").read()
print("FOUND", found, "ENV", sorted(os.environ), "ARGV", b"{" in cmdline, "UID", os.getuid())
'''
ALLOWED_ENV = {"PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "MPLBACKEND", "PYTHONDONTWRITEBYTECODE",
               "PYTHONHASHSEED", "PYTHONBREAKPOINT", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "HOME",
               "TMPDIR"}


@linux_only
@needs_namespaces
@pytest.mark.parametrize("warm_start", WAYS, ids=lambda w: "warm" if w else "cold")
def test_nothing_about_the_jail_reaches_the_student(warm_start, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", "agsecret")
    run = run_cells([LOOK_FOR_THE_JAIL], warm_start)
    line = next(x for x in run.stdout.splitlines() if x.startswith("FOUND"))
    assert line.startswith("FOUND [] "), line
    env = set(eval(line.split("ENV ")[1].split(" ARGV")[0]))  # noqa: S307 - our own print
    assert env <= ALLOWED_ENV, env - ALLOWED_ENV
    assert "ARGV False" in line


def test_the_cold_command_line_holds_no_part_of_the_policy():
    spawn = prepare(Limits(), Layers(namespaces=True, own_uid=True))
    assert spawn.argv == [sys.executable, "-I", str(layers_module.JAIL)]  # the policy: on stdin


# --- --require-isolation ----------------------------------------------------------------------------

def test_require_isolation_refuses_where_namespaces_are_missing(tmp_path):
    env = {**os.environ, "AUTOGRADER_NO_NAMESPACES": "1", "COLUMNS": "200"}
    source = str(REPO / "assignments/backward/backward.ipynb")
    refused = subprocess.run([sys.executable, "-m", "autograder", "check", source, "--json",
                              "--require-isolation"], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "namespaces are not available" in refused.stderr
    assert "namespaces are not available" in json.loads(refused.stdout)["error"]  # for a script
    graded = subprocess.run([sys.executable, "-m", "autograder", "check", source, "--json"],
                            capture_output=True, text=True, env=env)
    notes = json.loads(graded.stdout)["notes"]
    assert any("no namespaces" in n for n in notes), notes  # the report names what applied


@pytest.mark.slow
def test_grade_with_require_isolation_grades_nothing_where_namespaces_are_missing(tmp_path):
    from autograder.course.release import release

    course = tmp_path / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    samples.write_class(released, course, BACKWARD, {"ada": ({}, [])})
    env = {**os.environ, "AUTOGRADER_NO_NAMESPACES": "1"}
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "--course", str(course),
                           "--require-isolation"], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "namespaces are not available" in done.stderr
    assert not (course / "grades.csv").exists()
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.IsolatedCheck.require_isolation = True\n")
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "--course", str(course)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "namespaces are not available" in done.stderr


# --- the system call filter --------------------------------------------------------------------------

SYSCALLS = '''
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(result):
    return errno.errorcode.get(ctypes.get_errno(), "?") if result == -1 else "ALLOWED"
print("unshare", errno_of(libc.unshare(0x10000000)))  # a user namespace of its own
print("ptrace", errno_of(libc.ptrace(0, 0, None, None)))  # PTRACE_TRACEME
print("mount", errno_of(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
print("keyctl", errno_of(libc.syscall(250, 0, 0, 0, 0)))  # keyctl on x86_64
'''


@linux_only
@needs_seccomp
@pytest.mark.parametrize("warm_start", WAYS, ids=lambda w: "warm" if w else "cold")
def test_system_calls_that_reach_beyond_the_process_are_refused(warm_start):
    run = run_cells([SYSCALLS], warm_start)
    out = run.stdout
    for name in ("unshare", "ptrace", "mount"):
        assert f"{name} EPERM" in out, said(run)
    if os.uname().machine == "x86_64":
        assert "keyctl EPERM" in out
    ctypes.CDLL(None)  # the grader's own process is not filtered
