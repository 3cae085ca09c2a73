"""A course on a shared server, for the tests: real Unix users (an instructor who is not root and
students), nbgrader's exchange between them, each running the stock commands as themselves.

Root (CI here) makes the users (tests/userenv.py), an exchange root (`1777`, as an administrator
makes it) in a folder everyone can reach, and for each user a private working folder (`0700`,
its nbgrader cache inside: a student's home on a real server).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from autograder.course import samples

from .userenv import UserEnv, ordinary_user, why_not

COURSE_ID = "backprop"


@dataclass
class Person:
    env: UserEnv
    work: Path  # private: 0700, owned by the user (a home on a real server)
    exchange: Path

    @property
    def name(self) -> str:
        return self.env.user

    def run(self, *command: str, cwd: Path | None = None, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """`command` as this user in `cwd` (default: the private folder)."""
        env = {"JUPYTER_DATA_DIR": str(self.work / ".jupyter-data"),
               "JUPYTER_RUNTIME_DIR": str(self.work / ".jupyter-runtime"),
               "JUPYTER_PATH": str(self.shared_data)}
        done = subprocess.run(self.env.command(list(command), cwd=cwd or self.work, env=env),
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{' '.join(command)}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done

    @property
    def shared_data(self) -> Path:
        """The venv's share/jupyter (nbconvert's templates, nbgrader's), as the user sees it: the
        user's own venv borrows only the packages (a real install has them in its prefix)."""
        data = Path(sys.prefix) / "share" / "jupyter"
        for src, dst in self.env.binds.items():
            if data.is_relative_to(src):
                return dst / data.relative_to(src)
        return data

    def nbgrader(self, *args: str, cwd: Path | None = None, check: bool = True):
        return self.run(self.env.python, "-m", "nbgrader", *args, cwd=cwd, check=check)

    def shell(self, script: str) -> subprocess.CompletedProcess:
        """A shell line as this user: what a student can try by hand (from a file of theirs:
        any quotes in it reach the shell as written)."""
        path = self.work / f".try-{uuid.uuid4().hex[:8]}.sh"
        path.write_text(script + "\n")
        shutil.chown(path, self.name, self.name)
        try:
            return self.run("sh", str(path), check=False)
        finally:
            path.unlink()

    def write_notebook(self, path: Path, nb: dict) -> None:
        """What the user's editor saves: a file the user owns."""
        samples.write(nb, path)
        shutil.chown(path, self.name, self.name)


def why_no_users() -> str | None:
    return why_not("nobody")


@contextmanager
def shared_server(instructor: str, students: list[str]):
    """(instructor, {name: student}, exchange root): each a Person with a private folder and an
    nbgrader_config.py there naming the course and the exchange."""
    with ExitStack() as stack:
        top = Path(tempfile.mkdtemp(prefix="autograder-exchange-"))
        stack.callback(shutil.rmtree, top, True)
        top.chmod(0o755)
        exchange = top / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)  # as `install -d -m 1777` makes it
        people = {}
        for name in [instructor, *students]:
            env = stack.enter_context(ordinary_user(name))
            work = env.workdir("work")
            work.chmod(0o700)
            (work / "nbgrader_config.py").write_text(
                f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
                f"c.Exchange.root = {str(exchange)!r}\n")
            shutil.chown(work / "nbgrader_config.py", name, name)
            people[name] = Person(env, work, exchange)
        yield people[instructor], {s: people[s] for s in students}, exchange


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def owner(path: Path) -> str:
    import pwd

    return pwd.getpwuid(os.lstat(path).st_uid).pw_name


def submit_as(exchange: Path, student: str, notebook: dict, work: Path,
              assignment: str = "backward", notebook_name: str = "backward.ipynb") -> str:
    """Hand `notebook` in for `student` with nbgrader's own ExchangeSubmit (what `nbgrader
    submit` runs), in this process: `work` holds the student's assignment folder and nbgrader
    cache. Returns the submission's name in `inbound/`."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeSubmit
    from traitlets.config import Config

    folder = work / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    samples.write(notebook, folder / notebook_name)
    cfg = Config()
    cfg.CourseDirectory.course_id = COURSE_ID
    cfg.CourseDirectory.student_id = student
    cfg.CourseDirectory.assignment_id = assignment
    cfg.Exchange.root = str(exchange)
    cfg.Exchange.cache = str(work / student / ".cache")
    cfg.Exchange.assignment_dir = str(work / student)
    coursedir = CourseDirectory(config=cfg)
    submit = ExchangeSubmit(coursedir=coursedir, authenticator=Authenticator(config=cfg),
                            config=cfg)
    submit.start()
    return submit.assignment_filename
