"""Warm workers: a student's process forked from a warm parent is graded exactly as a cold one.

The warm child makes its own namespaces, uid and limits (sandbox/forkserver.py) where a cold start
uses `unshare` and `jail.py`: so the attacks that test those layers run both ways here, and the
reports must be the same, check by check, with nothing left running.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder import engine, settings
from autograder.answer import notebook
from autograder.course import samples
from autograder.lesson import resolve
from autograder.sandbox import warm
from autograder.sandbox.layers import choose_layers
from tests.conftest import BACKWARD, CORRECT, needs_layer
from tests.sandbox.test_attacks import RIGHT_MSE, SOLUTIONS

LAYERS = choose_layers()
pytestmark = [pytest.mark.sandbox,
              needs_layer(not warm.supported(LAYERS), "no warm workers on this platform")]

ENDLESS = ("def mse_grad(inp, targ):\n"
           "    import signal\n"
           "    for s in (signal.SIGTERM, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n"
           "    while True:\n"
           "        pass\n")
READS_SOLUTIONS = ("def mse_grad(inp, targ):\n"
                   f"    text = open({str(SOLUTIONS)!r}).read()\n"
                   "    raise RuntimeError(f'read {len(text)} bytes')\n")
NETWORK = ("import socket\n"
           "try:\n"
           "    socket.create_connection(('127.0.0.1', 22), timeout=2)\n"
           "    print('network: reached')\n"
           "except OSError as exc:\n"
           "    raise RuntimeError('network: ' + type(exc).__name__)\n")

LOOKS_AROUND = ("def mse_grad(inp, targ):\n    import os\n"
                "    seen = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
                "    alone = seen == sorted({1, os.getpid()})\n"
                "    raise RuntimeError(f'sees {len(seen)}: process 1 and itself: {alone}')\n")

ATTACKS = {
    "looks for other processes": ({"mse_grad": LOOKS_AROUND}, []),
    "os._exit in mse_grad": ({"mse_grad": "def mse_grad(inp, targ):\n    import os; os._exit(3)\n"}, []),
    "endless loop in mse_grad": ({"mse_grad": ENDLESS}, []),
    "memory hog in mse_grad": ({"mse_grad": "def mse_grad(inp, targ):\n"
                                            "    hog = bytearray(3 << 30)\n"}, []),
    "reads the solutions": ({"mse_grad": READS_SOLUTIONS}, []),
    "network": ({"mse_grad": RIGHT_MSE + NETWORK}, []),
    "a flood of output": ({"mse_grad": RIGHT_MSE + "import sys\nfor _ in range(3000): "
                           "print('x' * 2000)\nsys.stderr.write('y' * 3_000_000)\n"}, []),
    "hidden code, left out": ({"mse_grad": RIGHT_MSE + "exec('import os')\n"}, []),
    "a wrong answer, for reference": ({"lin_grad": "def lin_grad(inp, out, w, b):\n"
                                                   "    inp.g = out.g @ w.t()\n    w.g = inp.t() @ out.g\n"
                                                   "    b.g = out.g.mean(0)\n"}, []),
}


@pytest.fixture(scope="module")
def released_nb(released) -> dict:
    return released


@pytest.fixture(autouse=True)
def short_deadlines(monkeypatch):
    # The lesson's own cells call mse_grad too: each hang lasts until the cells' deadline.
    monkeypatch.setattr(settings, "TARGET_TIMEOUT", 3.0)
    monkeypatch.setattr(settings, "CELLS_TIMEOUT", 20.0)


def grade_both_ways(nb: dict) -> tuple[list, list]:
    nb = notebook.parse_notebook(json.dumps(nb))
    points = resolve.points(BACKWARD, nb=nb)
    reports = [engine.grade_notebook(nb, BACKWARD, points=points, seed=7, warm=w,
                                     source=engine.source_notebook(BACKWARD)) for w in (False, True)]
    return tuple(([(c.id, c.passed, c.points, c.mistakes, c.message) for c in r.checks],
                  [n for n in r.notes if not n.startswith("sandbox:")]) for r in reports)


#: What each attack must show in the report, both ways: it ran, and what it found.
#: (The student's code runs in process 2: process 1 is its parent, which holds the channel.)
SHOWS = {"looks for other processes": "sees 2: process 1 and itself: True", "reads the solutions": "FileNotFoundError",
         "network": "network: ", "os._exit in mse_grad": "exited with code 3",
         "endless loop in mse_grad": "time limit", "memory hog in mse_grad": "memory",
         "hidden code, left out": "exec()", "a flood of output": "",
         "a wrong answer, for reference": "1/N"}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_gets_the_same_report_warm_as_cold(released_nb, attack, request):
    if attack != "hidden code, left out":  # what the sandbox does when such code runs
        request.getfixturevalue("rules_let_through")
    answers, extra = ATTACKS[attack]
    cold, hot = grade_both_ways(samples.fill(released_nb, {**CORRECT, **answers}, extra))
    assert hot == cold
    assert SHOWS[attack] in json.dumps(cold)
    if attack not in ("a wrong answer, for reference", "network", "a flood of output"):
        assert any(not passed for _, passed, *_ in cold[0]), "the attack should cost points"


@needs_layer(not LAYERS.namespaces, "no pid namespace on this platform")
def test_a_warm_child_and_its_parent_are_the_only_processes_of_their_pid_namespace(
        released_nb, rules_let_through):
    nb = samples.fill(released_nb, {**CORRECT, "mse_grad": LOOKS_AROUND})
    nb = notebook.parse_notebook(json.dumps(nb))
    report = engine.grade_notebook(nb, BACKWARD, points=resolve.points(BACKWARD, nb=nb), seed=1, warm=True,
                                   source=engine.source_notebook(BACKWARD))
    # Process 1 holds the channel and the token; the student's code runs in process 2, its child.
    assert "sees 2: process 1 and itself: True" in json.dumps([c.message for c in report.checks])


def test_the_warm_parent_is_reused_and_survives_a_crashing_child(released_nb):
    crash = samples.fill(released_nb, {**CORRECT, "mse_grad": "def mse_grad(inp, targ):\n"
                                                                      "    import os; os._exit(9)\n"})
    right = samples.fill(released_nb, CORRECT)
    parents = set()
    for nb in (crash, right, crash, right):
        nb = notebook.parse_notebook(json.dumps(nb))
        engine.grade_notebook(nb, BACKWARD, points=resolve.points(BACKWARD, nb=nb), seed=1, warm=True)
        parents.add(warm._idle[-1].pid)  # the parent that served it is back, last
    assert len(parents) == 1  # one parent served all four, crashes included


def test_warm_parents_are_forks_of_one_process_that_imported_torch(released_nb):
    nb = notebook.parse_notebook(json.dumps(samples.fill(released_nb, CORRECT)))
    with ThreadPoolExecutor(2) as pool:  # two at once: two warm parents
        reports = list(pool.map(lambda seed: engine.grade_notebook(
            nb, BACKWARD, points=resolve.points(BACKWARD, nb=nb), seed=seed, warm=True), [1, 2]))
        assert len(warm._idle) == 2 and all(z.alive() for z in warm._idle)
        mother = warm._mother.proc.pid
        if LAYERS.user_namespace:  # the mother is the child of the process that made its namespaces
            (mother,) = children(mother)
        assert len(children(mother)) == 2  # the two warm parents, forks of the mother
        assert "torch" in Path(f"/proc/{mother}/maps").read_text()  # which imported torch
    assert all(r.score == r.max_score for r in reports)


def children(pid: int) -> list[int]:
    """The live children of `pid`, by their pids here."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in found if Path(f"/proc/{c}/status").read_text().find("State:\tZ") < 0]
