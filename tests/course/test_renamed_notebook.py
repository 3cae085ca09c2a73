"""A renamed notebook (Jupyter's `backward-Copy1.ipynb`, a student's `mine.ipynb`): one rule in
both routes (`autograder.course.gradescope.renamed`). `autograder grade` (and `serve`, which
grades through it) and Gradescope give it 0, and the student reads the same one line: which
notebook was handed in, and to rename it back to `backward.ipynb`; never the folder's other
files (nbgrader's `submission_secret.txt`, `timestamp.txt`) or the course's paths.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from autograder.course import gradescope, samples
from tests.conftest import CORRECT, run_cli

pytestmark = [pytest.mark.sandbox]

#: student -> the names of the notebooks handed in (the answers in each)
HANDED_IN = {"copier": ["backward-Copy1.ipynb"], "renamer": ["mine.ipynb"],
             "twice": ["backward-Copy1.ipynb", "backward-Copy2.ipynb"]}
SAID = {"copier": "no backward.ipynb in your hand-in, only backward-Copy1.ipynb: rename it back "
                  "to backward.ipynb and submit it again",
        "renamer": "no backward.ipynb in your hand-in, only mine.ipynb: rename it back to "
                   "backward.ipynb and submit it again",
        "twice": "no backward.ipynb in your hand-in, only backward-Copy1.ipynb and "
                 "backward-Copy2.ipynb: rename the one with your answers back to backward.ipynb "
                 "and submit it again"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """A course where each student of HANDED_IN handed in the answers under other names, as
    nbgrader collects a hand-in (its secret and timestamp beside it), graded by `autograder
    grade`."""
    course = tmp_path_factory.mktemp("renamed") / "course"
    done = run_cli("release", "--course", str(course), "--assignment", "backward")
    assert done.returncode == 0, done.stderr
    released = json.loads((course / "release" / "backward" / "backward.ipynb").read_text())
    for student, names in HANDED_IN.items():
        folder = course / "submitted" / student / "backward"
        for name in names:
            samples.write(samples.fill(released, CORRECT), folder / name)
        (folder / "timestamp.txt").write_text("2026-01-10 11:00:00.000000 UTC")
        (folder / "submission_secret.txt").write_text("0123456789abcdef")
    done = run_cli("grade", "--course", str(course), "--assignment", "backward", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return course


def page_text(path: Path) -> str:
    body = re.sub(r"<style>.*?</style>", " ", path.read_text(), flags=re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()))


@pytest.mark.parametrize("student", sorted(HANDED_IN))
def test_grade_gives_a_renamed_notebook_0_and_the_student_reads_to_rename_it_back(graded,
                                                                                 student):
    page = graded / "feedback" / student / "backward" / "backward.html"
    text = page_text(page)
    assert "Score: 0 / 10" in text, text[:600]
    assert SAID[student] in text, text
    for instructors_words in ("submission_secret", "timestamp.txt", "submitted/"):
        assert instructors_words not in text, (instructors_words, text)


@pytest.mark.parametrize("student", sorted(HANDED_IN))
def test_gradescope_says_the_same_line_for_the_same_hand_in(tmp_path, released, student):
    folder = tmp_path / "submission"
    for name in HANDED_IN[student]:
        samples.write(samples.fill(released, CORRECT), folder / name)
    out = tmp_path / "results.json"
    assert gradescope.main([str(folder), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    assert data["score"] == 0.0, data
    assert data["output"] == f"Not graded: {SAID[student]}", data["output"]
    assert [t["output"] for t in data["tests"]] == [SAID[student]]
    # without the assignment's id (a course that grades any lesson), the same
    assert gradescope.main([str(folder), str(out)]) == 0
    assert json.loads(out.read_text())["output"] == f"Not graded: {SAID[student]}"


def test_named_as_the_lessons_the_same_answers_get_full_marks(tmp_path, released):
    # the rule is the name only: the same notebook, named back, is graded as usual
    folder = tmp_path / "submission"
    samples.write(samples.fill(released, CORRECT), folder / "backward.ipynb")
    out = tmp_path / "results.json"
    assert gradescope.main([str(folder), str(out), "backward"]) == 0
    assert json.loads(out.read_text())["score"] == 10.0
