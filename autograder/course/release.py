"""`autograder release --course DIR`: DIR becomes a working nbgrader course, the assignment released.

nbgrader's own `generate_assignment` writes `DIR/release/backward/backward.ipynb` (stubs, no
solutions, no outputs) and records the assignment, its cells and points in the gradebook.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from .. import spec
from ..engine import find_source_notebook
from . import put_python_on_path

#: Stock `nbgrader autograde` grades with our isolated engine instead of a Jupyter kernel.
AUTOGRADE = '''
# `nbgrader autograde` runs the student's code through `autograder` (an isolated process),
# not in a Jupyter kernel: IsolatedCheck takes the place of nbgrader's Execute.
c.Autograde.autograde_preprocessors = [
    "autograder.course.preprocessor.IsolatedCheck",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# The seed each student's inputs are drawn from (with the student id): a regrade repeats them.
c.IsolatedCheck.seed = {seed}
'''

#: Feedback pages (stock `generate_feedback` too) and formgrader show each report alone.
FEEDBACK = '''
# Feedback pages and formgrader show each grade cell's report without the score under it.
c.HTMLExporter.preprocessors = ["autograder.course.feedback.ReportAlone"]
'''


CONFIG = '''\
# nbgrader configuration, written by `autograder release`. Stock nbgrader commands work here.
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "{course_id}"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# Stock `nbgrader autograde` restores changed or deleted test cells from the gradebook.
c.OverwriteCells.add_missing_cells = True
''' + AUTOGRADE + FEEDBACK

class ReleaseError(RuntimeError):
    """Release failed; the message says why in one line."""


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a stock nbgrader command in the course directory."""
    put_python_on_path()
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          capture_output=True, text=True)


def release(course: str | Path, course_id: str = "backprop") -> Path:
    """Make `course` an nbgrader course and release the assignment; return the student notebook."""
    course = Path(course).resolve()
    source = find_source_notebook()
    if source is None:
        raise ReleaseError("the source notebook is not here: release runs from an instructor's "
                           "checkout (assignments/backward/backward.ipynb)")
    course.mkdir(parents=True, exist_ok=True)
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG.format(course_id=course_id, seed=secrets.randbits(31)))
    else:
        text = config.read_text()
        with config.open("a") as out:
            if "IsolatedCheck" not in text:
                out.write(AUTOGRADE.format(seed=secrets.randbits(31)))
            if "ReportAlone" not in text:
                out.write(FEEDBACK)
    dest = course / "source" / spec.ASSIGNMENT_ID
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, dest / spec.NOTEBOOK_NAME)
    done = nbgrader(course, "generate_assignment", spec.ASSIGNMENT_ID, "--force")
    released = course / "release" / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME
    if done.returncode != 0 or not released.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ReleaseError(f"nbgrader generate_assignment failed: {last[0]}")
    return released
