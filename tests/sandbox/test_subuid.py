"""As an ordinary user, bounded and apart: a grader that is not root, with subordinate ids.

An ordinary user's grader makes the sandbox from a user namespace. Where the system grants the
user subordinate ids (/etc/subuid, /etc/subgid, and the setuid `newuidmap` and `newgidmap` of
Debian's `uidmap` package, as rootless containers use), the student's process runs as one of
them, under a process limit: seen from the host, a uid that is neither the instructor's nor
root's. Where it does not, the layers say so, and `--require-isolation` refuses in one line that
names what is missing and how an admin grants it.

The first tests run anywhere; the others run as root (CI here), which makes real unprivileged
users with `useradd`, grants one of them a range of subordinate ids with `usermod
--add-subuids`, and grades as each. Code the rules refuse (`os.fork`) goes to the sandbox
directly (`run_untrusted` with raw cells), cold and warm, as `tests/sandbox/test_sandbox.py` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from autograder.sandbox.layers import (
    IsolationMissing,
    Layers,
    Limits,
    nproc_per_user_namespace,
    require_isolation,
    subordinate_ids,
)
from tests.sandbox.test_attacks import new_token
from tests.support.userenv import ordinary_user, why_no_subordinate_ids, why_not

GRANTED, REFUSED = "autograder-subid", "autograder-nosubid"


def as_users(test):
    """Slow, and run only where root can make the users."""
    for mark in (pytest.mark.slow, pytest.mark.sandbox,
                 pytest.mark.skipif(why_not(GRANTED) is not None, reason=str(why_not(GRANTED)))):
        test = mark(test)
    return test


with_subordinate_ids = pytest.mark.skipif(why_no_subordinate_ids() is not None,
                                          reason=str(why_no_subordinate_ids()))


# --- what the grader reads of /etc/subuid, and says without it -----------------------------------

def test_subordinate_ids_are_read_by_name_or_uid_and_their_absence_is_named(tmp_path):
    import pwd

    name = pwd.getpwuid(os.getuid()).pw_name
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text(f"someone:100000:65536\n{name}:231072:65536\n")
    subgid.write_text(f"{os.getuid()}:300000:1000\n")
    found, missing = subordinate_ids(str(subuid), str(subgid))
    if found is None:  # no newuidmap here: that is what is missing
        assert missing.startswith("no newuidmap and newgidmap here") and "uidmap" in missing
    else:
        assert (found["uid"], found["gid"], missing) == ([231072, 65536], [300000, 1000], "")
    subgid.write_text("someone:100000:65536\n")
    found, missing = subordinate_ids(str(subuid), str(subgid))
    assert found is None
    assert f"no subordinate ids for {name} in {subgid} (an admin grants them: usermod " \
           f"--add-subuids 100000-165535 --add-subgids 100000-165535 {name}" in missing


def test_the_kernels_that_count_processes_per_user_namespace_are_known():
    assert not nproc_per_user_namespace("5.13.19-generic")
    assert not nproc_per_user_namespace("4.18.0-553.el8_10.x86_64")
    assert nproc_per_user_namespace("5.14.0-427.el9.x86_64")
    assert nproc_per_user_namespace("6.18.44-fc-v857")


def test_without_a_uid_of_its_own_the_layers_say_so_and_require_isolation_refuses():
    missing = "no subordinate ids for ada in /etc/subuid (an admin grants them: usermod ...)"
    layers = Layers(namespaces=True, user_namespace=True, missing=missing)
    names = layers.names(Limits())
    counted = nproc_per_user_namespace()  # the nobody's processes counted apart: a limit still
    said = "the grader's own uid seen from the host" + ("" if counted else ", and no process limit")
    assert any(f"{said}: {missing}" in n for n in names), names
    assert any("processes" in n for n in names) == counted, names
    with pytest.raises(IsolationMissing) as refused:
        require_isolation(layers)
    assert "\n" not in str(refused.value) and missing in str(refused.value)
    granted = Layers(namespaces=True, user_namespace=True, own_uid=True, subordinate={
        "uid": [231072, 65536], "gid": [231072, 65536]})
    require_isolation(granted)  # no refusal
    assert "own uid (one of the grader's subordinate uids)" in granted.names(Limits())
    assert any(n.endswith(f", {Limits().processes} processes") for n in granted.names(Limits()))


# --- as real users -------------------------------------------------------------------------------

def named(token: str) -> list[int]:
    """The processes one of whose threads is named `token` (its /proc/PID/task/TID/comm): the
    command lines that pass the token on are not among them."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any((task / "comm").read_text().strip() == token
                   for task in Path(f"/proc/{pid}/task").iterdir()):
                found.append(int(pid))
        except OSError:
            continue
    return found


