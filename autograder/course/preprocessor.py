"""`IsolatedCheck`: the nbgrader preprocessor that takes the place of nbgrader's in-kernel `Execute`.

In `Autograde.autograde_preprocessors` (see `release.CONFIG`) it receives the notebook nbgrader
has just sanitized (outputs cleared, ids deduplicated, test cells and points restored from the
gradebook), grades it with our engine (the student's code runs in its own process, never in a
Jupyter kernel), and writes each grade cell's outputs: our report for its target, then an
`execute_result` holding the score, which nbgrader's `determine_grade` reads as partial credit
(feedback pages leave it out: `feedback.ReportAlone`). The notes on the whole notebook go in a
cell of their own at the top, except the sandbox's, which only the instructor's log gets.
`SaveAutoGrades` and the rest then run as stock, so stock `nbgrader autograde` and
`autograder grade` record the same scores.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Integer

from ..answer import notebook
from ..engine import grade_submission, source_notebook
from ..lesson import model as lessons
from ..lesson import resolve
from ..lesson.model import Lesson
from ..present import picture
from ..present.report import Report, for_students


class IsolatedCheck(NbGraderPreprocessor):
    """Grade the sanitized notebook with the isolated engine; write each grade cell's result."""

    seed = Integer(0, help="The course's secret seed: each student's inputs are drawn from it "
                           "and the student id, so a regrade repeats them.").tag(config=True)
    require_isolation = Bool(False, help="Refuse to grade where the sandbox's namespaces are not "
                                         "available (as --require-isolation).").tag(config=True)

    #: The report, where `autograder grade` has graded the notebook already, in parallel (see
    #: record.py); stock `nbgrader autograde` grades it here.
    report: Report | None = None

    #: The lesson graded, where `autograder grade` set it.
    lesson: Lesson | None = None

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        report, lesson = self.report, self.lesson
        if report is None:
            try:  # stock `nbgrader autograde`, run in the course folder
                lesson = lessons.find(info["assignment"], course=Path(os.getcwd()))
            except lessons.LessonError:
                # Not one of our lessons: a course's other homework runs as stock nbgrader's.
                return Execute(parent=self.parent, config=self.config).preprocess(nb, resources)
            if self.require_isolation:
                from ..sandbox.layers import require_isolation

                require_isolation()  # IsolationMissing: nbgrader records the notebook as failed
            from .config import hide_course

            hide_course(self.config)  # nbgrader read the course's configuration, not us
            points = gradebook_points(lesson, info["db_url"])
            report = grade_submission(plain(nb), str(lesson.folder), points,
                                      resolve.seed(lesson, "grade", course_seed=self.seed,
                                                   student=info["student"]),
                                      True, source_notebook(lesson))
        for note in report.notes:
            if not for_students(note):
                self.log.info("%s: %s", info["student"], note)
        write_results(nb, report, lesson)
        return nb, resources


def plain(nb) -> dict:
    """A notebook as plain JSON data (what crosses to a worker or the sandbox)."""
    return json.loads(nbformat.writes(nb) if isinstance(nb, nbformat.NotebookNode) else json.dumps(nb))


def gradebook_points(lesson: Lesson, db_url: str, course_id: str = "default_course",
                     ) -> dict[str, float]:
    """Points per target as the gradebook holds them (never as the student's notebook says),
    through the one resolver."""
    with Gradebook(db_url, course_id) as gb:
        cells = gb.find_notebook(lesson.notebook_id, lesson.id).grade_cells
        by_name = {cell.name: float(cell.max_score) for cell in cells}
    held = {t.name: by_name[t.grade_cell] for t in lesson.targets if t.grade_cell in by_name}
    return resolve.points(lesson, gradebook=held)


#: The id of the notes cell at the top of a graded notebook (nbformat 4.5 cells have ids).
NOTES_CELL_ID = "autograder-notes"


def write_results(nb, report: Report, lesson: Lesson) -> None:
    """Each grade cell `check_<target>` shows the target's report, grouped (`graded_output`), and,
    last, its score (tagged `{"autograder": "score"}`: what nbgrader reads, and feedback pages
    leave out). The notes that say something about this student's code (`notes_for_student`), on
    the whole notebook, go in a markdown cell at the top."""
    for cell in nb.cells:
        if not notebook.is_grade_cell(cell) or cell.cell_type != "code":
            continue
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        target = next((t.name for t in lesson.targets if t.grade_cell == grade_id), None)
        if target is None:
            continue
        got, _ = report.target_score(target)
        cell.execution_count = lesson.names.index(target) + 1
        # The feedback page's summary names the target where stock says "Test cell".
        cell.metadata.setdefault("autograder", {})["target"] = target
        cell.outputs = [
            graded_output(report, target),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(got))},
                                   metadata={"autograder": "score"},
                                   execution_count=cell.execution_count),
        ]
        if drawn := picture.feedback_data(report, target):  # where a wrong .g is off, drawn
            alt = {"image/png": {"alt": drawn["text/plain"].strip("<>")}}  # said, for any reader
            cell.outputs.insert(1, nbformat.v4.new_output("display_data", data=drawn,
                                                          metadata=alt))
    notes = notes_for_student(report)
    if notes:
        nb.cells.insert(0, notes_cell(nb, "The grader's notes on the whole notebook", notes))


