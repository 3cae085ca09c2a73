"""`autograder release --course DIR`: DIR becomes a working nbgrader course, its lessons released.

For each lesson (every one this install carries, or `--assignment ID`): the lesson's folder is
copied to `DIR/lessons/<id>/` and its solutions folder to `DIR/solutions/<id>/` (the course's own
copies, which grading reads and an instructor may edit: a copy already there is kept), its
notebook to `DIR/source/<id>/`, and nbgrader's own `generate_assignment` writes
`DIR/release/<id>/<notebook>` (stubs, no solutions, no outputs) and records the assignment, its
cells and points in the gradebook; then nbgrader's own `release_assignment` puts it in the
exchange (`c.Exchange.root`, exchange.py) for students to fetch. Nothing of `DIR/solutions/`
reaches nbgrader's folders, and DIR is made readable by its owner alone.

The lesson's public files (`PUBLIC`) go beside its notebook in `DIR/source/<id>/`, so that
nbgrader releases them with it and a student's self-check finds the lesson in what they fetched.

Released again, a lesson found elsewhere than in the course (AUTOGRADER_LESSONS) replaces the
course's copies (its solutions too, where it has some), and a lesson edited in the course is
released as it now is; where nothing changed, nothing is touched ("unchanged"). nbgrader runs on
the course as it will be, and where it refuses (cells added or removed once there are
submissions), every place it touched is put back as it was and its reason is said in one line.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from ..lesson import model as lessons
from ..lesson.model import Lesson
from ..lesson.source import answer_cells_error
from . import put_python_on_path
from .exchange import DEFAULT_ROOT, ExchangeError, ensure_root, make_private

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
# Feedback pages and formgrader show each grade cell's report without the score under it, and
# math as MathML (drawn without network).
c.HTMLExporter.preprocessors = ["autograder.course.feedback.ReportAlone",
                                "autograder.course.offline_math.OfflineMath"]
'''


CONFIG = '''\
# nbgrader configuration, written by `autograder release`. Stock nbgrader commands work here.
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "{course_id}"
c.CourseDirectory.db_url = {db_url!r}
# Stock `nbgrader autograde` restores changed or deleted test cells from the gradebook.
c.OverwriteCells.add_missing_cells = True
# A hand-in after its lesson's due date (`autograder grade` and `serve`): "feedback-only" (the
# default: graded for feedback, the on-time grade stays), "refuse", or "latest" (it counts, with
# nbgrader's late penalty, c.LateSubmissionPlugin.penalty_method). Every lesson, or one:
# c.LatePolicy.default = "feedback-only"
# c.LatePolicy.lessons = {{"backward": "latest"}}
''' + AUTOGRADE + FEEDBACK

#: Where students fetch and hand in (nbgrader's exchange), read by stock nbgrader too.
EXCHANGE = '''
# nbgrader's exchange: `autograder release` releases each lesson there (release_assignment).
c.Exchange.root = {root!r}
'''

#: The gradebook, where `--db` names another than the one configured (`release(db=...)`).
DATABASE = '''
# The gradebook: nbgrader, formgrader and `autograder` read and write it there.
c.CourseDirectory.db_url = {db_url!r}
'''

#: The default gradebook: SQLite's file in the course.
SQLITE = "sqlite:///gradebook.db"

#: `release(exchange=...)`: the exchange the course's configuration names, else nbgrader's.
EXCHANGE_CONFIGURED = "configured"


class ReleaseError(RuntimeError):
    """Release failed; the message says why in one line."""


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a stock nbgrader command in the course directory."""
    put_python_on_path()
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          capture_output=True, text=True)


COPY_IGNORES = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def course_lesson(course: Path, lesson: Lesson) -> Lesson:
    """The course's own copy of `lesson` and of its solutions (each made from the lesson's the
    first time)."""
    mine = course / "lessons" / lesson.id
    if not (mine / lessons.SPEC).is_file():
        shutil.copytree(lesson.folder, mine, dirs_exist_ok=True, ignore=COPY_IGNORES)
    solutions = lessons.solutions_folder(mine)
    if not solutions.is_dir() and lesson.solutions.is_dir():
        shutil.copytree(lesson.solutions, solutions, ignore=COPY_IGNORES)
    return lessons.load(mine)


