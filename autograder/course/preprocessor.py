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

import hashlib
import json

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer

from .. import notebook, spec
from ..engine import grade_submission, solutions_path, source_notebook
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

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        report = self.report
        if report is None:
            if self.require_isolation:
                from ..sandbox.limits import require_isolation

                require_isolation()  # IsolationMissing: nbgrader records the notebook as failed
            points = gradebook_points(info["db_url"], info["notebook"], info["assignment"])
            report = grade_submission(plain(nb), points, student_seed(self.seed, info["student"]),
                                      str(solutions_path() or "") or None, True, source_notebook())
        for note in report.notes:
            if not for_students(note):
                self.log.info("%s: %s", info["student"], note)
        write_results(nb, report)
        return nb, resources


def plain(nb) -> dict:
    """A notebook as plain JSON data (what crosses to a worker or the sandbox)."""
    return json.loads(nbformat.writes(nb) if isinstance(nb, nbformat.NotebookNode) else json.dumps(nb))


def student_seed(course_seed: int, student: str) -> int:
    """The seed of a student's inputs: fixed for a course and student, unknown to the student."""
    digest = hashlib.blake2b(f"{course_seed}:{student}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def gradebook_points(db_url: str, notebook_id: str = spec.NOTEBOOK_NAME.removesuffix(".ipynb"),
                     assignment_id: str = spec.ASSIGNMENT_ID, course_id: str = "default_course",
                     ) -> dict[str, float]:
    """Points per target as the gradebook holds them (never as the student's notebook says)."""
    with Gradebook(db_url, course_id) as gb:
        cells = gb.find_notebook(notebook_id, assignment_id).grade_cells
        by_name = {cell.name: float(cell.max_score) for cell in cells}
    return {t: by_name[spec.grade_cell_id(t)] for t in spec.TARGETS if spec.grade_cell_id(t) in by_name}


#: Notes that only the instructor reads (the jail's layers): never in a student's notebook or page.
INSTRUCTOR_ONLY = ("sandbox:",)
#: The id of the notes cell at the top of a graded notebook (nbformat 4.5 cells have ids).
NOTES_CELL_ID = "autograder-notes"


def for_students(note: str) -> bool:
    return not note.startswith(INSTRUCTOR_ONLY)


def write_results(nb, report: Report) -> None:
    """Each grade cell `check_<target>` shows the target's report and, last, its score (tagged
    `{"autograder": "score"}`: what nbgrader reads, and feedback pages leave out). The notes a
    student may read, on the whole notebook, go in a markdown cell at the top."""
    for cell in nb.cells:
        if not notebook.is_grade_cell(cell) or cell.cell_type != "code":
            continue
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        target = next((t for t in spec.TARGETS if spec.grade_cell_id(t) == grade_id), None)
        if target is None:
            continue
        got, _ = report.target_score(target)
        cell.execution_count = spec.TARGETS.index(target) + 1
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=report.target_text(target) + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(got))},
                                   metadata={"autograder": "score"},
                                   execution_count=cell.execution_count),
        ]
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
