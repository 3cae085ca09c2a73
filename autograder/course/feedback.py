"""Feedback pages: nbgrader's own `generate_feedback` for every graded notebook.

A page shows the student's notebook with each grade cell's output (our report for its target,
never the hidden inputs: the report holds messages, not inputs) and the scores in the gradebook,
manual ones included. A submission that could not be graded gets a short page with the reason.
"""

from __future__ import annotations

import html
from pathlib import Path

from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from .. import spec


def page(course: Path, student: str) -> Path:
    return course / "feedback" / student / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME.replace(".ipynb", ".html")


def generate(course: Path, cfg: Config, outcomes: list) -> dict[str, Path]:
    """Write each student's page; return the pages by student."""
    from .grade import quiet_log

    graded = [o.student for o in outcomes if o.reason is None]
    if graded:
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id = spec.ASSIGNMENT_ID
        coursedir.student_id = graded[0] if len(graded) == 1 else "*"
        app = GenerateFeedback(coursedir=coursedir, config=cfg, log=quiet_log())
        extra = Config()
        extra.HTMLExporter.template_name = "feedback"
        app.update_config(extra)
        app.force = True
        try:
            app.start()
        except Exception:  # noqa: BLE001 - nbgrader raises once at the end; the others are written
            pass
    for o in outcomes:
        if o.reason is not None:
            write_unusable_page(page(course, o.student), o.reason, o.max_score)
    return {o.student: page(course, o.student) for o in outcomes if page(course, o.student).is_file()}


def write_unusable_page(path: Path, reason: str, max_score: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Feedback: "
        f"{spec.ASSIGNMENT_ID}</title></head>\n<body>\n<h1>Feedback: {spec.ASSIGNMENT_ID}</h1>\n"
        f"<p><strong>Score: 0 / {max_score:g}</strong>: your {spec.NOTEBOOK_NAME} could not be "
        f"graded.</p>\n<p>Why: {html.escape(reason)}</p>\n<p>Run <code>autograder check "
        f"{spec.NOTEBOOK_NAME}</code> on your notebook before you submit it again.</p>\n"
        "</body></html>\n")
