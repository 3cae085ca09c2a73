"""Every attack in docs/contract.md's list, as a notebook graded by the real `autograder check`.

Each test asserts what the attack gets (never full marks it did not earn), that the rest of the
submission keeps its points, and that the files it could try to reach are as they were. Grading
runs the answer cells (and the lesson's own code they need), never a cell the student added: so
an attack sits in an answer cell, after a right answer (`after_right_mse`), and raises at its
end to say what it saw, which the report's notes show. Code outside the answer language
(`open`, `os`, `signal`, other programs, ...) never runs at all: the tests of what the sandbox
does with such code let it through the rules on purpose (`rules_let_through`, a bug made for
the test), and tests/sandbox/test_sandbox.py gives the sandbox such code directly. The tests
that need a layer of the sandbox (namespaces, an own uid) skip where this platform does not
offer it, and say so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autograder import settings
from autograder.sandbox.layers import choose_layers
from autograder.sandbox.process import gpu_here
from tests.conftest import (
    CORRECT,
    REPO,
    UNCHECKED,
    check_report,
    needs_layer,
    run_cli,
    target_mistakes,
    target_points,
)

pytestmark = pytest.mark.sandbox

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}
REST = {"relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}  # all but mse_grad
SOLUTIONS = REPO / "solutions" / "backward" / "reference.py"
assert SOLUTIONS.is_file()  # the attacks below read it: a file moved must not make them pass
SOURCE_NOTEBOOK = REPO / "assignments" / "backward" / "backward.ipynb"

LAYERS = choose_layers()
needs_namespaces = needs_layer(not LAYERS.namespaces,
                               "no Linux namespaces here (unshare): files and "
                                             "network are not hidden from the student")
needs_process_control = needs_layer(
    not (LAYERS.namespaces or LAYERS.own_uid),
    "neither a pid namespace nor an own uid here: setsid() children can escape")
needs_memory_limit = pytest.mark.skipif(
    gpu_here(), reason="a GPU is here: CUDA needs more address space than the memory limit")
linux_only = pytest.mark.skipif(not Path("/proc/self/comm").exists(), reason="needs /proc")


RIGHT_MSE = ("def mse_grad(inp, targ):\n"
             "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")


def after_right_mse(attack: str) -> dict[str, str]:
    """An mse_grad cell that defines a right mse_grad, then runs `attack` (which ends by raising
    what it saw: the notes name the cell's error)."""
    return {"mse_grad": RIGHT_MSE + attack}


def rest_of(report: dict) -> dict[str, float]:
    return {t: p for t, p in target_points(report).items() if t != "mse_grad"}


def notes(report: dict) -> str:
    return "\n".join(report["notes"])


def messages(report: dict, target: str) -> str:
    return "\n".join(c["message"] for c in report["checks"] if c["target"] == target)


# --- what an attack could reach: a fake course next to the notebook --------------------------

COURSE_FILES = {
    "gradebook.db": b"SQLite format 3\x00 sentinel-gradebook",
    "grades.csv": b"student,score\nbob,3\n",
    "report.json": b'{"score": 3.0}',
    "submitted/bob/backward/backward.ipynb": b'{"sentinel": "bob\'s work"}',
    "source/backward/backward.ipynb": b'{"sentinel": "the source"}',
    "autograded/bob/backward/backward.ipynb": b'{"sentinel": "bob graded"}',
}


@pytest.fixture
def course(tmp_path) -> Path:
    """Sentinel files next to the notebook, as in an nbgrader course directory."""
    for rel, data in COURSE_FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    return tmp_path


def assert_course_untouched(root: Path, notebook: Path) -> None:
    for rel, data in COURSE_FILES.items():
        assert (root / rel).read_bytes() == data, rel
    found = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert found <= set(COURSE_FILES) | {notebook.name}, found - set(COURSE_FILES)


# --- processes: a token in the name of whatever the attack starts ----------------------------

def new_token() -> str:
    return "ag" + uuid.uuid4().hex[:13]  # 15 characters: fits in /proc/PID/comm


def processes_with(token: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            comm = Path(f"/proc/{pid}/comm").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline or token.encode() in comm:
            found.append(int(pid))
    return found


def assert_none_left(token: str) -> None:
    deadline = time.monotonic() + 15  # SIGKILL is sent; give the kernel time to reap
    while (left := processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        os.kill(pid, 9)  # leave the machine clean, then fail
    assert not left, f"still running after the check: {left}"


LOOP = ("import signal, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\n"
        "end = time.time() + 120\n"
        "while time.time() < end: time.sleep(0.1)\n")


@pytest.fixture
def short_timeouts(monkeypatch):
    # A hang is detected at its deadline: deadlines sized for these tests, not the defaults.
    monkeypatch.setattr(settings, "TARGET_TIMEOUT", 3.0)
    monkeypatch.setattr(settings, "CELLS_TIMEOUT", 15.0)


# --- patching comparisons, lying objects ----------------------------------------------------

WRONG_MSE = "def mse_grad(inp, targ):\n    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1)\n"


def test_patching_torch_numpy_and_tensor_comparisons_changes_nothing(make_notebook):
    cheat = ("import torch, numpy, numpy.testing, torch.testing\n"
             "yes = lambda *a, **k: True\n"
             "torch.allclose = torch.equal = torch.isclose = yes\n"
             "torch.Tensor.allclose = torch.Tensor.equal = yes\n"
             "torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)\n"
             "torch.Tensor.__ne__ = lambda self, other: torch.zeros((), dtype=torch.bool)\n"
             "torch.isfinite = lambda t: torch.ones_like(t, dtype=torch.bool)\n"
             "torch.testing.assert_close = lambda *a, **k: None\n"
             "numpy.allclose = numpy.array_equal = yes\n"
             "numpy.testing.assert_allclose = lambda *a, **k: None\n" + WRONG_MSE)
    code, report = check_report(make_notebook({"mse_grad": cheat}))
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert rest_of(report) == REST


@pytest.mark.parametrize("liar", [
    # an object that says it equals anything and looks like a tensor
    "class Liar:\n"
    "    shape = property(lambda self: self.t.shape)\n"
    "    def __init__(self, t): self.t = t\n"
    "    def __eq__(self, other): return True\n"
    "    def __getattr__(self, name): return getattr(self.t, name)\n"
    "def mse_grad(inp, targ):\n    inp.g = Liar(torch.zeros_like(inp))\n",
    # a tensor subclass whose every torch function answers True
    "class Liar(torch.Tensor):\n"
    "    def __eq__(self, other): return True\n"
    "    @classmethod\n"
    "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
    "        if func.__name__ in ('__get__', 'shape', 'dtype', 'device', 'dim', 'numel'):\n"
    "            return super().__torch_function__(func, types, args, kwargs or {})\n"
    "        return True\n"
    "def mse_grad(inp, targ):\n    inp.g = torch.zeros_like(inp).as_subclass(Liar)\n",
    # a subclass that pickles as something else
    "class Liar(torch.Tensor):\n"
    "    def __reduce_ex__(self, proto): return (torch.ones, (tuple(self.shape),))\n"
    "def mse_grad(inp, targ):\n    inp.g = torch.zeros_like(inp).as_subclass(Liar)\n",
], ids=["object", "torch-function", "pickle"])
def test_objects_and_tensor_subclasses_that_lie_about_equality_get_nothing(make_notebook, liar):
    code, report = check_report(make_notebook({"mse_grad": "import torch\n" + liar}))
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert rest_of(report) == REST


# --- exits: each loses what it should, and nothing else --------------------------------------

@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "raise SystemExit(0)",
                                       "import os; os._exit(0)"])
def test_exiting_at_the_top_of_a_cell_loses_that_cell_only(make_notebook, exit_call, rules_let_through):
    cell = exit_call + "\n" + WRONG_MSE.replace("(inp.squeeze", "2. * (inp.squeeze")
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert "mse_grad.error" in target_mistakes(report, "mse_grad") or \
        "mse_grad.crashed" in target_mistakes(report, "mse_grad")
    assert rest_of(report) == REST


@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "raise SystemExit(0)",
                                       "import os; os._exit(0)", "import os; os.abort()"])
