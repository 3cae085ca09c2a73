"""The instructor's side: an nbgrader course directory, released, graded, fed back."""

import os
import sys


def put_python_on_path() -> None:
    """nbgrader runs `alembic` by name: find it beside this Python even in an unactivated venv."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
