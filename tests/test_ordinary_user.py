"""The attack suite again, as an ordinary user: a grader without root (JupyterHub, a course
server) gets the sandbox of user namespaces, and its attack tests must pass there too, for real.

Run as root (CI here), this test makes an unprivileged user, a venv it can read (the system's
python3, with this venv's packages through a .pth file: root's home, where this Python lives,
is not readable by others), and runs the attack, sandbox, jail and grade-faking suites as that
user (all but their tests marked slow: those grade whole classes through nbgrader, whose
reading of the course is the same for any user). Where the checkout or the packages are not
readable by others, they are bound, in a mount namespace of the test's own, at a place that is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from .conftest import REPO

USER = "autograder-test"
SYSTEM_PYTHON = "/usr/bin/python3"
#: The sandbox's suites (the grade-faking suite is about what the rules read and the wire, the
#: same whoever grades; its bomb goes through the sandbox).
SUITES = ["tests/test_attacks.py", "tests/test_sandbox.py", "tests/test_jail.py",
          "tests/test_warm.py", "tests/test_grades.py::test_a_results_bomb_reaches_the_grader_bounded"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="needs root to make the ordinary user (as one, the suite runs as it is)"),
    pytest.mark.skipif(not (shutil.which("useradd") and shutil.which("runuser")
                            and os.path.exists(SYSTEM_PYTHON)),
                       reason="needs useradd, runuser and the system's python3"),
]


def system_python_matches() -> bool:
    done = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True)
    return done.stdout.strip() == str(sys.version_info[:2])


def readable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)]).returncode == 0


def as_user(command: list[str], home: Path, binds: dict[Path, Path], cwd: Path) -> list[str]:
    """`command` as USER in `cwd`, with `binds` (source -> a place the user can read) in a mount
    namespace of its own where the sources are not readable."""
    run = ["runuser", "-u", USER, "--", "env", f"HOME={home}", f"PATH={home / 'venv' / 'bin'}:"
           "/usr/bin:/bin", "COLUMNS=160", *command]
    mounts = "".join(f"mount --bind '{src}' '{dst}' && " for src, dst in binds.items())
    quoted = " ".join(f"'{c}'" for c in run)
    script = f"{mounts}cd '{cwd}' && exec {quoted}"
    return (["unshare", "--mount", "--propagation", "private", "sh", "-c", script] if binds
            else ["sh", "-c", script])


def test_the_attack_suites_pass_as_an_ordinary_user(tmp_path_factory):
    if not system_python_matches():
        pytest.skip(f"{SYSTEM_PYTHON} is not Python {sys.version_info[:2]}: it cannot share this "
                    "venv's packages")
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        USER], check=True)
    home = Path(f"/tmp/autograder-user-{uuid.uuid4().hex[:8]}")
    try:
        home.mkdir(mode=0o755)
        site = Path(sysconfig.get_paths()["purelib"])
        repo, packages = REPO, site
        binds = {}
        if not (readable_by(USER, REPO / "autograder" / "__init__.py")
                and readable_by(USER, site / "torch" / "__init__.py")):
            repo, packages = home / "repo", home / "site-packages"
            repo.mkdir()
            packages.mkdir()
            binds = {REPO: repo, site: packages}
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(home / "venv")],
                       check=True)
        venv_site = next((home / "venv" / "lib").glob("python3*/site-packages"))
        (venv_site / "borrowed.pth").write_text(f"{packages}\n{repo}\n")
        # nbgrader runs `alembic` by name: one that this venv's Python runs.
        shim = home / "venv" / "bin" / "alembic"
        shim.write_text(f"#!{home / 'venv' / 'bin' / 'python'}\n"
                        "from alembic.config import main\nmain()\n")
        shim.chmod(0o755)
        work = home / "pytest"
        work.mkdir()
        shutil.chown(work, USER, USER)
        for path in (home, *home.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o055)
        python = str(home / "venv" / "bin" / "python")
        layers = subprocess.run(as_user(
            [python, "-c", "from autograder.sandbox.limits import choose_layers; "
                           "print(choose_layers())"], home, binds, repo),
            capture_output=True, text=True)
        assert "namespaces=True, user_namespace=True" in layers.stdout, layers.stderr[-2000:]
        done = subprocess.run(as_user(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
             f"--basetemp={work / 'base'}", "-m", "not cuda and not slow", *SUITES], home, binds, repo),
            capture_output=True, text=True, timeout=1500)
        tail = done.stdout[-3000:] + done.stderr[-2000:]
        assert done.returncode == 0, tail
        assert " passed" in done.stdout and " failed" not in done.stdout, tail
    finally:
        shutil.rmtree(home, ignore_errors=True)