def grouped_lines(report: Report, target: str
                  ) -> tuple[str, list[tuple[str, str, str]], list[tuple[str, str]], str]:
    """One target as a student reads it everywhere: the head (target and points), a line per
    distinct mistake as (the checks it covers, its message, its codes), the checks that wait for
    another as (what they wait for, the checks), and the checks that pass (`Report.grouped` and
    `Report.waiting`, as the self-check shows them)."""
    got, out_of = report.target_score(target)
    failed, passing = report.grouped(target)[:2]
    lines = [(", ".join(names), message, ", ".join(codes)) for names, message, codes in failed]
    waiting = [(words, ", ".join(names)) for words, names in report.waiting(target)]
    return f"{target}: {got:g} / {out_of:g}", lines, waiting, ", ".join(passing)


def graded_output(report: Report, target: str) -> nbformat.NotebookNode:
    """The graded cell's output, in text and HTML: what formgrader and the feedback page show.
    The HTML wraps every line (nothing runs off the page); the text wraps at 88 columns, each
    mistake's codes on a line of their own."""
    import textwrap

    from .pages import render

    head, failed, waiting, passing = grouped_lines(report, target)
    # The self-check's lines (`Report.student_text`), under a head with the points; what
    # passes is said here even where nothing fails.
    text = [head, *report.student_text(target).splitlines()[1:]]
    if passing and not failed and not waiting:
        text += textwrap.wrap(f"pass: {passing}", 88, initial_indent="  ",
                              subsequent_indent="        ", break_on_hyphens=False)
    html = render("graded_cell.html.j2", head=head, failed=failed, waiting=waiting,
                  passing=passing)
    return nbformat.v4.new_output("display_data", data={"text/plain": "\n".join(text),
                                                        "text/html": html},
                                  metadata={"autograder": "report"})


def notes_for_student(report: Report) -> list[str]:
    """The notes on the whole notebook that say something about this student's code: never the
    sandbox's or the reference's; the devices line only where a device failed for a device
    reason (the CPU passes and a GPU check fails, or a `wrong_device` mistake), in plain words
    (no stand-in backend)."""
    from ..judge.compare import STAND_IN_DEVICES
    from ..judge.devices import describe

    device_line = describe(report.devices) if report.devices else None
    shown = []
    for note in report.notes:
        if not for_students(note):
            continue
        if note == device_line or (device_line is None and note.startswith("CPU: ")):
            if not device_failed(report):
                continue
            backends = "|".join(map(re.escape, STAND_IN_DEVICES))
            note = re.sub(rf" \((?:{backends})\)", "", note)
        shown.append(note)
    return shown


def device_failed(report: Report) -> bool:
    """Whether a check failed for a device reason: code that passes on the CPU and fails on a GPU
    (real or stood in for), or that mixes devices."""
    if any(code.endswith(".wrong_device") for c in report.checks for code in c.mistakes):
        return True
    lanes = report.devices or {}
    return lanes.get("cpu") == "passed" and "failed" in (lanes.get("gpu-ready"), lanes.get("cuda"))


def notes_cell(nb, title: str, lines: list[str]) -> nbformat.NotebookNode:
    """A markdown cell: a bold title, then `lines`, each escaped (shown as written, never read as
    markdown or HTML: a note may quote a student's line) and wrapped at the page's width. Its id
    is the same on every run."""
    style = ("font-family: monospace; white-space: pre-wrap; overflow-wrap: anywhere; "
             "word-break: break-word; margin: 0.2em 0 0 1.5em;")
    body = "\n".join(f'<div class="autograder-note" style="{style}">'
                     f'{html.escape(" ".join(line.split()))}</div>' for line in lines)
    cell = nbformat.NotebookNode(cell_type="markdown", metadata={"autograder": "notes"},
                                 source=f"**{title}**\n\n<div>\n{body}\n</div>\n")
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):
        taken = {c.get("id") for c in nb.cells}
        cell.id = next(f"{NOTES_CELL_ID}{n or ''}" for n in range(len(taken) + 1)
                       if f"{NOTES_CELL_ID}{n or ''}" not in taken)
    return cell
