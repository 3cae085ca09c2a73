"""Grades no cell can fake: what a determined student tried, through the real `check` and `grade`.

Each attack here scored what it did not earn before grading ran only the answers and the
lesson's own code, read by the rules: a cell that replaces the
harness's call functions (10/10 with every stub left as it was), autograd behind a magic, a
computed `getattr`, `exec`, a helper in another cell, a redefinition in a later cell (9.3 to
9.8/10), and a results file that decompresses to gigabytes (the grader at 3.5 GB). Beside each
attacker, an honest student's report must be exactly what it is alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.course import put_python_on_path, samples
from autograder.course.release import release
from tests.answer.test_language import CHEATS
from tests.conftest import CORRECT, REPO, check_json, run_cli, target_mistakes, target_points

pytestmark = pytest.mark.sandbox

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}

#: Replaces the harness's call function, wherever it is, with one that calls an autograd
#: version of each target (and a right Module): the stubs stay as they were.
REPLACE_THE_HARNESS = '''
import sys, torch

def _auto(target):
    if target == "mse_grad":
        def mse_grad(inp, targ):
            with torch.enable_grad():
                x = inp.detach().clone().requires_grad_()
                (x.squeeze(-1) - targ).pow(2).mean().backward()
            inp.g = x.grad
        return mse_grad
    if target == "relu_grad":
        def relu_grad(inp, out):
            with torch.enable_grad():
                x = inp.detach().clone().requires_grad_()
                x.clamp_min(0.).backward(out.g)
            inp.g = x.grad
        return relu_grad
    if target == "lin_grad":
        def lin_grad(inp, out, w, b):
            with torch.enable_grad():
                x, v, c = (t.detach().clone().requires_grad_() for t in (inp, w, b))
                (x @ v + c).backward(out.g)
            inp.g, w.g, b.g = x.grad, v.grad, c.grad
        return lin_grad
    class Module:
        def __call__(self, *args):
            self.args = args
            self.out = self.forward(*args)
            return self.out
        def backward(self):
            self.bwd(self.out, *self.args)
    return Module

def _forge(module):
    real = module.run_call
    def run_call(namespace, call, tensors, *rest, **kw):
        namespace = dict(namespace)
        namespace[call["function"]] = _auto({"Module": "module_backward"}.get(call["function"],
                                                                               call["function"]))
        return real(namespace, call, tensors, *rest, **kw)
    module.run_call = run_call

for _module in list(sys.modules.values()):
    if hasattr(_module, "run_call"):
        _forge(_module)
'''

AUTOGRAD_MSE = ("    x = inp.detach().clone().requires_grad_()\n"
                "    (x.squeeze(-1) - targ).pow(2).mean().backward()\n"
                "    inp.g = x.grad\n")

#: Autograd the rule must see wherever it is: behind a magic, by computed names, in exec, in
#: a helper of another answer cell, in a redefinition in a later answer cell.
HIDDEN_AUTOGRAD = {
    "behind a %time magic": (
        {"mse_grad": "import torch\n%time _ = 1\ndef mse_grad(inp, targ):\n" + AUTOGRAD_MSE},
        "mse_grad", "mse_grad.not_allowed", "a magic (%time)"),
    "by computed names": (
        {"relu_grad": "import torch\ndef relu_grad(inp, out):\n"
                      "    x = getattr(torch.nn, 'Param' + 'eter')(inp.detach().clone())\n"
                      "    getattr(x.clamp_min(0.), 'back' + 'ward')(out.g)\n"
                      "    inp.g = getattr(x, 'gr' + 'ad')\n"},
        "relu_grad", "relu_grad.uses_autograd", "ran autograd while it was graded"),
    "in exec": (
        {"lin_grad": "import torch\nexec('def lin_grad(inp, out, w, b):\\n'\n"
                     "     '    with torch.enable_grad():\\n'\n"
                     "     '        x, v, c = (t.detach().clone().requires_grad_() for t in (inp, w, b))\\n'\n"
                     "     '        (x @ v + c).backward(out.g)\\n'\n"
                     "     '    inp.g, w.g, b.g = x.grad, v.grad, c.grad\\n')\n"},
        "lin_grad", "lin_grad.not_allowed", "exec()"),
    "in a helper of another answer cell": (
        {"mse_grad": "def mse_grad(inp, targ):\n    helper(inp, targ)\n",
         "relu_grad": CORRECT["relu_grad"] + "\nimport torch\n"
                      "def helper(inp, targ):\n" + AUTOGRAD_MSE},
        "mse_grad", "mse_grad.uses_autograd", "of the relu_grad cell"),
    "in a redefinition in a later answer cell": (
        {"lin_grad": CORRECT["lin_grad"] + "\nimport torch\n"
                     "def mse_grad(inp, targ):\n" + AUTOGRAD_MSE},
        "mse_grad", "mse_grad.uses_autograd", "of the lin_grad cell"),
}


@pytest.fixture(scope="module")
def stubs(released) -> dict[str, str]:
    """Each answer cell as released: the stub."""
    return {notebook_meta["grade_id"]: "".join(c["source"]) for c in released["cells"]
            if (notebook_meta := c["metadata"].get("nbgrader", {})).get("solution")}


def honest_checks(report: dict, targets) -> list:
    return [c for c in report["checks"] if c["target"] in targets]


# --- through `check` ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["a cell of its own", "the mse_grad cell", "the Module cell"])
def test_replacing_the_harness_from_a_cell_gets_nothing(make_notebook, stubs, where):
    if where == "a cell of its own":
        path = make_notebook(dict(stubs), extra_cells=[REPLACE_THE_HARNESS], correct_rest=False)
    elif where == "the mse_grad cell":
        path = make_notebook({**stubs, "mse_grad": REPLACE_THE_HARNESS + stubs["mse_grad"]},
                             correct_rest=False)
    else:
        path = make_notebook({**stubs, "module_backward": stubs["module_backward"]
                              + REPLACE_THE_HARNESS}, correct_rest=False)
    code, report = check_json(path)
    assert code == 1
    assert report["score"] == 0.0, target_points(report)
    if where != "a cell of its own":  # the rules name what it used, and the cell never ran
        target = "mse_grad" if where == "the mse_grad cell" else "module_backward"
        assert target_mistakes(report, target) == {f"{target}.not_allowed"}


def test_patching_module_backward_in_a_later_cell_gets_nothing(make_notebook, stubs):
    patch = ("def _backward(self):\n    self.bwd(self.out, *self.args)\n"
             "Module.backward = _backward\n")
    code, report = check_json(make_notebook({"module_backward": stubs["module_backward"]},
                                            extra_cells=[patch]))
    assert target_points(report)["module_backward"] == 0.0
    assert "module_backward.not_implemented" in target_mistakes(report, "module_backward")
    assert {t: p for t, p in target_points(report).items() if t != "module_backward"} == {
        t: p for t, p in FULL.items() if t != "module_backward"}


@pytest.fixture(scope="module")
def honest_alone(released, tmp_path_factory) -> dict:
    path = samples.write(samples.fill(released, CORRECT),
                         tmp_path_factory.mktemp("honest") / "backward.ipynb")
    done = run_cli("check", str(path), "--json", "--seed", "5")
    return json.loads(done.stdout)


@pytest.mark.parametrize("attack", sorted(HIDDEN_AUTOGRAD))
def test_autograd_is_found_wherever_it_is_and_costs_its_target_only(make_notebook, attack,
                                                                    honest_alone):
    answers, target, code, says = HIDDEN_AUTOGRAD[attack]
    done = run_cli("check", str(make_notebook(answers)), "--json", "--seed", "5")
    report = json.loads(done.stdout)
    assert target_points(report)[target] == 0.0
    assert target_mistakes(report, target) == {code}
    gate = next(c for c in report["checks"] if c["id"] == f"{target}/no-autograd")
    assert says in gate["message"], gate["message"]
    others = [t for t in FULL if t != target]
    assert honest_checks(report, others) == honest_checks(honest_alone, others)


def test_a_helper_in_a_cell_of_the_students_own_does_not_run(make_notebook):
    helper = "import torch\ndef helper(inp, targ):\n" + AUTOGRAD_MSE
    code, report = check_json(make_notebook({"mse_grad": "def mse_grad(inp, targ):\n"
                                                        "    helper(inp, targ)\n"},
                                            extra_cells=[helper]))
    assert target_points(report)["mse_grad"] == 0.0
    # Cells named as a student finds them: Jupyter shows no cell numbers.
    assert ("name 'helper' is not defined (the mse_grad cell, line 2); helper is defined in "
            "the cell \\\"import torch\\\", a cell of your own, which grading does not run: define "
            "it in the mse_grad cell") in json.dumps([c["message"] for c in report["checks"]])


# --- a results bomb: what reaches the grader is bounded by what it reads ------------------------

def bomb_pickle(numel: int) -> bytes:
    """torch.save's `data.pkl` for one float32 tensor of `numel` elements in storage '0' (made
    here, on the trusted side: the student's cell only copies the bytes)."""
    import collections
    import io
    import pickle

    import torch

    class Storage:
        pass

    storage = Storage()

    class Rebuild:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (storage, 0, (numel,), (1,), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is storage else None

    out = io.BytesIO()
    Pickler(out, protocol=2).dump({"mse_grad:values-float64:0/inp.g": Rebuild()})
    return out.getvalue()


def bomb(numel: int = 1 << 27) -> str:
    """A cell's code: while mse_grad runs, leave a results file for every other target that
    torch.load would inflate to `numel` float32s (512 MiB from about 0.5 MB), write lies on every
    descriptor (a frame with a made-up token claiming gigabytes, a safetensors header claiming
    10^12 elements, the bomb itself), then exit. Standard library only."""
    return f'''
import io, os, struct, zipfile
PICKLE = {bomb_pickle(numel)!r}

def _bomb():
    zeros = bytes(1 << 24)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", PICKLE)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3")
        with z.open("archive/data/0", "w", force_zip64=True) as f:
            for _ in range({numel} * 4 // len(zeros)):
                f.write(zeros)
    data = buf.getvalue()
    os.makedirs("results", exist_ok=True)
    for name in ("relu_grad", "lin_grad", "module_backward"):
        with open("results/" + name + ".pt", "wb") as f:
            f.write(data)
        with open("results/" + name + ".json", "w") as f:
            f.write("{{}}")
    header = b'{{"x":{{"dtype":"F64","shape":[1000000,1000000],"data_offsets":[0,8000000000000]}}}}'
    lies = [b"AGW1" + os.urandom(16) + b"R" + struct.pack("<II", 2**31, 2**31),
            struct.pack("<Q", len(header)) + header, data]
    for fd in range(3, 64):
        for lie in lies:
            try:
                os.write(fd, lie)
            except OSError:
                pass

def mse_grad(inp, targ):
    _bomb()
    os._exit(0)
'''


#: The command, with the peak of its own resident memory on stderr at the end. The peak counter
#: is reset first: a process that was forked from a large one (a test worker) and then exec'd
#: starts with that one's peak in its counters (ru_maxrss keeps it across exec).
PEAK = ("import sys, runpy\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "sys.argv = ['autograder', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('autograder', run_name='__main__')\n"
        "finally:\n"
        "    hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1]\n"
        "    sys.stderr.write(f'\\npeak-kib {hwm}\\n')\n")


def peak_mib(done: subprocess.CompletedProcess) -> float:
    line = [x for x in done.stderr.splitlines() if x.startswith("peak-kib ")][-1]
    return int(line.split()[1]) / 1024


def test_a_results_bomb_reaches_the_grader_bounded(make_notebook, honest_alone):
    path = make_notebook({"mse_grad": bomb()})
    # Making the bomb takes seconds of CPU: a deadline sized for it, so that it is made. The
    # bomb is far outside the answer language: the rules are let through (a bug made for the
    # test), so that what is measured is the wire's bound.
    env = {**os.environ, "AUTOGRADER_TARGET_TIMEOUT": "120"}
    done = subprocess.run([sys.executable, "-c", PEAK.replace("'autograder'", "'tests.support.unchecked'"),
                           "check", str(path), "--json", "--seed", "5"],
                          capture_output=True, text=True, env=env, cwd=REPO)
    report = json.loads(done.stdout)
    others = [t for t in FULL if t != "mse_grad"]
    assert target_points(report) == {**FULL, "mse_grad": 0.0}
    assert target_mistakes(report, "mse_grad") == {"mse_grad.crashed"}  # it exited
    assert honest_checks(report, others) == honest_checks(honest_alone, others)
    # What the student's code writes on its descriptors goes to its parent, never the grader's
    # channel: nothing of the bomb reaches the grader but the results its parent passes on.
    assert not any("were not the grader's" in n for n in report["notes"])
    assert peak_mib(done) < 600, (peak_mib(done), report["notes"])  # with the bomb: over 800


def test_a_cell_of_megabytes_of_the_students_own_does_not_hold_the_grader(make_notebook,
                                                                         honest_alone):
    # 16 MB of one flat expression (the notebook cap is 20 MiB): the grader reads a student's
    # own cells only for hints, and only as far as an answer: before, their parse took 11 s
    # and 3.3 GB on the trusted side, one parse at a time for the whole batch.
    huge = "x = " + "+".join(["1"] * 8_000_000) + "\n"
    path = make_notebook(extra_cells=[huge])
    done = subprocess.run([sys.executable, "-c", PEAK, "check", str(path), "--json", "--seed", "5"],
                          capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert honest_checks(report, list(FULL)) == honest_checks(honest_alone, list(FULL))
    assert peak_mib(done) < 1000, peak_mib(done)


# --- through `grade`: a class of attackers beside an honest student -------------------------------

@pytest.mark.slow
def test_a_class_of_attackers_gets_nothing_and_the_honest_student_is_graded_as_alone(
        released, stubs, tmp_path):
    class_ = {"honest": (CORRECT, [])}
    class_["harness"] = ({**stubs, "mse_grad": REPLACE_THE_HARNESS + stubs["mse_grad"]}, [])
    class_["harness-cell"] = (dict(stubs), [REPLACE_THE_HARNESS])
    for i, (answers, _, _, _) in enumerate(HIDDEN_AUTOGRAD.values()):
        class_[f"hidden{i}"] = ({**CORRECT, **answers}, [])
    class_["bomb"] = ({**CORRECT, "mse_grad": bomb()}, [])
    for how, cheat in CHEATS.items():  # each disguise, for mse_grad
        class_[f"cheat-{how.replace(' ', '-').replace(chr(39), '')}"] = (
            {**CORRECT, "mse_grad": cheat}, [])
    courses = {}
    course = tmp_path / "class"
    released_nb = json.loads(release(course, assignment="backward")[0].read_text())
    for student, (answers, extra) in class_.items():
        nb = samples.fill(released_nb, answers, extra) if student in ("harness", "harness-cell") \
            else samples.fill(released_nb, {**CORRECT, **answers}, extra)
        samples.write(nb, course / "submitted" / student / "backward" / "backward.ipynb")
    # The same course (its seed, so the same inputs for the same student), with the honest
    # student alone in it.
    alone = tmp_path / "alone"
    shutil.copytree(course, alone)
    for student in class_:
        if student != "honest":
            shutil.rmtree(alone / "submitted" / student)
    for name, where in (("class", course), ("alone", alone)):
        done = subprocess.run([sys.executable, "-c", PEAK, "grade", "--course", str(where)],
                              capture_output=True, text=True,
                              env={**os.environ, "AUTOGRADER_TARGET_TIMEOUT": "120"})
        assert done.returncode == 0, done.stderr[-2000:]
        courses[name] = (where, peak_mib(done))

    def scores(course: Path, student: str) -> dict[str, float]:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
            nb = gb.find_submission_notebook("backward", "backward", student)
            return {g.name.removeprefix("check_"): g.score for g in nb.grades}

    course, peak = courses["class"]
    assert scores(course, "harness") == dict.fromkeys(FULL, 0.0)
    assert scores(course, "harness-cell") == dict.fromkeys(FULL, 0.0)
    for i, (_, target, _, _) in enumerate(HIDDEN_AUTOGRAD.values()):
        assert scores(course, f"hidden{i}") == {**FULL, target: 0.0}
    assert scores(course, "bomb") == {**FULL, "mse_grad": 0.0}
    cheats = [s for s in class_ if s.startswith("cheat-")]
    for student in cheats:
        assert scores(course, student) == {**FULL, "mse_grad": 0.0}, student
    # The same disguises through stock nbgrader's autograde (our preprocessor in its place)...
    put_python_on_path()
    for student in cheats[:2]:
        done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "backward",
                               "--student", student, "--force"], cwd=course,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert scores(course, student) == {**FULL, "mse_grad": 0.0}, student
    # ...and through Gradescope's entry point.
    for student in cheats[:2]:
        upload = tmp_path / "gradescope" / student
        upload.mkdir(parents=True)
        shutil.copy(course / "submitted" / student / "backward" / "backward.ipynb", upload)
        done = subprocess.run([sys.executable, "-m", "autograder.course.gradescope", str(upload),
                               str(upload / "results.json")], capture_output=True, text=True,
                              cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads((upload / "results.json").read_text())["score"] == 8.0, student
    assert scores(course, "honest") == scores(courses["alone"][0], "honest") == FULL

    def cells(course: Path) -> list:
        nb = json.loads((course / "autograded" / "honest" / "backward" / "backward.ipynb").read_text())
        return [c["outputs"][0]["data"]["text/plain"] for c in nb["cells"] if c["cell_type"] == "code"
                and c["metadata"].get("nbgrader", {}).get("grade") and c.get("outputs")]

    assert cells(course) == cells(courses["alone"][0])  # the same inputs: the same report
    assert peak < 600, peak
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_autograd_passed_around_where_a_reader_cannot_follow_is_refused_as_it_runs(
        make_notebook, honest_alone):
    # mse_grad reads a registry that the Module cell fills, by a call the rules do not follow,
    # with torch.autograd.grad.
    module = CORRECT["module_backward"] + (
        "\nimport torch\nregister(torch.autograd.grad)\n")
    mse = ("import torch\n_REG = []\ndef register(f):\n    _REG.append(f)\n"
           "def mse_grad(inp, targ):\n"
           "    x = inp.detach().clone().requires_grad_(True)\n"
           "    inp.g, = _REG[0]((x.squeeze(-1) - targ).pow(2).mean(), x)\n")
    mse = mse.replace(".requires_grad_(True)", "")  # no autograd this cell shows...
    mse = mse.replace("    x = inp.detach().clone()\n",
                      "    x = _REG[1](inp)\n")  # ...the leaf comes from the registry too
    module += "register(lambda t: t.detach().clone().requires_grad_())\n"
    done = run_cli("check", str(make_notebook({"mse_grad": mse, "module_backward": module})),
                   "--json", "--seed", "5")
    report = json.loads(done.stdout)
    assert target_points(report)["mse_grad"] == 0.0
    # The Module cell's read of torch.autograd is refused as it runs (the answer language's
    # guards): the cell stops there, the registry never holds autograd, and mse_grad has nothing
    # to call. The Module cell's target pays for the autograd it shows.
    assert any("torch.autograd is autograd" in n for n in report["notes"]), report["notes"]
    assert target_mistakes(report, "module_backward") == {"module_backward.uses_autograd"}
    others = ["relu_grad", "lin_grad"]
    assert honest_checks(report, others) == honest_checks(honest_alone, others)