#: A lesson's files a student may have (docs/contract.md, "A lesson": "everyone"), released
#: beside its notebook: never its notebook with the solutions, never anything of solutions/.
PUBLIC = (lessons.SPEC, "lesson.py")


class Released(NamedTuple):
    """A lesson's student notebook, and whether this release changed the course (False: the
    course already had this lesson as it is, and nothing was touched)."""

    path: Path
    changed: bool


def default_course_id(course: Path) -> str:
    """The course id a course gets where none is given: its folder's name and a digest of the
    folder's path (`ml101-3fa9c1`), one that no other course folder on the machine gives, since
    the exchange is the machine's (`exchange.whose`)."""
    import hashlib

    name = re.sub(r"[^A-Za-z0-9_-]+", "-", course.name).strip("-") or "course"
    return f"{name}-{hashlib.sha256(str(course).encode()).hexdigest()[:6]}"


def course_config_id(course: Path) -> str:
    """The course id the course's nbgrader_config.py names ("" where none)."""
    if not (course / "nbgrader_config.py").is_file():
        return ""
    from .config import course_config

    return str(course_config(course).CourseDirectory.get("course_id", "")).strip()


def course_id_of(course: Path, given: str | None = None) -> str:
    """The course's id: the one its nbgrader_config.py names, else `given`, else
    `default_course_id`."""
    return course_config_id(course) or given or default_course_id(course)


def release(course: str | Path, course_id: str | None = None,
            assignment: str | None = None, exchange: str | Path | None = None,
            db: str | None = None) -> list[Path]:
    """`release_lessons`' student notebooks, one per lesson."""
    return [done.path for done in release_lessons(course, course_id, assignment, exchange, db)]


def release_lessons(course: str | Path, course_id: str | None = None,
                    assignment: str | None = None, exchange: str | Path | None = None,
                    db: str | None = None) -> list[Released]:
    """Make `course` an nbgrader course and release its lessons (or `assignment` alone), and,
    given `exchange` (nbgrader's exchange root, kept in the course's configuration; `EXCHANGE_
    CONFIGURED`: the one configured there, else nbgrader's default), into that exchange too;
    return the student notebooks, one per lesson. `db` (a SQLAlchemy URL, e.g.
    postgresql://USER@HOST/DATABASE) is the gradebook, kept in the course's configuration; without
    it, the one configured there, else SQLite's `gradebook.db` in the course. `course_id`: for a
    new course (one already configured keeps its own), default `default_course_id`. Raises
    `ReleaseError` where the gradebook cannot be opened, or where the exchange holds another
    course under this one's id (before anything is touched)."""
    course = Path(course).resolve()
    course_id = course_id_of(course, course_id)
    if exchange is not None:
        refuse_taken(course, course_id, exchange)
    found = lessons.available(course)
    if assignment is not None and assignment not in found:
        raise ReleaseError(f"no lesson {assignment!r} here: the lessons are {', '.join(found) or 'none'}")
    chosen = [found[assignment]] if assignment else list(found.values())
    for lesson in chosen:  # before the course is touched: a misspelt grade_id scores 0
        if lesson.source_path.is_file() and (wrong := answer_cells_error(lesson)):
            raise ReleaseError(wrong)
    if not chosen:
        raise ReleaseError("no lessons here: this install carries none (see docs/lessons.md)")
    made = not course.exists()
    course.mkdir(parents=True, exist_ok=True)
    if db is not None:
        try:
            check_gradebook(course, db, course_id)  # before the configuration names it
        except ReleaseError:
            if made:
                shutil.rmtree(course, ignore_errors=True)  # nothing is left of a failed release
            raise
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG.format(course_id=course_id, seed=secrets.randbits(31),
                                        db_url=db or SQLITE))
    else:
        text = config.read_text()
        with config.open("a") as out:
            if not course_config_id(course):  # a course nbgrader made, without an id
                out.write(f"\nc.CourseDirectory.course_id = {course_id!r}\n")
            if "IsolatedCheck" not in text:
                out.write(AUTOGRADE.format(seed=secrets.randbits(31)))
            if "ReportAlone" not in text:
                out.write(FEEDBACK)
        if db is not None:
            configure_gradebook(course, db)
    from .grade import course_config

    cfg = course_config(course)
    if db is None:  # the configured one: said in one line here, not in nbgrader's traceback
        check_gradebook(course, cfg.CourseDirectory.db_url,
                        cfg.CourseDirectory.get("course_id", course_id))
    if not cfg.CourseDirectory.get("groupshared", False):
        make_private(course)  # a group-shared course keeps the modes its group needs
    root = configure_exchange(course, exchange) if exchange is not None else None
    done = [release_lesson(course, lesson, cfg.CourseDirectory.db_url) for lesson in chosen]
    if root is not None:
        for lesson in chosen:
            release_to_exchange(course, lesson.id)
        from .exchange import claim

        try:
            claim(root, course_id, course)
        except OSError as exc:
            raise ReleaseError(f"released, but the course cannot be recorded in "
                               f"{root / course_id} ({exc.strerror}): another course could "
                               "release over it") from None
    return done


