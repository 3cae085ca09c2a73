"""A course on a shared server, for the tests: real Unix users (an instructor who is not root and
students), nbgrader's exchange between them, each running the stock commands as themselves.

Root (CI here) makes the users (tests/support/userenv.py), an exchange root (`1777`, as an administrator
makes it) in a folder everyone can reach, and for each user a private working folder (`0700`,
its nbgrader cache inside: a student's home on a real server).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from autograder.course import samples
from tests.support.userenv import UserEnv, mount_commands, ordinary_user, why_not

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
        return self.seen(Path(sys.prefix) / "share" / "jupyter")

    def seen(self, path: Path) -> Path:
        """`path` as the user sees it (through the binds)."""
        for src, dst in self.env.binds.items():
            if path.is_relative_to(src):
                return dst / path.relative_to(src)
        return path

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


#: What JupyterLab asks of a browser with no internet: no news, no update checks.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
#: What a student's JupyterLab leaves out (nbgrader's installation guide: "Disabling
#: extensions", here for the user): the instructor's tools.
INSTRUCTOR_ONLY_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment")
INSTRUCTOR_ONLY_SERVER = "nbgrader.server_extensions.formgrader"


@dataclass
class CourseHub:
    """A course on JupyterHub: `url`, who logs in with which `passwords`, the instructor's
    `course` (released into `exchange`)."""
    url: str
    teacher: Person
    students: dict[str, Person]
    exchange: Path
    course: Path
    passwords: dict[str, str]
    hub: object  # autograder.course.hub.Hub


def _hub_user(person: Person, password: str, nbgrader_config: str, instructor: bool) -> None:
    """`person` as a Hub user: the home in the password database (the Hub starts the server
    there), a password for PAM, the venv as pip installs nbgrader into it (its Jupyter data and
    configuration in the prefix: the extensions enabled), ~/.jupyter's nbgrader configuration
    (as nbgrader's guide for JupyterHub has it) and JupyterLab's settings. The home is the
    user's and no one else's: nbgrader's cache there holds each submission's secret."""
    home, name = person.env.home, person.name
    # a shell for JupyterLab's terminal (the user was made with none)
    subprocess.run(["usermod", "--home", str(home), "--shell", "/bin/bash", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    venv = home / "venv"
    for part in ("share", "etc"):
        (venv / part).mkdir(exist_ok=True)
        (venv / part / "jupyter").symlink_to(person.seen(Path(sys.prefix) / part / "jupyter"))
    jupyter = home / ".jupyter"
    jupyter.mkdir()
    # the Assignment List fetches into the server's working folder, not the folder it shows
    (jupyter / "nbgrader_config.py").write_text(
        nbgrader_config + f"c.Exchange.assignment_dir = {str(person.work)!r}\n")
    # their own Python first in a terminal (a login shell: /etc/profile sets PATH, then this)
    (home / ".profile").write_text(f'export PATH="{venv / "bin"}:$PATH"\n')
    if not instructor:
        # What `jupyter server extension disable --user` writes: nbgrader 0.9.6's formgrader
        # module fails that command's check (it names no extension points) and nothing is written.
        (jupyter / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"jpserver_extensions": {INSTRUCTOR_ONLY_SERVER: False}}}))
    for plugin, settings in LAB_SETTINGS.items():
        path = jupyter / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    user = pwd.getpwnam(name)
    for path in (home, home / ".profile", jupyter, *jupyter.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)
    home.chmod(0o700)


@contextmanager
def course_hub(instructor: str, students: list[str], log=lambda line: None):
    """A course on a running JupyterHub (as root): the users of `shared_server` with passwords,
    the backward lesson released into the exchange by the instructor (`autograder release`), the
    Hub started for the three of them. Everything goes when it ends: the Hub and every server it
    started, the homes, the passwords (locked)."""
    import secrets

    from autograder.course import hub

    with ExitStack() as stack:
        teacher, people, exchange = stack.enter_context(shared_server(instructor, students))
        everyone = [teacher, *people.values()]
        passwords = {p.name: secrets.token_urlsafe(9) for p in everyone}
        for person in everyone:
            stack.callback(subprocess.run, ["usermod", "--lock", person.name], capture_output=True)
        course = teacher.work / "course"
        log(f"releasing the course as {teacher.name}")
        teacher.run(teacher.env.python, "-m", "autograder", "release", "--course", str(course),
                    "--assignment", "backward", "--exchange", str(exchange), "--course-id", COURSE_ID)
        common = (f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
                  f"c.Exchange.root = {str(exchange)!r}\n")
        _hub_user(teacher, passwords[teacher.name], common + (
            f"c.CourseDirectory.root = {str(course)!r}\n"
            f"c.CourseDirectory.db_url = {'sqlite:///' + str(course / 'gradebook.db')!r}\n"), True)
        for person in people.values():
            _hub_user(person, passwords[person.name], common, False)
            # `jupyter labextension disable --level=user ...`, as the student
            person.run(person.env.python, "-m", "jupyterlab.labextensions", "disable",
                       "--level=user", *INSTRUCTOR_ONLY_LAB)
        state = Path(tempfile.mkdtemp(prefix="autograder-hub-"))
        stack.callback(shutil.rmtree, state, True)
        config, url = hub.write_config(state, {p.name: p.env.python for p in everyone})
        for person in everyone:  # any server the Hub left behind (it stops them itself)
            stack.callback(_end_processes_of, person.name)
        log(f"starting JupyterHub at {url}")
        running = stack.enter_context(hub.Hub(config, url, mount_commands([p.env for p in everyone])))
        yield CourseHub(url, teacher, people, exchange, course, passwords, running)


def _end_processes_of(user: str) -> None:
    """SIGKILL each process still running as `user` (one of the test users: the Hub started
    them), by its id."""
    import signal

    uid = pwd.getpwnam(user).pw_uid
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if proc.stat().st_uid == uid:
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass
