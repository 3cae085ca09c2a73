"""The sandbox on its own: whatever code the graded process is given, nothing of it outlives it.

Grading never runs code the rules refuse (other programs, `os.fork`, ...), so these tests give
the sandbox such code directly (`run_untrusted` with raw cells), started cold and from a warm
parent: the sandbox must hold whatever a bug in the rules would let through.
"""

from __future__ import annotations

import pytest

from autograder.sandbox import warm
from autograder.sandbox.launch import run_untrusted
from autograder.sandbox.layers import choose_layers
from tests.conftest import needs_layer
from tests.sandbox.test_attacks import LOOP, assert_none_left, linux_only, new_token

# These hand the sandbox code no answer could run: the answer language's guards are off.
pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("unguarded")]

LAYERS = choose_layers()
WAYS = [False] + ([True] if warm.supported(LAYERS) else [])
needs_process_control = needs_layer(
    not (LAYERS.namespaces or LAYERS.own_uid),
    "neither a pid namespace nor an own uid here: setsid() children can escape")

#: Ways to start a process that tries to outlive the check; each runs LOOP with TOKEN in its
#: command line (the graded process is not dumpable: it cannot rename itself in /proc).
SPAWNS = {
    "popen-new-session": (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', LOOP, TOKEN], start_new_session=True)\n"),
    "fork-exec": (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.execv(sys.executable, [sys.executable, '-c', LOOP, TOKEN])\n"),
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


def run_cells(sources: list[str], warm_start: bool, **deadlines):
    cells = [{"index": i, "source": s, "name": f"cell {i}", "first_line": s.split("\n")[0]}
             for i, s in enumerate(sources)]
    work = ([{"name": "a target", "calls": []}], {})  # something to do after the cells
    return run_untrusted(cells, work, warm=warm_start, **deadlines)


@linux_only
@needs_process_control
@pytest.mark.parametrize("warm_start", WAYS, ids=lambda w: "warm" if w else "cold")
@pytest.mark.parametrize("how", sorted(SPAWNS))
def test_children_do_not_outlive_the_process(how, warm_start):
    token = new_token()
    cell = (f"TOKEN = {token!r}\nLOOP = {LOOP!r}\n" + SPAWNS[how] +
            "import time; time.sleep(0.5)\nraise RuntimeError('spawned ' + TOKEN)\n")
    run = run_cells([cell], warm_start, cells_timeout=30)
    assert f"spawned {token}" in run.cell_errors[0]["message"]  # the attack ran
    assert_none_left(token)


@linux_only
@needs_process_control
@pytest.mark.parametrize("warm_start", WAYS, ids=lambda w: "warm" if w else "cold")
def test_a_process_that_ignores_signals_is_killed_at_its_deadline(warm_start):
    token = new_token()
    # The graded process becomes the loop (same pid, TOKEN in its command line): it hangs with
    # its channel closed, or (the second cell) hangs as it is.
    become = f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {LOOP!r}, {token!r}])\n"
    run = run_cells([become, LOOP.replace("120", "1e9"), "print('after')"], warm_start,
                    cells_timeout=3)
    # Its channel closed: stopped at once where nothing else holds the channel (a warm start),
    # else at its deadline.
    assert run.cell_errors[0]["type"] in ("crashed", "timeout")
    assert run.cell_errors[1]["type"] == "timeout"
    assert "after" in run.stdout  # the next attempts skipped the hanging cells
    assert run.targets["a target"].status == "ok"
    assert_none_left(token)
