"""A course's nbgrader configuration, as `autograder` reads it: the course's own
`nbgrader_config.py`, with the gradebook's path made absolute and `IsolatedCheck` grading in place
of nbgrader's in-kernel `Execute`. Grading, the class report, release and the exchange read it
here, and open the course's gradebook here (`open_gradebook`): SQLite's file in the course (the
default) or the database any SQLAlchemy URL names (`c.CourseDirectory.db_url`, e.g. PostgreSQL).
Reading it also names the course's folders to the sandbox (`hide_course`): no student's process
started afterwards, in this process or the grading processes it starts, sees them."""

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
    cfg.CourseDirectory.db_url = in_course(
        course, cfg.CourseDirectory.get("db_url", f"sqlite:///{course / 'gradebook.db'}"))
    cfg.OverwriteCells.add_missing_cells = True
    steps = list(cfg.Autograde.get("autograde_preprocessors", Autograde.autograde_preprocessors.default()))
    steps = [ISOLATED_CHECK if name_of(s) == "nbgrader.preprocessors.execute.Execute" else s
             for s in steps]
    if ISOLATED_CHECK not in [name_of(s) for s in steps]:
        steps.insert(0, ISOLATED_CHECK)
    cfg.Autograde.autograde_preprocessors = steps
    hide_course(cfg)
    return cfg


#: What becomes of a hand-in after the lesson's due date (the gradebook's, as nbgrader keeps it):
#: `refuse`: not graded, the grade stays the on-time hand-in's; `feedback-only` (the default):
#: graded for the student's feedback alone, the grade stays the on-time hand-in's; `latest`:
#: graded and counted, with nbgrader's own late penalty (`c.LateSubmissionPlugin`), as stock
#: `nbgrader autograde` does.
LATE_POLICIES = ("refuse", "feedback-only", "latest")
DEFAULT_LATE_POLICY = "feedback-only"


class ConfigError(ValueError):
    """The course's configuration says something that cannot be; the message says what, in one
    line."""


def late_policy(cfg: Config, assignment: str) -> str:
    """The late policy of lesson `assignment`: `c.LatePolicy.lessons[assignment]` in the course's
    nbgrader_config.py, else `c.LatePolicy.default`, else `feedback-only`. Raises `ConfigError`
    where the one it names is not a policy."""
    section = cfg.get("LatePolicy", {})
    lessons = section.get("lessons", {}) or {}
    if not isinstance(lessons, dict):
        raise ConfigError("c.LatePolicy.lessons in nbgrader_config.py must be a dict of lesson "
                          "id to policy, e.g. {'backward': 'latest'}")
    where = f"c.LatePolicy.lessons[{assignment!r}]" if assignment in lessons \
        else "c.LatePolicy.default"
    chosen = lessons.get(assignment, section.get("default", DEFAULT_LATE_POLICY))
    if chosen not in LATE_POLICIES:
        raise ConfigError(f"{where} in nbgrader_config.py is {chosen!r}: choose one of "
                          + ", ".join(repr(p) for p in LATE_POLICIES))
    return chosen


def hide_course(cfg: Config) -> None:
    """Name what the course's configuration places on this machine to the sandbox, which leaves
    it empty in every student's process this process starts (`policy.COURSE_PATHS`, inherited by
    the grading processes it starts): the course's folder, its exchange (nbgrader's default
    where it names none) and nbgrader's cache, and a SQLite gradebook's file. nbgrader's default
    folders are hidden anyway (`policy.NBGRADER_FOLDERS`); this adds where this course moved
    them. A later course replaces these."""
    import os

    from ..sandbox.policy import COURSE_PATHS
    from .exchange import root_of

    course = cfg.CourseDirectory.get("root", "") or os.getcwd()
    paths = [course, str(root_of(cfg)), cfg.Exchange.get("cache", "")]
    db_url = cfg.CourseDirectory.get("db_url", "")
    if db_url.startswith("sqlite:///"):
        paths.append(db_url.removeprefix("sqlite:///"))
    paths = [os.path.abspath(os.path.join(course, p)) for p in paths if p]
    os.environ[COURSE_PATHS] = os.pathsep.join(dict.fromkeys(paths))


def in_course(course: Path, db_url: str) -> str:
    """`db_url`, a relative SQLite file made one in `course` (as nbgrader, run there, reads it);
    any other URL as it is."""
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        return f"sqlite:///{course / db_url.removeprefix('sqlite:///')}"
    return db_url


class GradebookError(RuntimeError):
    """The course's gradebook cannot be opened; the message says why in one line, naming its URL
    (without a password)."""


def shown_url(db_url: str) -> str:
    """The URL as it may be printed: any password in it hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db_url)
    except ArgumentError:
        return db_url
    return db_url if url.password is None else url.render_as_string(hide_password=True)


def where_gradebook(course: Path) -> str:
    """Where the course's gradebook is, as a person reads it: SQLite's file, or the URL of its
    database (without a password)."""
    db_url = course_config(course).CourseDirectory.db_url
    return db_url.removeprefix("sqlite:///") if db_url.startswith("sqlite:///") else shown_url(db_url)


def open_gradebook(db_url: str, course_id: str = "default_course"):
    """nbgrader's Gradebook on `db_url` (made where the database is empty; a context manager).
    Raises `GradebookError` where the URL is not one, its driver is not installed, or its database
    cannot be reached."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    from . import put_python_on_path

    put_python_on_path()  # a new gradebook asks nbgrader's `alembic` for its version
    where = shown_url(db_url)
    try:
        return Gradebook(db_url, course_id)
    except ModuleNotFoundError as exc:
        how = ("pip install 'backprop-autograder[postgres]'" if exc.name == "psycopg"
               else f"pip install the package that provides {exc.name}")
        raise GradebookError(f"the gradebook {where} needs the database driver {exc.name!r}, "
                             f"which is not installed: {how}") from None
    except NoSuchModuleError:
        raise GradebookError(f"the gradebook {where} is not a database SQLAlchemy knows: give "
                             "a URL such as postgresql://USER@HOST/DATABASE or "
                             "sqlite:///gradebook.db") from None
    except ArgumentError:
        raise GradebookError(f"the gradebook {where!r} is not a database URL: give one such as "
                             "postgresql://USER@HOST/DATABASE or sqlite:///gradebook.db") from None
    except DBAPIError as exc:
        raise GradebookError(f"cannot open the gradebook {where}: "
                             f"{first_line(exc.orig or exc)}") from None
    except SQLAlchemyError as exc:
        raise GradebookError(f"cannot open the gradebook {where}: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """The driver's own first line (PostgreSQL's: 'connection ... failed: ...'), at most 200
    characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def name_of(step) -> str:
    cls = import_item(step) if isinstance(step, str) else step
    return f"{cls.__module__}.{cls.__qualname__}"
