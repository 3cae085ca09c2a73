"""An ordinary user to run the grader as, for the tests and the benchmark (root makes it).

The user gets a venv it can read: the system's python3, with this venv's packages through a .pth
file (root's home, where this Python lives, is not readable by others). Where the checkout or
the packages are not readable by the user, they are bound, in a mount namespace of the
command's own, at a place that is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def why_not(user: str) -> str | None:
    """Why an ordinary user cannot be made here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to make the ordinary user"
    if not (shutil.which("useradd") and shutil.which("runuser") and os.path.exists(SYSTEM_PYTHON)):
        return "needs useradd, runuser and the system's python3"
    done = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True)
    if done.stdout.strip() != str(sys.version_info[:2]):
        return f"{SYSTEM_PYTHON} is not Python {sys.version_info[:2]}: it cannot share the venv"
    return None


def readable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)]).returncode == 0


@dataclass
class UserEnv:
    user: str
    home: Path
    repo: Path  # the checkout, as the user sees it
    binds: dict[Path, Path] = field(default_factory=dict)
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
        mounts = "".join(f"mount --bind '{src}' '{dst}' && " for src, dst in self.binds.items())
        quoted = " ".join(f"'{c}'" for c in run)
        script = f"{mounts}cd '{cwd or self.repo}' && exec {quoted}"
        return (["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
                if self.binds else ["sh", "-c", script])

    def workdir(self, name: str) -> Path:
        """A folder the user owns, inside its home."""
        path = self.home / name
        path.mkdir(exist_ok=True)
        shutil.chown(path, self.user, self.user)
        return path


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
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(home / "venv")],
                       check=True)
        venv_site = next((home / "venv" / "lib").glob("python3*/site-packages"))
        (venv_site / "borrowed.pth").write_text(f"{packages}\n{env.repo}\n")
        # nbgrader runs `alembic` by name: one that this venv's Python runs.
        shim = home / "venv" / "bin" / "alembic"
        shim.write_text(f"#!{env.python}\nfrom alembic.config import main\nmain()\n")
        shim.chmod(0o755)
        for path in (home, *home.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o055)
        yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if subordinate:
            revoke_subordinate_ids(user)
