"""JupyterHub for a course on one server: the students and the instructor log in with their Unix
passwords (PAM, JupyterHub's default) and each gets a JupyterLab of their own, run as that Unix
user (JupyterHub's LocalProcessSpawner), with nbgrader's Assignment List and formgrader in it.

What this module writes is a plain `jupyterhub_config.py` an administrator can read and keep:

* PAM login, for the named users only (`allowed_users`): no one else on the machine, root
  included, can start a server through the Hub;
* each server started in the user's `~/<folder>` (`Spawner.notebook_dir`), in JupyterLab,
  with the user's own Python (`jupyterhub.singleuser`, the nbgrader extensions enabled where
  that Python's packages are installed, as pip installs nbgrader);
* the Hub's state (database, cookie secret, the proxy's pid) in a folder readable by root alone,
  on loopback ports of its own.

`Hub` runs `jupyterhub` as root with that configuration until stopped; where the users see the
packages through bind mounts (a checkout in root's home), the Hub and every server it starts run
in one mount namespace that has them.

Every user runs the Python that installed the packages, to the full version (`why_other_python`):
pip chose each package's files for that version (soupsieve 4.1 needs 3.11.5 or later; run by
3.11.2 it cannot parse a CSS selector, and formgrader's submission page and `nbgrader
generate_feedback` fail on it).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

#: The proxy JupyterHub starts (npm's configurable-http-proxy).
PROXY = "configurable-http-proxy"

CONFIG = '''\
# JupyterHub for one course, written by autograder (autograder/course/hub.py).
import os

c = get_config()  # noqa: F821

c.JupyterHub.bind_url = {url!r}
c.JupyterHub.hub_bind_url = {hub_url!r}
c.ConfigurableHTTPProxy.api_url = {proxy_api!r}
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {state_proxy_pid!r}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.cleanup_servers = True

# Unix passwords (PAM), for these users only.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = {users!r}

# Each user's JupyterLab, as that user, in ~/{folder}, with that user's Python.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.notebook_dir = "~/{folder}"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = {timeout}
c.Spawner.http_timeout = {timeout}
PYTHONS = {pythons!r}


def their_python(spawner):
    python = PYTHONS.get(spawner.user.name, {default_python!r})
    spawner.cmd = [python, "-m", "jupyterhub.singleuser"]
    # a terminal in their JupyterLab finds that Python first
    spawner.environment = {{**spawner.environment,
                           "PATH": os.path.dirname(python) + ":/usr/local/bin:/usr/bin:/bin"}}


c.Spawner.pre_spawn_hook = their_python
'''


class HubError(RuntimeError):
    """The Hub could not be started; the message says why in one line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def why_no_hub() -> str | None:
    """Why a Hub cannot be run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "JupyterHub spawns each user's server as that user: it must run as root"
    if shutil.which(PROXY) is None:
        return (f"no {PROXY} on PATH: npm install -g configurable-http-proxy (as root; "
                "`make test` and `make hub` do)")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed: pip install 'backprop-autograder[hub]'"
    return None


def why_other_python(user: str, python: str, version: str) -> str | None:
    """Why `user`'s `python`, whose `sys.version` is `version`, cannot run the packages this
    Python installed (None where it can): another version, even another 3.11.x, is refused."""
    if version == sys.version:
        return None
    theirs = version.split()[0] if version else "nothing"
    return (f"{user}'s Python ({python}) is {theirs}, and the packages were installed by Python "
            f"{sys.version.split()[0]} ({sys.executable}): give every user the Python that "
            "installed them (a venv made with it), not another version")


def write_config(state: Path, pythons: dict[str, str], folder: str = "work",
                 port: int | None = None, timeout: int = 120) -> tuple[Path, str]:
    """`state/jupyterhub_config.py` for the users of `pythons` (user -> the Python their server
    runs), and the Hub's address. `state` is made readable by root alone."""
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    url = f"http://127.0.0.1:{port or free_port()}"
    config = state / "jupyterhub_config.py"
    config.write_text(CONFIG.format(
        url=url, hub_url=f"http://127.0.0.1:{free_port()}",
        proxy_api=f"http://127.0.0.1:{free_port()}", proxy=shutil.which(PROXY) or PROXY,
        state_proxy_pid=str(state / "proxy.pid"),
        db_url=f"sqlite:///{state / 'jupyterhub.sqlite'}", cookie=str(state / "cookie_secret"),
        users=set(pythons), folder=folder, timeout=timeout, pythons=pythons,
        default_python=sys.executable))
    return config, url


class Hub:
    """`jupyterhub` (this Python's) with `config`, as root, until `stop`; `mounts` (commands:
    `mount --bind SRC DST`...) are run, in order, in a mount namespace of its own that every
    server it starts shares."""

    def __init__(self, config: Path, url: str, mounts: list[list[str]] = (),
                 wait: float = 120) -> None:
        self.url, self.state = url, config.parent
        hub = [sys.executable, "-m", "jupyterhub", "-f", str(config)]
        self.log = (self.state / "jupyterhub.log").open("w")
        if mounts:
            made = "".join(f"{shlex.join(m)} && " for m in mounts)
            hub = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f"{made}exec {shlex.join(hub)}"]
        self.process = subprocess.Popen(hub, cwd=self.state, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + wait
        while True:
            if self.process.poll() is not None:
                raise HubError(f"jupyterhub ended at start: {self.tail()}")
            try:
                with urllib.request.urlopen(f"{url}/hub/api", timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise HubError(f"jupyterhub did not answer at {url}: {self.tail()}") from None
                time.sleep(0.5)

    def tail(self, size: int = 3000) -> str:
        self.log.flush()
        return (self.state / "jupyterhub.log").read_text(errors="replace")[-size:]

    def stop(self, wait: float = 60) -> None:
        """SIGTERM: JupyterHub stops each user's server and its proxy, then itself."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