#: Run as the user: the sandbox, cold then warm, on raw cells; one JSON line of what came back.
INNER = '''
import json, sys
from autograder import settings
from autograder.sandbox import attempt
from autograder.sandbox.launch import Budget, run_untrusted
from autograder.sandbox.layers import Limits, choose_layers

attempt.GUARDED = False  # raw cells, which no answer could run: the sandbox alone holds them

BOMB = """import os, time
kids = []
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
finally:
    print("FORKED", len(kids))
"""
#: Its own name set to TOKEN (its /proc/PID/comm), then a few seconds for the host to look.
NAMED = """import ctypes, time
ctypes.CDLL(None).prctl(15, b"TOKEN", 0, 0, 0)
time.sleep(4)
print("NAMED")
"""
out = {"layers": choose_layers().names(Limits()), "limit": settings.PROCESS_LIMIT, "runs": {}}
for warm in (False, True):
    sources = [BOMB, "print('after')"] if sys.argv[1] == "bomb" else [
        NAMED.replace("TOKEN", sys.argv[2 + warm])]
    cells = [{"index": i, "source": s, "name": f"cell {i}", "first_line": ""}
             for i, s in enumerate(sources)]
    run = run_untrusted(cells, ([{"name": "a target", "calls": []}], {}), warm=warm,
                        cells_timeout=300, budget=Budget(wall=900))  # the limit, not the clock
    out["runs"]["warm" if warm else "cold"] = {
        "stdout": run.stdout, "stderr": run.stderr[-3000:], "errors": run.cell_errors,
        "target": run.targets["a target"].status, "sandbox": run.sandbox}
print(json.dumps(out))
'''


def _inner(env) -> str:
    path = env.workdir("inner") / "inner.py"
    path.write_text(INNER)
    path.chmod(0o644)
    return str(path)


def _report(done) -> dict:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@as_users
@with_subordinate_ids
def test_a_fork_bomb_stops_at_the_process_limit_of_a_subordinate_uid():
    with ordinary_user(GRANTED, subordinate=True) as env:
        done = subprocess.run(env.command([env.python, _inner(env), "bomb"]), capture_output=True,
                              text=True, timeout=600)
        report = _report(done)
        assert "own uid (one of the grader's subordinate uids)" in report["layers"], report
        for way, run in report["runs"].items():
            said = f"{way}: {run}"
            forked = int(run["stdout"].split("FORKED ")[1].split()[0])
            assert 0 < forked < report["limit"], said  # stopped at the limit, not at 300
            assert run["errors"]["0"]["type"] == "BlockingIOError", said
            assert "Resource temporarily unavailable" in run["errors"]["0"]["message"], said
            assert "after" in run["stdout"] and run["target"] == "ok", said  # the rest ran on
            assert "1" not in run["errors"], said
            assert any(f"{report['limit']} processes" in n for n in run["sandbox"]), said


