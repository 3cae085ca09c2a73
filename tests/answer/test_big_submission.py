"""The trusted side stays linear and capped on a submission folder of thousands of files.

A submission with 1,500 extra files took a two-student batch 103 s (the copy of a student's
other files into `autograded/` walked the folder once per file, and nbgrader's `find_all_files`
lists a folder again for each file in it). Now one walk, at most `MAX_OTHER_FILES` copied, and one
note says what was left out.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from autograder import files
from autograder.course import samples
from autograder.course.grade import grade_course
from autograder.course.release import release
from tests.conftest import BACKWARD

EXTRA = 5000
MAX_OTHER_FILES = 1000  # record.MAX_OTHER_FILES, as docs/security.md says
#: Generous, for a busy machine: grading this student takes seconds once the copy is linear; the
#: copy that walked the folder once per file took minutes.
BOUND_S = 150


@pytest.mark.sandbox
def test_a_submission_of_thousands_of_files_is_graded_promptly_and_its_copy_capped(tmp_path):
    course = tmp_path / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    samples.write_class(released, course, BACKWARD, {"ann": ({}, [])})
    folder = course / "submitted" / "ann" / "backward"
    for i in range(EXTRA):
        (folder / f"data-{i:05d}.txt").write_text(f"{i}\n")
    (folder / "__pycache__").mkdir()  # nbgrader's ignore list: never copied, never counted
    for i in range(500):
        (folder / "__pycache__" / f"x{i}.pyc").write_bytes(b"")

    start = time.monotonic()
    (outcome,) = grade_course(course, workers=1)
    took = time.monotonic() - start

    assert took < BOUND_S, f"grading one student with {EXTRA} extra files took {took:.0f} s"
    assert outcome.score == 10.0 and outcome.reason is None
    copied = sorted(p.name for p in (course / "autograded" / "ann" / "backward").glob("data-*"))
    assert copied == [f"data-{i:05d}.txt" for i in range(MAX_OTHER_FILES)]
    assert not (course / "autograded" / "ann" / "backward" / "__pycache__").exists()
    note = (f"{EXTRA - MAX_OTHER_FILES} of the other files handed in were not copied beside the "
            f"graded notebook ({EXTRA - MAX_OTHER_FILES} past the first {MAX_OTHER_FILES}); "
            f"{MAX_OTHER_FILES} were")
    graded = (course / "autograded" / "ann" / "backward" / "backward.ipynb").read_text()
    assert note in "".join(json.loads(graded)["cells"][0]["source"])  # the notes, at the top
    page = (course / "feedback" / "ann" / "backward" / "backward.html").read_text()
    assert note in page
    kept = json.loads((course / "reports" / "backward" / "students" / "ann.json").read_text())
    assert note in kept["report"]["notes"]


def test_the_copy_leaves_links_and_fifos_and_says_what_its_cap_left_out(tmp_path):
    source, dest = tmp_path / "s", tmp_path / "d"
    source.mkdir()
    (source / "a.txt").write_text("a")
    (source / "link.txt").symlink_to(tmp_path / "secret")
    os.mkfifo(source / "fifo")
    for i in range(30):
        (source / f"z{i:03d}").write_text("z")
    said = files.copy_plain(source, dest, [], 5, 1 << 20, 1 << 20)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "z000", "z001", "z002", "z003"]
    assert said == ("26 of the other files handed in were not copied beside the graded notebook "
                    "(26 past the first 5); 5 were")


def test_the_copy_looks_at_no_more_than_ten_times_its_cap(tmp_path):
    source, dest = tmp_path / "s", tmp_path / "d"
    source.mkdir()
    for i in range(100):
        (source / f"z{i:03d}").write_text("z")
    said = files.copy_plain(source, dest, [], 5, 1 << 20, 1 << 20)
    assert len(list(dest.iterdir())) == 5
    assert said.endswith("(45 past the first 5, and the folder was looked at no further than 50 "
                         "names); 5 were")


def test_a_reason_names_a_few_of_the_files_there_in_one_bounded_pass(tmp_path):
    from autograder.course.grade import first_names

    for name in ("b.txt", "a.txt", "c.py", "notebook.ipynb", "d", "e", "f"):
        (tmp_path / name).write_text("")
    assert first_names(tmp_path) == ["a.txt", "b.txt", "c.py", "d", "e"]
    assert len(first_names(tmp_path, looked_at=3)) == 3
    assert first_names(tmp_path / "gone") == []


def test_a_file_that_cannot_be_written_there_is_counted_not_raised(tmp_path):
    source, dest = tmp_path / "s", tmp_path / "d"
    (source / "x").mkdir(parents=True)
    (source / "x" / "a.txt").write_text("a")
    (source / "b.txt").write_text("b")
    (dest / "b.txt").mkdir(parents=True)  # a folder where the file would go
    said = files.copy_plain(source, dest, [], 5, 1 << 20, 1 << 20)
    assert (dest / "x" / "a.txt").read_text() == "a"
    assert said == ("1 of the other files handed in were not copied beside the graded notebook "
                    "(1 that could not be written); 1 were")


# --- the one copier: grade's other files and serve's staging ---------------------------------


def _copy_tree(source, dest, **caps):
    top = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return files.copy_tree(top, dest, **{"max_files": 100, "max_bytes": 1 << 20,
                                             "max_file_bytes": 1 << 20, "max_names": 1000,
                                             **caps})
    finally:
        os.close(top)


def test_a_copied_file_keeps_its_permission_bits_never_set_user_id(tmp_path):
    source, dest = tmp_path / "s", tmp_path / "d"
    source.mkdir()
    (source / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(source / "run.sh", 0o4755)
    files.copy_plain(source, dest, [], 5, 1 << 20, 1 << 20)
    assert (dest / "run.sh").stat().st_mode & 0o7777 == 0o755


def test_a_folder_link_is_not_followed_and_deep_folders_are_said(tmp_path):
    source, dest, secret = tmp_path / "s", tmp_path / "d", tmp_path / "secret"
    secret.mkdir()
    (secret / "shadow").write_text("x")
    deep = source.joinpath(*[f"d{i}" for i in range(files.MAX_COPY_DEPTH + 3)])
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("b")
    (source / "top.txt").write_text("t")
    (source / "away").symlink_to(secret, target_is_directory=True)
    said = files.copy_plain(source, dest, [], 5, 1 << 20, 1 << 20)
    assert (dest / "top.txt").read_text() == "t"
    assert not (dest / "away").exists() and not list(dest.rglob("shadow"))
    assert not list(dest.rglob("bottom.txt"))
    assert said == ("0 of the other files handed in were not copied beside the graded notebook "
                    f"(1 folders more than {files.MAX_COPY_DEPTH} down); 1 were")


def test_staging_copies_notebooks_within_its_depth_and_says_when_they_last_changed(tmp_path):
    source, dest = tmp_path / "s", tmp_path / "d"
    (source / "a" / "b").mkdir(parents=True)
    (source / "backward.ipynb").write_text("{}")
    (source / "a" / "b" / "data.txt").write_text("d")
    copied = _copy_tree(source, dest, max_depth=1)
    assert (dest / "backward.ipynb").read_text() == "{}"
    assert not (dest / "a" / "b").exists() and copied.too_deep == 1
    assert copied.latest >= (source / "backward.ipynb").stat().st_ctime
    assert copied.latest >= (source / "a").stat().st_ctime
