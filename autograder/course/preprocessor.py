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

import json
import os
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Integer

from .. import lesson as lessons
from .. import notebook, picture, resolve
from ..engine import grade_submission, source_notebook
from ..lesson import Lesson
from ..report import Report, for_students


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
    """Each grade cell `check_<target>` shows the target's report and, last, its score (tagged
    `{"autograder": "score"}`: what nbgrader reads, and feedback pages leave out). The notes a
    student may read, on the whole notebook, go in a markdown cell at the top."""
    for cell in nb.cells:
        if not notebook.is_grade_cell(cell) or cell.cell_type != "code":
            continue
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        target = next((t.name for t in lesson.targets if t.grade_cell == grade_id), None)
        if target is None:
            continue
        got, _ = report.target_score(target)
        cell.execution_count = lesson.names.index(target) + 1
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=report.target_text(target) + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(got))},
                                   metadata={"autograder": "score"},
                                   execution_count=cell.execution_count),
        ]
        if drawn := picture.feedback_data(report, target):  # where a wrong .g is off, drawn
            cell.outputs.insert(1, nbformat.v4.new_output("display_data", data=drawn))
    notes = [n for n in report.notes if for_students(n)]
    if notes:
        nb.cells.insert(0, notes_cell(nb, "The grader's notes on the whole notebook", notes))


def notes_cell(nb, title: str, lines: list[str]) -> nbformat.NotebookNode:
    """A markdown cell: a bold title, then `lines` as a code block (shown as written, never read
    as markdown or HTML: a note may quote a student's line). Its id is the same on every run."""
    body = "\n".join("    " + " ".join(line.split()) for line in lines)
    cell = nbformat.NotebookNode(cell_type="markdown", metadata={"autograder": "notes"},
                                 source=f"**{title}**\n\n{body}\n")
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):
        taken = {c.get("id") for c in nb.cells}
        cell.id = next(f"{NOTES_CELL_ID}{n or ''}" for n in range(len(taken) + 1)
                       if f"{NOTES_CELL_ID}{n or ''}" not in taken)
    return cell