def test_exiting_in_an_extra_cell_costs_nothing(make_notebook, exit_call):
    code, report = check_report(make_notebook(extra_cells=[exit_call]))
    assert code == 0
    assert target_points(report) == FULL


@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "raise SystemExit(3)",
                                       "import os; os._exit(0)", "import os; os._exit(1)"])
def test_exiting_inside_mse_grad_loses_mse_grad_only(make_notebook, exit_call, rules_let_through):
    cell = "def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / " \
           f"inp.shape[0]\n    {exit_call}\n"
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    mistakes = target_mistakes(report, "mse_grad")
    assert mistakes & {"mse_grad.crashed", "mse_grad.error"}, mistakes
    if "_exit" in exit_call:
        assert "mse_grad.crashed" in mistakes and "exited with code" in messages(report, "mse_grad")
    assert rest_of(report) == REST


# --- hangs that ignore signals ----------------------------------------------------------------

@linux_only
@needs_process_control
def test_an_endless_loop_that_ignores_signals_times_out_mse_grad_only(make_notebook, short_timeouts, rules_let_through):
    cell = ("import os, signal\n"
            "def mse_grad(inp, targ):\n"
            "    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
            "        signal.signal(s, signal.SIG_IGN)\n"
            "    try:\n        os.setsid()  # leave the process group it was started in\n"
            "    except OSError:\n        pass\n"
            "    while True:\n        pass\n")
    start = time.monotonic()
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert time.monotonic() - start < 120
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert "mse_grad.timeout" in target_mistakes(report, "mse_grad")
    assert "time limit" in messages(report, "mse_grad")
    assert rest_of(report) == REST


