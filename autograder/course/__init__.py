"""The instructor's side: an nbgrader course directory, released, graded, fed back."""

import os
import sys

# jsonschema, which nbformat imports, imports rfc3987_syntax where it is installed (jupyter's
# own dependencies install it) only to check the "iri" string formats, which neither nbformat's
# nor nbgrader's schemas use; that import compiles 38 grammars, about 1 s in each process that
# reads notebooks. Marked missing here, before anything imports jsonschema; a process that had
# already imported it keeps it.
sys.modules.setdefault("rfc3987_syntax", None)


def put_python_on_path() -> None:
    """nbgrader runs `alembic` by name: find it beside this Python even in an unactivated venv."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
