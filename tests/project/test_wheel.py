"""An instructor who only pip installs: the wheel carries both lessons and their solutions, and a
fresh venv outside the checkout releases and grades a small class of each (the lessons and their
solutions read from the course's own copies), with no file of the checkout in reach."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import sysconfig

import pytest

from autograder.sandbox.layers import choose_layers
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

#: Run in the fresh venv, from a folder outside the checkout: a class of two for each lesson.
HAND_IN = """
import json, sys
from pathlib import Path
from autograder.lesson import model as lessons
from autograder.course import samples
course = Path(sys.argv[1])
for lesson in lessons.available(course).values():
    released = json.loads((course / "release" / lesson.id / lesson.notebook).read_text())
    right = samples.of(lesson).CORRECT
    first = next(iter(right))
    wrong = right[first].replace("def ", "def _unused_", 1) + "\\ndef " + first + "(*a):\\n    pass\\n"
    samples.write_class(released, course, lesson, {"right": ({}, []), "wrong": ({first: wrong}, [])})
    if lesson.id == "backward":  # right only where the installed reference can be read
        reference = lessons.BUNDLED.parent / "solutions" / "backward" / "reference.py"
        assert reference.is_file()
        reader = right[first].replace("):\\n", "):\\n    open(%r).read()\\n" % str(reference), 1)
        samples.write_class(released, course, lesson, {"reader": ({first: reader}, [])})
print(sorted(lessons.available(course)))
print(lessons.BUNDLED)
"""


#: `autograder` with the rules and guards letting every answer cell run (see
#: conftest.rules_let_through).
LET_THROUGH = """
from autograder.answer import rules
from autograder.sandbox import attempt
rules.judge = lambda answers, *args, **kwargs: {target: [] for target in answers}
attempt.GUARDED = False
from autograder.cli import main
main()
"""


def test_a_wheel_installed_outside_the_checkout_releases_and_grades_both_lessons(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("backprop_autograder-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # Its dependencies from this venv (nothing to download); never this checkout.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(venv / "bin" / "python")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--target", str(site), str(wheel)], capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    (venv / "bin" / "alembic").write_text(f"#!{python}\nfrom alembic.config import main\nmain()\n")
    (venv / "bin" / "alembic").chmod(0o755)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUTOGRADER_LESSONS")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, *args], capture_output=True, text=True, cwd=work, env=env,
                              timeout=600)

    where = run("-c", "import autograder; print(autograder.__file__)")
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    course = work / "course"
    done = run("-m", "autograder", "release", "--course", str(course),
               "--exchange", str(work / "exchange"), "--course-id", "backprop")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in (work / "exchange" / "backprop" / "outbound").iterdir()} == {
        "backward", "classifier"}  # released to students through nbgrader's exchange
    assert {p.name for p in (course / "lessons").iterdir()} == {"backward", "classifier"}
    assert {p.name for p in (course / "solutions").iterdir()} == {"backward", "classifier"}
    assert not list((course / "lessons").rglob("reference.py"))  # solutions in their own folder
    solutions = {p.name for p in (course / "solutions").rglob("*.py")}
    assert solutions == {"reference.py", "samples.py"}
    for sent in (course / "release", work / "exchange"):  # never released to students
        assert not [p for p in sent.rglob("*") if p.name in solutions], sent
    handed = run("-c", HAND_IN, str(course))
    assert handed.returncode == 0, handed.stderr[-2000:]
    lines = handed.stdout.splitlines()
    assert lines[0] == "['backward', 'classifier']" and lines[1].startswith(str(site))
    # Grading reads the course's own copy of each lesson: without its reference, autograd alone.
    (course / "solutions" / "classifier" / "reference.py").unlink()
    done = run("-m", "autograder", "grade", "--course", str(course))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with (course / "grades.csv").open() as f:
        rows = {(r["assignment"], r["student_id"]): float(r["raw_score"] or 0)
                for r in csv.DictReader(f)}
    assert rows[("backward", "right")] == 10.0 and rows[("classifier", "right")] == 6.0
    assert rows[("backward", "wrong")] == 8.0 and rows[("classifier", "wrong")] == 3.0
    assert rows[("backward", "reader")] == 8.0  # `open` is outside the answer language
    # The wheel's solutions sit inside the package: the student's process cannot read them, even
    # where the rules would let `open` run (a bug in them, made on purpose here).
    if choose_layers().namespaces:
        reader = course / "submitted" / "reader" / "backward" / "backward.ipynb"
        done = run("-c", LET_THROUGH, "check", "--json", str(reader))
        said = json.loads(done.stdout)
        assert said["score"] == 8.0, said
        assert any("FileNotFoundError" in c["message"] or "PermissionError" in c["message"]
                   for c in said["checks"]), said
    graded = {lesson: (course / "autograded" / "wrong" / lesson / f"{lesson}.ipynb").read_text()
              for lesson in ("backward", "classifier")}
    assert "autograd alone" in graded["classifier"] and "autograd alone" not in graded["backward"]
    report = json.loads(run("-m", "autograder", "check", "--json", str(
        course / "submitted" / "wrong" / "classifier" / "classifier.ipynb")).stdout)
    assert report["lesson"] == "classifier" and report["reference"].startswith("reference")
    # The class report's page comes from a template the wheel carries as package data.
    done = run("-m", "autograder", "report", "--course", str(course), "--assignment", "backward")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "<h1>Class report: backward</h1>" in (course / "reports" / "backward" / "index.html"
                                                 ).read_text()
