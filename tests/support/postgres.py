"""A real PostgreSQL server for the tests: Debian's `postgresql` (initdb, pg_ctl), started in a
fresh folder of its own, reached through a Unix socket there (no port to collide with another
test's), and stopped at the end.

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user
(Debian's package makes it); as anyone else, as that user. Every connection is trusted (the
socket's folder is the only way in), as the database role `postgres`.

`python -m tests.support.postgres` starts one and prints its URL until Ctrl-C (for trying a course by hand).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.support import REQUIRE_SANDBOX

#: Debian's layout: /usr/lib/postgresql/<major>/bin (the newest there); PG_BIN names another.
PG_BIN = Path(os.environ.get("PG_BIN") or max(glob.glob("/usr/lib/postgresql/*/bin"),
                                              key=lambda p: int(Path(p).parent.name),
                                              default="/usr/lib/postgresql/15/bin"))
ROLE = "postgres"


def why_not() -> str | None:
    """Why no server can be started here (None: it can)."""
    if not (PG_BIN / "initdb").is_file():
        return (f"no PostgreSQL server programs in {PG_BIN} (`make postgres` installs Debian's "
                "postgresql, as root)")
    try:
        import psycopg  # noqa: F401 - SQLAlchemy 2.1's driver for postgresql:// URLs
    except ImportError:
        return "no psycopg (pip install 'backprop-autograder[postgres]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no `postgres` user to run the server as (PostgreSQL refuses root)"
    return None


class Server:
    """A running server: `url(database)` is a SQLAlchemy URL for one of its databases."""

    def __init__(self, top: Path, user: str | None) -> None:
        self.top, self.user = top, user
        self.data, self.socket = top / "data", top / "socket"

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(command), capture_output=True, text=True, user=self.user,
                              cwd=self.top, timeout=120)

    def start(self) -> None:
        for folder in (self.data, self.socket):
            folder.mkdir()
            if self.user:
                shutil.chown(folder, self.user, self.user)
        self.data.chmod(0o700)
        self.socket.chmod(0o755)  # anyone may reach the socket: an ordinary user grades too
        steps = [
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", ROLE, "--auth=trust",
             "--no-sync", "-E", "UTF8", "--locale=C"],
            [str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
             "-l", str(self.top / "server.log"),
             "-o", f"-c listen_addresses='' -c unix_socket_directories='{self.socket}' "
                   "-c fsync=off -c max_connections=200"],
        ]
        for step in steps:
            done = self.run(*step)
            if done.returncode != 0:
                log = (self.top / "server.log")
                said = (done.stderr or done.stdout).strip() + (
                    "\n" + log.read_text()[-2000:] if log.is_file() else "")
                raise RuntimeError(f"{Path(step[0]).name} failed: {said[-3000:]}")

    def stop(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", str(self.data))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{ROLE}@/{database}?host={self.socket}"

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = name or f"gradebook_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(dbname="postgres", user=ROLE, host=str(self.socket),
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server():
    """A PostgreSQL server in a fresh folder, stopped and removed at the end. Raises
    RuntimeError (why, in its message) where it cannot start."""
    why = why_not()
    if why is not None:
        raise RuntimeError(why)
    user = "postgres" if os.geteuid() == 0 else None
    top = Path(tempfile.mkdtemp(prefix="autograder-postgres-"))
    top.chmod(0o755)
    if user:
        shutil.chown(top, user, user)
    server = Server(top, user)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL server (`Server`). Where none can start, the test skips and says
    why; under AUTOGRADER_REQUIRE_SANDBOX=1 (.ci/run) it fails instead: CI must not pass without
    ever testing PostgreSQL."""
    stack = ExitStack()
    try:
        server = stack.enter_context(postgres_server())
    except RuntimeError as exc:
        if REQUIRE_SANDBOX:
            pytest.fail(f"AUTOGRADER_REQUIRE_SANDBOX=1 (.ci/run) and no PostgreSQL server could "
                        f"start: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL server: {exc}")
    with stack:
        yield server

if __name__ == "__main__":
    import time

    with postgres_server() as running:
        print(running.create_database("course"), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