@linux_only
@needs_process_control
def test_an_endless_loop_at_the_top_of_a_cell_loses_that_cell_only(make_notebook, monkeypatch, rules_let_through):
    monkeypatch.setattr(settings, "CELLS_TIMEOUT", 5.0)
    cell = LOOP.replace("120", "1e9") + WRONG_MSE
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert target_points(report)["mse_grad"] == 0.0
    assert "mse_grad.timeout" in target_mistakes(report, "mse_grad")
    assert rest_of(report) == REST


# --- memory -----------------------------------------------------------------------------------

HOG = ("    chunks = []\n"
       "    for _ in range(24):  # 3 GiB, touched, unless a limit stops it first\n"
       "        chunks.append(bytearray(128 << 20))\n")


@needs_memory_limit
def test_a_memory_hog_inside_mse_grad_is_stopped_and_named(make_notebook, monkeypatch, rules_let_through,
                                                           ample_deadlines):
    monkeypatch.setattr(settings, "MEMORY_LIMIT", 1 << 30)
    cell = "def mse_grad(inp, targ):\n" + HOG + \
           "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert "mse_grad.memory" in target_mistakes(report, "mse_grad")
    assert "1 GiB" in messages(report, "mse_grad")
    assert rest_of(report) == REST


@needs_memory_limit
def test_a_torch_allocation_over_the_limit_is_a_memory_failure(make_notebook, ample_deadlines):
    cell = ("import torch\ndef mse_grad(inp, targ):\n"
            "    inp.g = torch.ones(1 << 32, dtype=torch.float64)[:1]  # 32 GiB\n")
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert target_points(report)["mse_grad"] == 0.0
    assert "mse_grad.memory" in target_mistakes(report, "mse_grad")
    assert "2 GiB" in messages(report, "mse_grad")
    assert rest_of(report) == REST


@needs_memory_limit
def test_a_memory_hog_at_the_top_of_a_cell_loses_that_cell_only(make_notebook, monkeypatch, rules_let_through,
                                                                ample_deadlines):
    monkeypatch.setattr(settings, "MEMORY_LIMIT", 1 << 30)
    cell = "if True:\n" + HOG + WRONG_MSE
    code, report = check_report(make_notebook({"mse_grad": cell}))
    assert target_points(report)["mse_grad"] == 0.0
    assert "mse_grad.memory" in target_mistakes(report, "mse_grad")
    assert "1 GiB" in messages(report, "mse_grad")
    assert rest_of(report) == REST


# --- children that try to outlive the check --------------------------------------------------

