"""`check` on native Windows: refused in one line that names what is missing, before anything runs.

Windows' Python cannot hand the student's process the channel's pipe (`subprocess`'s `pass_fds`
is POSIX only) nor wait on that pipe with a deadline (its `select` takes sockets alone). This
machine is Linux: the tests take those two pieces away as Windows lacks them (`sys.platform` is
"win32"; `select` on a pipe raises WinError 10038; no process may start) and read what a student
reads from `autograder check`.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from autograder.cli import app

WINDOWS = ("autograder: check needs Linux or macOS (on Windows, use WSL): this Python has no "
           "subprocess's pass_fds (POSIX only) and no select on a pipe")


def windows_select(rlist, wlist, xlist, timeout=None):
    """Windows' `select.select`: a pipe is not a socket."""
    raise OSError(10038, "An operation was attempted on something that is not a socket")


def no_process(*args, **kwargs):
    raise AssertionError("a process was started on a platform that cannot run it")


@pytest.fixture
def like_windows(monkeypatch):
    monkeypatch.setattr(select, "select", windows_select)
    monkeypatch.setattr(subprocess, "Popen", no_process)


def test_check_on_windows_says_in_one_line_what_is_missing(make_notebook, like_windows,
                                                          monkeypatch):
    path = make_notebook()
    monkeypatch.setattr(sys, "platform", "win32")
    result = CliRunner().invoke(app, ["check", str(path)])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [WINDOWS]
    assert result.stdout == ""


def test_a_python_whose_select_refuses_pipes_is_refused_and_json_says_so(make_notebook,
                                                                        like_windows):
    path = make_notebook()
    result = CliRunner().invoke(app, ["check", str(path), "--json"])
    said = ("check needs Linux or macOS (on Windows, use WSL): this Python has no select on a "
            "pipe")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"autograder: {said}"]
    assert json.loads(result.stdout) == {"error": said, "file": str(path)}
