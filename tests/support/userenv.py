"""An ordinary user to run the grader as, for the tests, the benchmark and `make hub` (root makes it).

The user gets a venv it can read, made by the very Python that installed this venv's packages
(this venv's base interpreter), with those packages through a .pth file and their commands
(`autograder`, `nbgrader`, `jupyter`...) in its `bin`: one interpreter with its own packages. A
package's files were chosen by pip for the full version of the Python that installed them
(soupsieve 4.1 needs 3.11.5 or later: under Debian's 3.11.2 it cannot parse a CSS selector, and
nbconvert's HTML pages fail), so a user's Python of another version, even another 3.11.x, is
refused, in one line. Where the checkout or the packages are not readable by the user, they are
bound, in a mount namespace of the command's own, at a place that is; where the interpreter is
not (a pyenv Python in root's home), the folder that hides it is covered, in that namespace, by
an empty one with the interpreter bound at its own path (its library path and its venvs name
that path).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The Python that installed this venv's packages (this venv's base interpreter), and its prefix.
INTERPRETER = Path(getattr(sys, "_base_executable", sys.executable))
INTERPRETER_PREFIX = Path(sys.base_prefix)


def why_not(user: str) -> str | None:
    """Why an ordinary user cannot be made here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to make the ordinary user"
    if not (shutil.which("useradd") and shutil.which("runuser") and shutil.which("unshare")):
        return "needs useradd, runuser and unshare"
    if not INTERPRETER.is_relative_to(INTERPRETER_PREFIX):
        return f"{INTERPRETER} is not inside its prefix {INTERPRETER_PREFIX}: it cannot be lent"
    return None


def readable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)]).returncode == 0


def hiding(user: str, path: Path) -> Path | None:
    """The first folder on the way to `path` that `user` cannot enter (None: it can reach it)."""
    for folder in [*reversed(path.parents), path]:
        if subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(folder)]).returncode:
            return folder
    return None


def mount_commands(envs: list[UserEnv]) -> list[list[str]]:
    """What makes, in a mount namespace, what `envs` need seen (as root, in this order): each
    bind; each folder that hides an interpreter covered by an empty one; the interpreter bound
    back at its own path."""
    done: list[list[str]] = []
    for env in envs:
        done += [["mount", "--bind", str(src), str(dst)] for src, dst in env.binds.items()]
    covers = {c: (path, stash) for env in envs for c, (path, stash) in env.covers.items()}
    for cover in covers:
        done.append(["mount", "-t", "tmpfs", "-o", "mode=0755", "autograder-cover", str(cover)])
    for path, stash in dict(covers.values()).items():
        done += [["mkdir", "-p", str(path)], ["mount", "--bind", str(stash), str(path)]]
    return done


@dataclass
class UserEnv:
    user: str
    home: Path
    repo: Path  # the checkout, as the user sees it
    binds: dict[Path, Path] = field(default_factory=dict)
    #: a folder that hides the interpreter -> (the interpreter's prefix, where it is bound first)
    covers: dict[Path, tuple[Path, Path]] = field(default_factory=dict)
    subordinate: tuple[int, int] | None = None  # the range of subordinate ids it holds

    @property
    def python(self) -> str:
        return str(self.home / "venv" / "bin" / "python")

    def command(self, command: list[str], cwd: Path | None = None,
                env: dict[str, str] | None = None) -> list[str]:
        """`command` as the user in `cwd` (default: the checkout), with the binds applied."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        run = ["runuser", "-u", self.user, "--", "env", f"HOME={self.home}",
               f"PATH={self.home / 'venv' / 'bin'}:/usr/bin:/bin", "COLUMNS=160", *extra,
               *command]
        mounts = "".join(f"{shlex.join(m)} && " for m in mount_commands([self]))
        script = f"{mounts}cd {shlex.quote(str(cwd or self.repo))} && exec {shlex.join(run)}"
        return (["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
                if mounts else ["sh", "-c", script])

    def workdir(self, name: str) -> Path:
        """A folder the user owns, inside its home."""
        path = self.home / name
        path.mkdir(exist_ok=True)
        shutil.chown(path, self.user, self.user)
        return path


def write_commands(bin_folder: Path, python: str) -> None:
    """The packages' console scripts (`autograder`, `nbgrader`, `jupyter`, `alembic`, which
    nbgrader runs by name...) in the user's venv, each run by its Python, as pip writes them."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts"):
        name, head = ep.name, ep.attr.split(".")[0]
        path = bin_folder / name
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or path.exists():
            continue
        path.write_text(f"#!{python}\nimport sys\nfrom {ep.module} import {head}\n"
                        f"sys.exit({ep.attr}())\n")
        path.chmod(0o755)