def refuse_taken(course: Path, course_id: str, exchange: str | Path) -> None:
    """`ReleaseError` where the exchange `release_lessons` would release into holds another
    course under `course_id` (nbgrader's `release_assignment --force` would write over it)."""
    from .config import course_config
    from .exchange import whose

    if exchange == EXCHANGE_CONFIGURED:
        configured = (course_config(course).Exchange.get("root")
                      if (course / "nbgrader_config.py").is_file() else None)
        root = Path(configured or DEFAULT_ROOT)
    else:
        root = Path(exchange).resolve()
    taken = whose(root, course_id, course)
    if taken is not None:
        raise ReleaseError(f"not released into nbgrader's exchange {root}: {taken}; give this "
                           f"course an id of its own (`--course-id`) or another exchange")


def check_gradebook(course: Path, db_url: str, course_id: str) -> None:
    """Open the gradebook `db_url` names (nbgrader makes its tables where the database is empty).
    Raises `ReleaseError` where it cannot be opened."""
    from .config import GradebookError, in_course, open_gradebook

    try:
        open_gradebook(in_course(course, db_url), course_id).close()
    except GradebookError as exc:
        raise ReleaseError(str(exc)) from None


def configure_gradebook(course: Path, db_url: str) -> None:
    """`db_url` as the course's gradebook (it replaces the one configured there)."""
    from .config import course_config, in_course

    if course_config(course).CourseDirectory.db_url != in_course(course, db_url):
        with (course / "nbgrader_config.py").open("a") as out:
            out.write(DATABASE.format(db_url=db_url))


def configure_exchange(course: Path, exchange: str | Path) -> Path:
    """The exchange root in the course's configuration (`exchange` replaces the one there), made
    where it is missing."""
    from .grade import course_config

    config = course / "nbgrader_config.py"
    configured = course_config(course).Exchange.get("root")
    root = (Path(configured or DEFAULT_ROOT) if exchange == EXCHANGE_CONFIGURED
            else Path(exchange).resolve())
    if configured != str(root):
        with config.open("a") as out:
            out.write(EXCHANGE.format(root=str(root)))
    try:
        ensure_root(root)
    except ExchangeError as exc:
        raise ReleaseError(str(exc)) from None
    return root


def release_to_exchange(course: Path, assignment: str) -> None:
    """nbgrader's own `release_assignment` (again, where it was released before)."""
    done = nbgrader(course, "release_assignment", assignment, "--force")
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ReleaseError(f"nbgrader release_assignment {assignment} failed: {last[0]}")


def release_lesson(course: Path, lesson: Lesson, db_url: str = SQLITE) -> Released:
    """Release `lesson` into the course: its copies there made or updated, then nbgrader's
    `generate_assignment`; where nothing would change, nothing is done. Raises `ReleaseError`,
    the course left as it was, where nbgrader refuses."""
    if not lesson.source_path.is_file():
        raise ReleaseError(f"lesson {lesson.id} has no source notebook ({lesson.source_path})")
    wanted = course_copies(course, lesson)
    released = course / "release" / lesson.id / lesson.notebook
    if released.is_file() and all(same(src, dst) for src, dst in wanted) \
            and in_gradebook(course, db_url, lesson):
        return Released(released, False)
    places = [course / "lessons" / lesson.id, course / "solutions" / lesson.id,
              course / "source" / lesson.id, course / "release" / lesson.id]
    if db_url.startswith("sqlite:///"):
        from .config import in_course

        places.append(Path(in_course(course, db_url).removeprefix("sqlite:///")))
    with Backup(course, places) as backup:
        for src, dst in wanted:
            put(src, dst)
        done = nbgrader(course, "generate_assignment", lesson.id, "--force")
        if done.returncode != 0 or not released.is_file():
            backup.restore()
            raise ReleaseError(refusal(lesson.id, done))
    return Released(released, True)


