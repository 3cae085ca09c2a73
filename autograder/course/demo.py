"""`autograder demo [DIR]`: the whole story on a sample class, in one command.

Release the lessons into an nbgrader course, hand in each lesson's sample class (right answers
written differently, typical mistakes, a cheater, a broken file), grade it with nbgrader and the
isolated engine, print the class table and where the feedback pages are, then
write each lesson's class report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.console import Console

from ..lesson import model as lessons
from . import classreport, samples
from .grade import GRADER_FAILED, grade_course
from .release import release
from .show import print_class, progress_bar


def demo(course: str | Path, console: Console, workers: int | None = None) -> int:
    course = Path(course).resolve()
    # A fresh class each time: the demo shows a first grading, not a regrade of old files.
    for folder in ("submitted", "autograded", "feedback", "gradescope", "reports"):
        shutil.rmtree(course / folder, ignore_errors=True)
    for released in release(course):
        lesson = lessons.find(released.parent.name, course)
        console.print(f"released with nbgrader: {released}", highlight=False)
        students = samples.write_class(json.loads(released.read_text()), course, lesson)
        console.print(f"a sample class of {len(students)} handed in for {lesson.id}: "
                      f"{course / 'submitted'}", highlight=False)
    with progress_bar(console) as on_progress:
        outcomes = grade_course(course, workers=workers, on_progress=on_progress,
                                gradescope=True)  # the whole story: Gradescope's files too
    print_class(outcomes, course, console)
    for assignment in dict.fromkeys(o.assignment for o in outcomes):
        console.print()
        classreport.print_summary(classreport.write_report(course, assignment), console)
    console.print(f"\nformgrader: cd {course} && jupyter lab, then Nbgrader > Formgrader (or open "
                  "/formgrader on that server); also: nbgrader export", highlight=False,
                  soft_wrap=True)
    # A sample the grader failed on is the grader's (or its lesson's) bug, never the class's:
    # the whole story above, then one line and a failing exit (`make demo` stops on it).
    failed = [f"{o.assignment}/{o.student}" for o in outcomes
              if (o.reason or "").startswith(GRADER_FAILED)]
    if failed:
        Console(stderr=True).print(f"autograder: {GRADER_FAILED} on {', '.join(failed)}: see "
                                   "the table above", highlight=False, markup=False,
                                   soft_wrap=True)
        return 1
    return 0
