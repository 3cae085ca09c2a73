"""Courses that share a machine's exchange cannot collide.

Before it, `release` and the demo gave every course the id `backprop`: a second course on the
machine re-released `backprop/backward` over the first one's, and `serve` on a course watched the
inbound folder of whichever course had last released under that id. Now a new course's id is its
folder's name and a digest of its path, `release` records the course in the exchange
(`<root>/<id>/autograder-course.json`) and refuses, in one line naming the other course, to write
over another's release; `serve` refuses to watch another course's inbound.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autograder.course.config import course_config
from autograder.course.release import ReleaseError, release
from autograder.course.serve import ServeError, Server
from tests.conftest import run_cli

pytestmark = [pytest.mark.slow]


def course_id(course: Path) -> str:
    return course_config(course).CourseDirectory.course_id


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> dict:
    """One course released into a shared exchange with the default course id."""
    top = tmp_path_factory.mktemp("collide")
    course, exchange = top / "alice" / "course", top / "exchange"
    release(course, assignment="backward", exchange=exchange)
    outbound = exchange / course_id(course) / "outbound" / "backward" / "backward.ipynb"
    return {"top": top, "course": course, "exchange": exchange, "outbound": outbound,
            "bytes": outbound.read_bytes(), "mtime": outbound.stat().st_mtime_ns}


def untouched(first: dict) -> bool:
    out = first["outbound"]
    return out.read_bytes() == first["bytes"] and out.stat().st_mtime_ns == first["mtime"]


def test_two_courses_with_the_default_id_get_two_ids_in_the_exchange(first):
    other = first["top"] / "bob" / "course"  # a folder of the same name, elsewhere
    release(other, assignment="backward", exchange=first["exchange"])
    assert course_id(other) != course_id(first["course"])
    assert course_id(first["course"]) != "backprop"
    assert course_id(first["course"]).startswith("course-")
    assert (first["exchange"] / course_id(other) / "outbound" / "backward").is_dir()
    assert untouched(first)


def test_release_under_another_courses_id_is_refused_in_one_line_naming_it(first):
    other = first["top"] / "carol" / "course"
    with pytest.raises(ReleaseError) as refused:
        release(other, course_id(first["course"]), assignment="backward",
                exchange=first["exchange"])
    said = str(refused.value)
    assert str(first["course"]) in said and "--course-id" in said and "\n" not in said
    assert not other.exists()  # refused before anything was made
    assert untouched(first)
    done = run_cli("release", "--course", str(other), "--course-id", course_id(first["course"]),
                   "--exchange", str(first["exchange"]))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(first["course"]) in done.stderr
    assert untouched(first)


def test_the_same_course_released_again_is_not_refused(first):
    release(first["course"], assignment="backward", exchange=first["exchange"])


def test_serve_refuses_to_watch_another_courses_inbound(first):
    # A second course configured with the first one's id and exchange (as every course was,
    # with `backprop`): a copy of its folder elsewhere.
    twin = Path(shutil.copytree(first["course"], first["top"] / "dave" / "course"))
    shutil.rmtree(twin / "serve", ignore_errors=True)
    with pytest.raises(ServeError) as refused:
        Server(twin, log=lambda line: None).close()
    assert str(first["course"]) in str(refused.value)
    Server(first["course"], log=lambda line: None).close()  # its own course serves


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder another owner")
def test_a_course_folder_made_in_the_exchange_by_another_user_is_not_released_into(first):
    # Anyone may make a folder in the exchange's root (1777): one made first, with a record
    # that names this course, by a user who is not this course's.
    course = first["top"] / "erin" / "course"
    squat = first["exchange"] / "erin-course"
    squat.mkdir()
    (squat / "autograder-course.json").write_text(json.dumps({"course": str(course)}))
    for path in (squat, squat / "autograder-course.json"):
        os.chown(path, 65534, 65534)
    with pytest.raises(ReleaseError) as refused:
        release(course, "erin-course", assignment="backward", exchange=first["exchange"])
    assert "taken there by" in str(refused.value) and str(course) not in str(refused.value)
    assert not (squat / "outbound").exists()