def course_copies(course: Path, lesson: Lesson) -> list[tuple[Path, Path]]:
    """(what, where in the course) for each copy `lesson` makes: its folder and its solutions
    (where the lesson is not the course's own copy), its notebook and public files beside it."""
    mine = course / "lessons" / lesson.id
    pairs = []
    if lesson.folder != mine.resolve():
        pairs.append((lesson.folder, mine))
        solutions = lesson.solutions
        if solutions.is_dir() and solutions != lesson.folder:
            pairs.append((solutions, course / "solutions" / lesson.id))
    source = course / "source" / lesson.id
    pairs.append((lesson.source_path, source / lesson.notebook))
    pairs += [(lesson.folder / name, source / name) for name in PUBLIC
              if (lesson.folder / name).is_file()]
    return pairs


def files_of(path: Path) -> dict[str, bytes]:
    """A file's bytes, or a folder's files by their path in it (caches and checkpoints left out)."""
    if path.is_file():
        return {"": path.read_bytes()}
    if not path.is_dir():
        return {}
    ignored = ("__pycache__", ".ipynb_checkpoints")
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix != ".pyc"
            and not any(part in ignored for part in p.relative_to(path).parts)}


def same(src: Path, dst: Path) -> bool:
    return files_of(src) == files_of(dst)


def put(src: Path, dst: Path) -> None:
    """`dst` made `src`'s copy (a folder replaced whole: a file gone from the lesson goes)."""
    if src.is_dir():
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=COPY_IGNORES)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)


def in_gradebook(course: Path, db_url: str, lesson: Lesson) -> bool:
    """Whether the gradebook records the lesson's notebook (a new gradebook does not)."""
    from nbgrader.api import MissingEntry

    from .config import GradebookError, course_config, in_course, open_gradebook

    course_id = course_config(course).CourseDirectory.get("course_id") or course_id_of(course)
    try:
        with open_gradebook(in_course(course, db_url), course_id) as gb:
            gb.find_notebook(lesson.notebook_id, lesson.id)
    except (GradebookError, MissingEntry):
        return False
    return True


class Backup:
    """The places a release may touch, copied first (within the course: its files stay its
    owner's); `restore()` puts each back as it was, one that was missing removed."""

    def __init__(self, course: Path, places: list[Path]) -> None:
        self.course, self.places = course, places

    def __enter__(self) -> Backup:
        self.kept = Path(tempfile.mkdtemp(prefix=".release-backup-", dir=self.course))
        for i, place in enumerate(self.places):
            if place.is_dir():
                shutil.copytree(place, self.kept / str(i), symlinks=True)
            elif place.is_file():
                shutil.copy2(place, self.kept / str(i))
        return self

    def restore(self) -> None:
        for i, place in enumerate(self.places):
            if place.is_dir() and not place.is_symlink():
                shutil.rmtree(place)
            elif place.exists() or place.is_symlink():
                place.unlink()
            if (self.kept / str(i)).exists():
                (self.kept / str(i)).replace(place)

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and not isinstance(exc[1], ReleaseError):
            self.restore()  # interrupted, or a copy failed: the course as it was
        shutil.rmtree(self.kept, ignore_errors=True)


#: The last exception a traceback in nbgrader's log names: nbgrader's own reason.
RAISED = re.compile(r"^(?:[\w.]*(?:Error|Exception)): (.+)$")


def refusal(assignment: str, done: subprocess.CompletedProcess) -> str:
    """One line: nbgrader's own reason for refusing, and what to do."""
    lines = (done.stderr + "\n" + done.stdout).strip().splitlines()
    reasons = [m.group(1).strip() for line in lines if (m := RAISED.match(line.strip()))
               and "see the" not in m.group(1)]
    reason = reasons[-1] if reasons else next(
        (line.strip() for line in reversed(lines) if line.strip()), "no output")
    todo = ("keep the lesson's cells as released (their code and points may change) or release "
            "it under a new id" if "there are submissions" in reason else "fix what it names")
    return (f"nbgrader generate_assignment {assignment} refused: {reason}; the course is as "
            f"it was: {todo}")
