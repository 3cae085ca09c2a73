"""A course's nbgrader configuration, as `autograder` reads it: the course's own
`nbgrader_config.py`, with the gradebook's path made absolute and `IsolatedCheck` grading in place
of nbgrader's in-kernel `Execute`. Grading, the class report, release and the exchange read it
here."""

from __future__ import annotations

from pathlib import Path

from nbgrader.converters import Autograde
from traitlets.config import Config, PyFileConfigLoader
from traitlets.utils.importstring import import_item

ISOLATED_CHECK = "autograder.course.preprocessor.IsolatedCheck"


def course_config(course: Path) -> Config:
    """The course's `nbgrader_config.py`, made sure to grade with IsolatedCheck."""
    cfg = Config()
    if (course / "nbgrader_config.py").is_file():
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", str(course)).load_config())
    cfg.CourseDirectory.root = str(course)
    db_url = cfg.CourseDirectory.get("db_url", f"sqlite:///{course / 'gradebook.db'}")
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{course / db_url.removeprefix('sqlite:///')}"
    cfg.CourseDirectory.db_url = db_url
    cfg.OverwriteCells.add_missing_cells = True
    steps = list(cfg.Autograde.get("autograde_preprocessors", Autograde.autograde_preprocessors.default()))
    steps = [ISOLATED_CHECK if name_of(s) == "nbgrader.preprocessors.execute.Execute" else s
             for s in steps]
    if ISOLATED_CHECK not in [name_of(s) for s in steps]:
        steps.insert(0, ISOLATED_CHECK)
    cfg.Autograde.autograde_preprocessors = steps
    return cfg


def name_of(step) -> str:
    cls = import_item(step) if isinstance(step, str) else step
    return f"{cls.__module__}.{cls.__qualname__}"