SPAWNS = {
    "popen-new-session": (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', LOOP, TOKEN], start_new_session=True)\n"),
    "fork": (
        "import os\n"
        "if os.fork() == 0:\n"
        "    try:\n"
        "        open('/proc/self/comm', 'w').write(TOKEN)\n"
        "        exec(LOOP)\n"
        "    finally:\n"
        "        os._exit(0)\n"),
    "double-fork-setsid": (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    try:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            os.execv(sys.executable, [sys.executable, '-c', LOOP, TOKEN])\n"
        "    finally:\n"
        "        os._exit(0)\n"
        "os.wait()\n"),
}


@linux_only
@pytest.mark.parametrize("how", sorted(SPAWNS))
def test_an_answer_that_starts_other_programs_is_not_run_and_leaves_nothing(make_notebook, how):
    token = new_token()
    cell = (f"TOKEN = {token!r}\nLOOP = {LOOP!r}\n" + SPAWNS[how] +
            "import time; time.sleep(0.5)\nraise RuntimeError('spawned ' + TOKEN)\n")
    code, report = check_report(make_notebook(after_right_mse(cell)))
    assert f"spawned {token}" not in notes(report)  # the cell never ran
    assert target_points(report) == {**FULL, "mse_grad": 0.0}
    assert target_mistakes(report, "mse_grad") == {"mse_grad.not_allowed"}
    assert "import os" in messages(report, "mse_grad") or \
        "import subprocess" in messages(report, "mse_grad")
    assert_none_left(token)


@pytest.mark.parametrize("extra", [
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "import sys\nsys.exit(3)\n",
    "while True:\n    pass\n",
])
def test_a_cell_the_student_added_never_runs_in_grading(make_notebook, extra):
    code, report = check_report(make_notebook(extra_cells=[extra]))
    assert code == 0 and target_points(report) == FULL


# --- reading what it should not --------------------------------------------------------------

@needs_namespaces
def test_the_reference_solutions_cannot_be_read(make_notebook, course, rules_let_through):
    cheat = ("def mse_grad(inp, targ):\n"
             f"    text = open({str(SOLUTIONS)!r}).read()\n"
             "    raise RuntimeError(f'read {len(text)} bytes')\n")
    path = make_notebook({"mse_grad": cheat})
    code, report = check_report(path)
    assert target_points(report)["mse_grad"] == 0.0
    assert "FileNotFoundError" in messages(report, "mse_grad") or \
        "PermissionError" in messages(report, "mse_grad")
    assert "bytes" not in messages(report, "mse_grad")
    assert rest_of(report) == REST
    assert_course_untouched(course, path)


@needs_namespaces
def test_the_course_the_source_notebook_and_other_files_cannot_be_read(make_notebook, course, rules_let_through):
    targets = [str(course / rel) for rel in COURSE_FILES] + [
        str(SOURCE_NOTEBOOK), str(SOLUTIONS), str(REPO / "README.md"), str(course)]
    cell = ("import os\nseen = []\n"
            f"for p in {targets!r}:\n"
            "    try:\n"
            "        found = os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(200)\n"
            "        if found:  # a hidden file reads as empty\n"
            "            seen.append(found)\n"
            "    except OSError as e:\n"
            "        pass\n"
            "raise RuntimeError(f'tried; read {seen!r}')\n")
    path = make_notebook(after_right_mse(cell))
    code, report = check_report(path)
    said = notes(report)
    assert "tried; read []" in said, said
    assert "sentinel" not in said and "BEGIN SOLUTION" not in said
    assert target_points(report) == FULL
    assert_course_untouched(course, path)


@linux_only
@needs_namespaces
def test_the_graders_processes_and_environment_cannot_be_read(make_notebook, monkeypatch, rules_let_through):
    secret = new_token()
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", secret)  # in the grader's environment only
    cell = ("import os\nfound, pids = [], 0\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    pids += 1\n"
            "    for part in ('environ', 'cmdline'):\n"
            "        try:\n"
            "            data = open(f'/proc/{pid}/{part}', 'rb').read()\n"
            "        except OSError:\n"
            "            continue\n"
            f"        if {secret!r}.encode() in data:\n"
            "            found.append((pid, part))\n"
            "raise RuntimeError(f'scanned {pids} processes, found {found}')\n")
    code, report = check_report(make_notebook(after_right_mse(cell)))
    said = notes(report)
    assert "scanned" in said and "found []" in said, said
    assert target_points(report) == FULL


@needs_namespaces
def test_there_is_no_network(make_notebook, rules_let_through):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    cell = ("import socket\nresults = []\n"
            f"for host in ('127.0.0.1', 'example.com'):\n"
            "    try:\n"
            f"        s = socket.create_connection((host, {port} if host[0] == '1' else 80), 3)\n"
            "        s.sendall(b'leak'); results.append('connected')\n"
            "    except OSError as e:\n"
            "        results.append(type(e).__name__)\n"
            "raise RuntimeError(f'network: {results}')\n")
    try:
        code, report = check_report(make_notebook(after_right_mse(cell)))
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()
    assert "network:" in notes(report) and "connected" not in notes(report)
    assert target_points(report) == FULL


def test_walking_frames_and_the_garbage_collector_finds_no_answer(make_notebook):
    cheat = ("import gc, sys, torch\n"
             "SUSPECT = {'expected', 'truth', 'answer', 'accepted', 'solution', 'solutions',\n"
             "           'reference', 'plan', 'planned'}\n"
             "def mse_grad(inp, targ):\n"
             "    found, same_shape = [], []\n"
             "    frame = sys._getframe()\n"
             "    while frame is not None:\n"
             "        found += [k for k, v in frame.f_locals.items() if str(k).lower() in SUSPECT\n"
             "                  and isinstance(v, (torch.Tensor, dict))]\n"
             "        frame = frame.f_back\n"
             "    for obj in gc.get_objects():\n"
             "        if isinstance(obj, dict):\n"
             "            found += [k for k, v in list(obj.items())[:50] if isinstance(k, str)\n"
             "                      and k.lower() in SUSPECT and isinstance(v, torch.Tensor)]\n"
             "        elif isinstance(obj, torch.Tensor) and obj is not inp and obj.shape == inp.shape:\n"
             "            same_shape.append(obj)\n"
             "    if found:\n"
             "        raise RuntimeError(f'found {sorted(set(found))}')\n"
             "    inp.g = same_shape[-1] if same_shape else torch.zeros_like(inp)\n")
    code, report = check_report(make_notebook({"mse_grad": cheat}))
    assert "found" not in messages(report, "mse_grad")
    assert target_points(report)["mse_grad"] == 0.0
    assert rest_of(report) == REST


def test_rewriting_the_serialisers_fakes_nothing(make_notebook):
    cheat = ("import json, pickle, pathlib, torch, torch.serialization\n"
             "_save = torch.save\n"
             "def save(obj, f, *a, **k):  # whatever mse_grad sent, claim 0.5 everywhere\n"
             "    if isinstance(obj, dict):\n"
             "        obj = {key: torch.full_like(v, 0.5) if key.endswith('inp.g') and v.dim() == 2\n"
             "               and v.shape[-1] == 1 else v for key, v in obj.items()}\n"
             "    return _save(obj, f, *a, **k)\n"
             "torch.save = torch.serialization.save = save\n"
             "json.dumps = lambda *a, **k: '{\"status\": \"ok\", \"score\": 10}'\n"
             "pickle.dumps = lambda *a, **k: b'nothing'\n"
             "pathlib.Path.write_text = lambda self, *a, **k: 0\n"
             "pathlib.Path.write_bytes = lambda self, *a, **k: 0\n"
             "def mse_grad(inp, targ):\n    inp.g = torch.zeros_like(inp)\n")
    code, report = check_report(make_notebook({"mse_grad": cheat}))
    assert code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert rest_of(report) == REST


@needs_namespaces
def test_writing_to_files_it_can_reach_changes_none_of_them(make_notebook, course, rules_let_through):
    token = new_token()
    paths = [str(course / rel) for rel in COURSE_FILES] + [
        str(course / "new-grades.csv"), str(REPO / f"pwned-{token}"),
        str(SOLUTIONS.parent / f"pwned-{token}"), str(REPO / "autograder" / "sandbox" / f"pwned-{token}"),
        str(Path(sys.prefix) / f"pwned-{token}")]
    cell = ("wrote = []\n"
            f"for p in {paths!r}:\n"
            "    try:\n"
            "        with open(p, 'w') as f:\n"
            "            f.write('student,score\\nme,10\\n')\n"
            "        wrote.append(p)\n"
            "    except OSError:\n"
            "        pass\n"
            "raise RuntimeError(f'wrote {wrote}')\n")
    path = make_notebook(after_right_mse(cell))
    try:
        code, report = check_report(path)
    finally:
        leaked = [p for p in paths[len(COURSE_FILES):] if os.path.exists(p)]
        for p in leaked:
            if "pwned" in p:
                os.unlink(p)
    assert not leaked, leaked
    assert "wrote [" in notes(report)
    assert target_points(report) == FULL
    assert_course_untouched(course, path)


# --- floods -----------------------------------------------------------------------------------

def test_floods_of_output_are_cut_and_the_json_stays_clean(make_notebook, ample_deadlines):
    flood = ("def mse_grad(inp, targ):\n"
             "    _ = print('{\"score\": 10}\\n' * 400_000)  # about 5 MB; a bare print\n"
             "    _ = print('x' * 5_000_000)  # does not run in grading, a print as a value does\n"
             "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
    path = make_notebook({"mse_grad": flood, "relu_grad": CORRECT["relu_grad"]
                          + "_ = print('y' * 20_000_000)\n"})
    done = run_cli("check", str(path), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # one JSON object, nothing else
    assert report["score"] == 10.0
    shown = run_cli("check", str(path), "--show-output")
    assert len(shown.stdout) < 4 << 20 and "more bytes not kept" in shown.stdout


# --- notebooks changed where only the instructor may change them -----------------------------

def test_changed_points_test_cells_metadata_and_kernelspec_are_ignored(make_notebook):
    path = make_notebook({"mse_grad": WRONG_MSE})
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):  # a test cell
            meta["points"] = 100
            cell["source"] = "assert True  # all good"
        if meta.get("grade_id") == "mse_grad":
            meta.update(grade=True, points=50, locked=True)
    nb["cells"].append({"cell_type": "code", "execution_count": None, "outputs": [],
                        "metadata": {"nbgrader": {"grade": True, "solution": False, "points": 1000,
                                                  "grade_id": "check_mse_grad_2"}},
                        "source": "print('full marks')"})
    nb["metadata"]["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "bash"}
    path.write_text(json.dumps(nb))
    code, report = check_report(path)
    assert report["max_score"] == 10.0
    assert {t: round(sum(c["max_points"] for c in report["checks"] if c["target"] == t), 6)
            for t in FULL} == FULL
    assert target_points(report)["mse_grad"] == 0.0


@pytest.mark.parametrize("content", [b"[" * 100_000 + b"]" * 100_000,
                                     b'{"cells": [{"cell_type": "code", "source": 5}], "nbformat": 4}',
                                     b'{"cells": [{"cell_type": "code", "source": ["a", 1]}]}',
                                     bytes(range(256)) * 100])
def test_files_that_are_not_notebooks_exit_2(tmp_path, content):
    path = tmp_path / "backward.ipynb"
    path.write_bytes(content)
    done = run_cli("check", str(path), "--json")
    assert done.returncode == 2 and set(json.loads(done.stdout)) == {"error", "file"}
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert json.loads(done.stdout)["error"] in done.stderr  # the same line, for a script


def test_a_folder_instead_of_a_notebook_exits_2(tmp_path):
    done = run_cli("check", str(tmp_path), "--json")
    assert done.returncode == 2 and "folder" in done.stderr


# --- values that are not gradients ------------------------------------------------------------

@pytest.mark.parametrize(("value", "code"), [
    ("torch.full_like(inp, float('nan'))", "mse_grad.not_finite"),
    ("torch.full_like(inp, float('inf'))", "mse_grad.not_finite"),
    ("float('nan')", "mse_grad.not_tensor"),
    ("[[0.0]] * inp.shape[0]", "mse_grad.not_tensor"),
    ("inp.numpy() * 0", "mse_grad.not_tensor"),
    ("'the gradient'", "mse_grad.not_tensor"),
    ("None", "mse_grad.not_tensor"),
    ("torch.zeros(7, 3)", "mse_grad.wrong_shape"),
    ("torch.zeros(10**4, 10**3)", "mse_grad.error"),  # 40 MB a call: over the file size limit
])
def test_nans_and_values_that_are_not_tensors_fail_mse_grad_only(make_notebook, value, code):
    cell = f"import torch\ndef mse_grad(inp, targ):\n    inp.g = {value}\n"
    exit_code, report = check_report(make_notebook({"mse_grad": cell}))
    assert exit_code == 1
    assert target_points(report)["mse_grad"] == 0.0
    assert code in target_mistakes(report, "mse_grad")
    assert rest_of(report) == REST


# --- a batch: an attacker beside an honest student -------------------------------------------

@linux_only
@needs_namespaces
def test_an_attacker_graded_beside_an_honest_student_changes_nothing_for_them(make_notebook):
    marker = new_token()
    honest = make_notebook({"relu_grad": f"def relu_grad(inp, out):\n    inp.g = out.g  # {marker}\n"},
                           name="bob/backward.ipynb")
    honest_bytes = honest.read_bytes()
    # Runs alongside bob's check, for as long as its child lives: looks for bob's code and
    # results in every temp folder, and tries to overwrite bob's notebook and any results it
    # finds. Its child, with `running` in its command line, is the handshake: the test sees it
    # (in /proc) once the attack runs, and kills it once bob's check is done, which ends it.
    running = new_token()
    attack = (f"import glob, os, subprocess, sys, time\nMARKER, BOB = {marker!r}, {str(honest)!r}\n"
              "seen, wrote = set(), set()\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', "
              f"{running!r}])\n"
              "end = time.time() + 50  # within the cells' deadline, should the test never stop it\n"
              "while child.poll() is None and time.time() < end:\n"
              "    for p in glob.glob('/tmp/**', recursive=True)[:2000] + [BOB]:\n"
              "        if p.startswith(os.getcwd()):\n"
              "            continue  # its own working folder\n"
              "        try:\n"
              "            if os.path.isfile(p) and MARKER.encode() in open(p, 'rb').read():\n"
              "                seen.add(p)\n"
              "            if p.endswith(('.json', '.ipynb')):\n"
              "                open(p, 'w').write('{}')\n"
              "                wrote.add(p)\n"
              "        except OSError:\n"
              "            pass\n"
              "    time.sleep(0.2)\n"
              "how = 'stopped' if child.poll() is not None else 'timed out'\n"
              "raise RuntimeError(f'{how}: saw {sorted(seen)} wrote {sorted(wrote)}')\n")
    attacker = make_notebook({"mse_grad": WRONG_MSE + attack}, name="alice/backward.ipynb")
    alone = run_cli("check", str(honest), "--json", "--seed", "7")  # bob, graded on his own
    env = {**os.environ, "AUTOGRADER_CELLS_TIMEOUT": "60"}
    alice = subprocess.Popen([*UNCHECKED, "check", str(attacker), "--json"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    while not processes_with(running):  # the handshake: alice's attack is running
        assert alice.poll() is None, alice.communicate()
        time.sleep(0.1)
    beside = run_cli("check", str(honest), "--json", "--seed", "7")
    overlapped = processes_with(running)  # alice's attack ran all through bob's check
    for pid in overlapped:
        os.kill(pid, 9)  # which ends it
    out, _ = alice.communicate(timeout=300)
    alice_report = json.loads(out)
    assert alone.returncode == beside.returncode == 1
    report = json.loads(beside.stdout)
    assert report["checks"] == json.loads(alone.stdout)["checks"]
    assert target_points(report)["relu_grad"] < 2.0 and rest_of(report)["lin_grad"] == 3.0
    assert honest.read_bytes() == honest_bytes
    assert overlapped, "alice's attack ended before bob's check did"
    said = notes(alice_report)
    assert "stopped: saw [] wrote []" in said, said
    assert target_points(alice_report) == {**FULL, "mse_grad": 0.0}
