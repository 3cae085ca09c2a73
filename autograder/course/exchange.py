"""nbgrader's exchange for a course: where students fetch lessons and hand in, on a shared server.

`autograder release` writes the exchange's root into the course's `nbgrader_config.py`
(`c.Exchange.root`, default nbgrader's `/usr/local/share/nbgrader/exchange`) and releases each
lesson there with nbgrader's own `release_assignment`, so that formgrader shows it released and
a student's Assignment List (or `nbgrader fetch_assignment`) offers it. Everything else is
stock nbgrader's exchange: students `submit` into `<root>/<course>/inbound` (writable, not
listable), the instructor `collect`s, `release_feedback` puts each page in
`<root>/<course>/feedback` under a name only its student's submission secret gives.

What this module adds around it, for students apart on a shared server:

* the root is made with the sticky bit (`1777`): nbgrader needs it writable by all, and without
  the bit a student could rename the course's folder away and put their own in its place;
* the course folder (gradebook, the lessons' reference solutions, every student's work) is made
  readable by its owner alone (`0700`);
* `submission_owner_ok`: a submission in `inbound/` is named by its student, but anyone can
  write there, so a name is believed only from a folder (not a link) owned by that student (or
  by the instructor, or root);
* one course per course id (`whose`, `claim`): the exchange is the machine's, shared by every
  course on it, and nbgrader's `release_assignment --force` writes over whatever is released
  under the same id. `release` writes `<root>/<id>/autograder-course.json` (the course's folder
  and its user), and refuses to release, and `serve` to serve, where `<root>/<id>` is another
  course's: one that file names, or, without it, a folder of another user.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path

#: nbgrader's own default root.
DEFAULT_ROOT = "/usr/local/share/nbgrader/exchange"


class ExchangeError(RuntimeError):
    """The exchange cannot be used; the message says why in one line."""


def root_of(cfg) -> Path:
    """The exchange root a course's configuration names (nbgrader's default otherwise)."""
    return Path(cfg.Exchange.get("root", DEFAULT_ROOT))


def ensure_root(root: Path) -> None:
    """Make the exchange root (mode 1777) where it is missing, or say in one line what an
    administrator must run. An existing root is left as it is, but one that others cannot
    write to is refused (students could not hand in)."""
    if not root.exists():
        try:
            root.mkdir(parents=True)
            root.chmod(0o1777)
        except PermissionError:
            raise ExchangeError(
                f"cannot create nbgrader's exchange {root}: ask an administrator to run "
                f"`install -d -m 1777 {root}`, or choose another with --exchange") from None
        return
    mode = root.lstat().st_mode
    if not stat.S_ISDIR(mode):
        raise ExchangeError(f"nbgrader's exchange {root} is not a folder")
    if mode & 0o777 != 0o777:
        raise ExchangeError(
            f"nbgrader's exchange {root} is mode {oct(mode & 0o7777)}: students cannot hand in "
            f"there; make it `chmod 1777 {root}`")


def make_private(course: Path) -> None:
    """The course folder, readable by its owner alone: gradebook, reference solutions and every
    student's work stay out of reach of the students on the same server."""
    if course.stat().st_uid == os.geteuid():
        course.chmod(0o700)


def submission_owner_ok(folder: Path, student: str) -> bool:
    """Whether the inbound submission `folder` (not a link) is owned by `student`, by this
    process's user (the instructor) or by root: anyone can create a folder in `inbound/`, named
    after anyone."""
    try:
        st = folder.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if st.st_uid in (0, os.geteuid()):
        return True
    try:
        return pwd.getpwnam(student).pw_uid == st.st_uid
    except KeyError:
        return False


#: In `<root>/<course id>/`: which course released there (`claim`).
CLAIM = "autograder-course.json"


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"user {uid}"


def whose(root: Path, course_id: str, course: Path) -> str | None:
    """None where course `course` may release and serve as `course_id` in the exchange `root`
    (nothing is there yet, or it is this course's); else one line naming the course (or the
    user) whose it is. Anyone may make a folder in the root: a folder of another user is this
    course's only where its record, written by that same user, names this course and that user
    owns this course's folder too (a group-shared course's other instructor)."""
    folder = root / course_id
    try:
        st = folder.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{folder} cannot be read ({exc.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a folder"
    named, by = read_claim(folder)
    if st.st_uid == os.geteuid():
        # no record: released before courses were recorded there, by this user: this one's
        if named is None or named == str(course):
            return None
        return f"the course id {course_id!r} is taken there by the course {named}"
    try:
        course_owner = course.stat().st_uid
    except OSError:
        course_owner = None
    if named == str(course) and by == st.st_uid == course_owner:
        return None
    if named is not None and named != str(course) and by == st.st_uid:
        return f"the course id {course_id!r} is taken there by the course {named}"
    return f"the course id {course_id!r} is taken there by {user_name(st.st_uid)}"


def read_claim(folder: Path) -> tuple[str | None, int | None]:
    """(the course `folder`'s record names, the record's owner), or (None, None) where there is
    none that can be read (a link is not followed)."""
    try:
        fd = os.open(folder / CLAIM, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None, None
    with os.fdopen(fd, "rb") as fh:
        owner = os.fstat(fh.fileno()).st_uid
        raw = fh.read(4096)
    try:
        return str(json.loads(raw)["course"]), owner
    except (ValueError, KeyError, TypeError):
        return None, None  # cut short (a crash while it was written): written again


def claim(root: Path, course_id: str, course: Path) -> None:
    """Record `course` as the one released under `course_id` in the exchange `root` (where it
    is not yet). Raises OSError where it cannot be written."""
    folder = root / course_id
    if read_claim(folder)[0] == str(course):
        return
    tmp = folder / f".{CLAIM}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.write_text(json.dumps({"course": str(course), "user": user_name(os.geteuid())}) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, folder / CLAIM)
