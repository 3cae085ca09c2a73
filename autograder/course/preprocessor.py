"""`IsolatedCheck`: the nbgrader preprocessor that takes the place of nbgrader's in-kernel `Execute`.

In `Autograde.autograde_preprocessors` (see `release.CONFIG`) it receives the notebook nbgrader
has just sanitized (outputs cleared, ids deduplicated, test cells and points restored from the
gradebook), grades it with our engine (the student's code runs in its own process, never in a
Jupyter kernel), and writes each grade cell's outputs: our report for its target, then an
`execute_result` holding the score, which nbgrader's `determine_grade` reads as partial credit.
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
from .. import notebook, resolve
from ..engine import grade_submission, source_notebook
from ..lesson import Lesson
from ..report import Report


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
                from ..sandbox.limits import require_isolation

                require_isolation()  # IsolationMissing: nbgrader records the notebook as failed
            points = gradebook_points(lesson, info["db_url"])
            reference = lesson.reference_path
            report = grade_submission(plain(nb), str(lesson.folder), points,
                                      resolve.seed(lesson, "grade", course_seed=self.seed,
                                                   student=info["student"]),
                                      str(reference) if reference else None, True,
                                      source_notebook(lesson))
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
        cells = gb.find_notebook(lesson.notebook.removesuffix(".ipynb"), lesson.id).grade_cells
        by_name = {cell.name: float(cell.max_score) for cell in cells}
    held = {t.name: by_name[t.grade_cell] for t in lesson.targets if t.grade_cell in by_name}
    return resolve.points(lesson, gradebook=held)


def write_results(nb, report: Report, lesson: Lesson) -> None:
    """Each grade cell `check_<target>` shows the target's report and, last, its score."""
    first = True
    for cell in nb.cells:
        if not notebook.is_grade_cell(cell) or cell.cell_type != "code":
            continue
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        target = next((t.name for t in lesson.targets if t.grade_cell == grade_id), None)
        if target is None:
            continue
        text = report.target_text(target)
        if first and report.notes:
            text += "".join(f"\nnote: {n}" for n in report.notes)
        first = False
        got, _ = report.target_score(target)
        cell.execution_count = lesson.names.index(target) + 1
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=text + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(got))},
                                   execution_count=cell.execution_count),
        ]
