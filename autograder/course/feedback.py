"""Feedback pages: nbgrader's own `generate_feedback` for every graded notebook.

A page shows the student's notebook with each grade cell's output (our report for its target,
never the hidden inputs: the report holds messages, not inputs) and the scores in the gradebook,
manual ones included. A submission that could not be graded gets a short page with the reason.
"""

from __future__ import annotations

import glob
import html
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from traitlets import List, Unicode
from traitlets.config import Config

from .. import spec
from .record import quiet_log


def page(course: Path, student: str) -> Path:
    return course / "feedback" / student / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME.replace(".ipynb", ".html")


#: Fewer students than this per process, and the feedback is written here: a process costs a
#: fresh Python and nbgrader (about 1.5 s), a page about 0.17 s.
PER_PROCESS = 10


def generate(course: Path, cfg: Config, outcomes: list, workers: int = 1) -> dict[str, Path]:
    """Write each student's page, in up to `workers` processes; return the pages by student.

    nbgrader's feedback only reads the gradebook, so several processes may write pages at once
    (the gradebook's writes stay in the grading process).
    """
    graded = [o.student for o in outcomes if o.reason is None]
    processes = max(1, min(workers, len(graded) // PER_PROCESS))
    if processes > 1:
        chunks = [graded[i::processes] for i in range(processes)]
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            list(pool.map(generate_for, [course] * processes, [cfg] * processes, chunks))
    elif graded:
        generate_for(course, cfg, graded)
    for o in outcomes:
        if o.reason is not None:
            write_unusable_page(page(course, o.student), o.reason, o.max_score)
    return {o.student: page(course, o.student) for o in outcomes if page(course, o.student).is_file()}


class FeedbackFor(GenerateFeedback):
    """nbgrader's `generate_feedback` for the students listed, with one exporter for them all (its
    templates compile once, as in stock `nbgrader generate_feedback` for a whole class)."""

    students = List(Unicode())

    def init_notebooks(self) -> None:
        self.assignments = {}
        for student in self.students:
            folder = self._format_source(self.coursedir.assignment_id, student)
            found = glob.glob(os.path.join(glob.escape(folder), f"{self.coursedir.notebook_id}.ipynb"))
            if found:
                self.assignments[folder] = found


def generate_for(course: Path, cfg: Config, students: list[str]) -> None:
    """nbgrader's generate_feedback for each of `students` (run in this process)."""
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = spec.ASSIGNMENT_ID
    app = FeedbackFor(coursedir=coursedir, config=cfg, log=quiet_log(), students=students)
    extra = Config()
    extra.HTMLExporter.template_name = "feedback"
    app.update_config(extra)
    app.force = True
    try:
        app.start()
    except Exception:  # noqa: BLE001 - nbgrader logs and raises after the others: those pages stay
        pass


def write_unusable_page(path: Path, reason: str, max_score: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Feedback: "
        f"{spec.ASSIGNMENT_ID}</title></head>\n<body>\n<h1>Feedback: {spec.ASSIGNMENT_ID}</h1>\n"
        f"<p><strong>Score: 0 / {max_score:g}</strong>: your {spec.NOTEBOOK_NAME} could not be "
        f"graded.</p>\n<p>Why: {html.escape(reason)}</p>\n<p>Run <code>autograder check "
        f"{spec.NOTEBOOK_NAME}</code> on your notebook before you submit it again.</p>\n"
        "</body></html>\n")