@as_users
@with_subordinate_ids
def test_the_students_process_runs_as_a_subordinate_uid_seen_from_the_host():
    with ordinary_user(GRANTED, subordinate=True) as env:
        start, count = env.subordinate
        user_uid = int(subprocess.run(["id", "-u", GRANTED], capture_output=True, text=True,
                                      check=True).stdout)
        tokens = [new_token(), new_token()]  # cold, warm
        proc = subprocess.Popen(env.command([env.python, _inner(env), "name", *tokens]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen: dict[str, list[str]] = {}
        deadline = time.monotonic() + 300
        while len(seen) < 2 and proc.poll() is None and time.monotonic() < deadline:
            for token in tokens:
                for pid in named(token) if token not in seen else ():
                    try:
                        status = Path(f"/proc/{pid}/status").read_text().splitlines()
                    except OSError:
                        continue
                    seen[token] = [line for line in status if line.startswith(("Uid:", "Gid:"))]
            time.sleep(0.05)
        out, err = proc.communicate(timeout=300)
        report = _report(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        for run in report["runs"].values():
            assert "NAMED" in run["stdout"], run
        assert set(seen) == set(tokens), (seen, report)
        for token, lines in seen.items():
            ids = [int(x) for line in lines for x in line.split()[1:]]
            assert all(start <= i < start + count for i in ids), (lines, start, count)
            assert user_uid not in ids and 0 not in ids, lines
            assert not named(token)  # and it is gone


@as_users
def test_without_subordinate_ids_the_layers_say_so_and_require_isolation_refuses():
    with ordinary_user(REFUSED) as env:
        source = str(env.repo / "assignments" / "backward" / "backward.ipynb")
        check = [env.python, "-m", "autograder", "check", source, "--json"]
        graded = subprocess.run(env.command(check), capture_output=True, text=True, timeout=300)
        notes = json.loads(graded.stdout)["notes"]
        missing = (f"no subordinate ids for {REFUSED} in /etc/subuid and /etc/subgid (an admin "
                   f"grants them: usermod --add-subuids 100000-165535 --add-subgids "
                   f"100000-165535 {REFUSED}")
        assert any("the grader's own uid seen from the host" in n and missing in n
                   for n in notes), notes
        refused = subprocess.run(env.command([*check, "--require-isolation"]),
                                 capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2, refused.stderr
        assert missing in json.loads(refused.stdout)["error"]  # the same line, for a script
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "--require-isolation" in refused.stderr and missing in refused.stderr


@as_users
@pytest.mark.skipif(not nproc_per_user_namespace(),
                    reason="needs Linux 5.14 or later (RLIMIT_NPROC counted per user namespace)")
def test_without_subordinate_ids_a_fork_bomb_stops_where_the_kernel_counts_per_namespace():
    """The nobody of a nested user namespace is the grader's own uid outside, but Linux 5.14 on
    counts its processes in that namespace apart: the same limit holds, whatever else runs as
    the grader's user."""
    with ordinary_user(REFUSED) as env:
        # More processes of the user's own than the limit, outside: counted apart.
        others = subprocess.Popen(["runuser", "-u", REFUSED, "--", "sh", "-c",
                                   "for i in $(seq 200); do sleep 600 & done; wait"],
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while users_processes(REFUSED) < 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert users_processes(REFUSED) >= 200
            done = subprocess.run(env.command([env.python, _inner(env), "bomb"]),
                                  capture_output=True, text=True, timeout=600)
        finally:
            os.killpg(others.pid, signal.SIGKILL)
            others.wait()
        report = _report(done)
        for way, run in report["runs"].items():
            said = f"{way}: {run}"
            assert 0 < int(run["stdout"].split("FORKED ")[1].split()[0]) < report["limit"], said
            assert run["errors"]["0"]["type"] == "BlockingIOError", said
            assert "after" in run["stdout"] and run["target"] == "ok", said


def users_processes(user: str) -> int:
    return len(subprocess.run(["pgrep", "-u", user], capture_output=True, text=True)
               .stdout.split())


FAILING_TOOLS = '''
import sys
from pathlib import Path
from autograder.sandbox import layers as chosen
tools = Path(sys.argv[1])
for name in ("newuidmap", "newgidmap"):  # found, run, and refusing: as where they are not setuid
    (tools / name).write_text("#!/bin/sh\\necho $0: could not map >&2\\nexit 1\\n")
    (tools / name).chmod(0o755)
chosen.ID_MAP_PATH = str(tools)
layers = chosen.choose_layers()
print(layers.own_uid, "|".join(layers.names(chosen.Limits())))
'''


@as_users
@with_subordinate_ids
def test_subordinate_ids_that_fail_in_the_real_jail_fall_back_and_the_layers_say_why():
    with ordinary_user(GRANTED, subordinate=True) as env:
        script = env.workdir("inner") / "failing.py"
        script.write_text(FAILING_TOOLS)
        script.chmod(0o644)
        done = subprocess.run(env.command([env.python, str(script), str(env.workdir("tools"))]),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        own_uid, names = done.stdout.strip().splitlines()[-1].split(" ", 1)
        assert own_uid == "False", names  # the nested user namespace, as without them
        assert "the grader's own uid seen from the host: the grader's subordinate uids did not " \
               "work here (the sandbox could not start: [Errno 1] newuidmap or newgidmap could " \
               "not map the subordinate ids)" in names, names