def same_python(env: UserEnv) -> None:
    """Raise where the user's Python is not, to the full version, the one that installed the
    packages (`autograder.course.hub.why_other_python`)."""
    from autograder.course.hub import why_other_python

    done = subprocess.run(env.command([env.python, "-c", "import sys; print(sys.version)"]),
                          capture_output=True, text=True)
    why = why_other_python(env.user, env.python, done.stdout.strip() or done.stderr.strip())
    if why:
        raise RuntimeError(why)


SUBORDINATE = ("/etc/subuid", "/etc/subgid")
SUBORDINATE_COUNT = 65536


def why_no_subordinate_ids() -> str | None:
    """Why a user cannot be granted subordinate ids here, or None."""
    if not (shutil.which("usermod") and shutil.which("newuidmap") and shutil.which("newgidmap")):
        return ("needs usermod, newuidmap and newgidmap (Debian's uidmap package: "
                "apt-get install uidmap; `make test` installs it as root)")
    return None


def _subordinate_ranges(user: str) -> set[tuple[int, int]]:
    found = set()
    for path in SUBORDINATE:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            name, _, rest = line.partition(":")
            start, _, count = rest.partition(":")
            if name == user and start.isdigit() and count.isdigit():
                found.add((int(start), int(count)))
    return found


def revoke_subordinate_ids(user: str) -> None:
    """Take back every subordinate range `user` holds in /etc/subuid and /etc/subgid."""
    for start, count in _subordinate_ranges(user):
        span = f"{start}-{start + count - 1}"
        subprocess.run(["usermod", "--del-subuids", span, "--del-subgids", span, user],
                       capture_output=True)


def grant_subordinate_ids(user: str) -> tuple[int, int]:
    """Give `user` a range of subordinate uids and gids no one else has, as an admin would
    (`usermod --add-subuids`); returns (start, count)."""
    end = 1 << 20
    for path in SUBORDINATE:
        try:
            for line in Path(path).read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    end = max(end, int(parts[1]) + int(parts[2]))
        except OSError:
            pass
    start = (end + SUBORDINATE_COUNT) // SUBORDINATE_COUNT * SUBORDINATE_COUNT
    span = f"{start}-{start + SUBORDINATE_COUNT - 1}"
    subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, user], check=True)
    return start, SUBORDINATE_COUNT


@contextmanager
def ordinary_user(user: str, subordinate: bool = False):
    """Make `user` (once) and a home with a venv it can read; removed afterwards. With
    `subordinate`, the user holds a range of subordinate ids while it lasts (`env.subordinate`);
    without, it holds none."""
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        user], check=True)
    home = Path(f"/tmp/autograder-user-{uuid.uuid4().hex[:8]}")
    if shutil.which("usermod"):
        revoke_subordinate_ids(user)
    try:
        home.mkdir(mode=0o755)
        site = Path(sysconfig.get_paths()["purelib"])
        env = UserEnv(user, home, REPO)
        if subordinate:
            env.subordinate = grant_subordinate_ids(user)
        packages = site
        if not (readable_by(user, REPO / "autograder" / "__init__.py")
                and readable_by(user, site / "torch" / "__init__.py")):
            env.repo, packages = home / "repo", home / "site-packages"
            env.repo.mkdir()
            packages.mkdir()
            env.binds = {REPO: env.repo, site: packages}
        cover = hiding(user, INTERPRETER_PREFIX)
        if cover is not None:
            stash = home / "python"
            stash.mkdir()
            env.binds[INTERPRETER_PREFIX] = stash
            env.covers[cover] = (INTERPRETER_PREFIX, stash)
        subprocess.run([str(INTERPRETER), "-m", "venv", "--without-pip", str(home / "venv")],
                       check=True)
        venv_site = next((home / "venv" / "lib").glob("python3*/site-packages"))
        (venv_site / "borrowed.pth").write_text(f"{packages}\n{env.repo}\n")
        write_commands(home / "venv" / "bin", env.python)
        for path in (home, *home.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o055)
        same_python(env)
        yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if subordinate:
            revoke_subordinate_ids(user)
