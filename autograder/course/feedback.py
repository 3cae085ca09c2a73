"""Feedback pages: nbgrader's own `generate_feedback` for every graded notebook.

A page shows the student's notebook with the grader's notes at the top, each grade cell's report
for its target (never the hidden inputs: the report holds messages, not inputs), without the score
nbgrader reads from the cell (`ReportAlone`: the page's heading and the report say it), and the
scores in the gradebook, manual ones included. A submission that could not be graded gets a short
page, styled as the others, with the reason and the gradebook's score.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from html import escape as html_escape
from multiprocessing import get_context
from pathlib import Path

from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.preprocessors import Preprocessor
from nbconvert.writers import FilesWriter
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from traitlets import List, Unicode, default
from traitlets.config import Config

from ..lesson.model import Lesson
from . import nbgrader_parts
from .offline_math import with_mathml
from .pages import render
from .record import quiet_log


def page(course: Path, student: str, lesson: Lesson) -> Path:
    return course / "feedback" / student / lesson.id / lesson.notebook.replace(".ipynb", ".html")


#: Students per batch handed to a feedback process: each batch compiles nbgrader's templates
#: once, which costs a few pages' writing, then writes its pages.
BATCH = 10
#: Grading workers that one feedback process keeps up with: a feedback process writes pages
#: several times faster than a worker grades notebooks (benchmarks/bench_grade.py measures both).
WORKERS_PER_PROCESS = 8


class Pages:
    """Feedback pages, written while the class is graded: each student is handed over once the
    gradebook holds their scores (`add`), in batches to one process per few workers, which only
    read the gradebook. A class too small to pay for a process (a fresh Python that imports
    nbgrader) gets its pages here, at `finish`; so does a batch whose process died."""

    def __init__(self, course: Path, cfg: Config, lesson: Lesson, class_size: int,
                 workers: int = 1) -> None:
        self.course, self.cfg, self.lesson = course, cfg, lesson
        self.waiting: list[str] = []
        self.here: list[str] = []  # written in this process, at `finish`
        self.written: list = []  # (future, the batch's students)
        self.processes = min(-(-workers // WORKERS_PER_PROCESS), class_size // (2 * BATCH))
        # Started with the first batch: before that, the cores start the warm workers.
        self.pool = None

    def __enter__(self) -> Pages:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:  # stopped early (an error, ^C): what was handed over, no more
            self.pool.shutdown(wait=True, cancel_futures=True)

    def add(self, student: str) -> None:
        self.waiting.append(student)
        if self.processes > 0 and len(self.waiting) >= BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self.waiting = self.waiting, []
        if not batch:
            return
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.processes, mp_context=get_context("spawn"),
                                            initializer=_freeze_at_exit)
        try:
            self.written.append((self.pool.submit(generate_for, self.course, self.cfg,
                                                  self.lesson.id, batch), batch))
        except RuntimeError:  # the pool broke (a process died): these are written here
            self.here += batch

    def finish(self, outcomes: list) -> None:
        """Every page written, the short one for each submission that could not be graded."""
        if self.processes == 0:
            self.here += self.waiting
        else:
            rest = self.waiting
            for i in range(self.processes):  # the last ones shared out: no long tail
                self.waiting = rest[i::self.processes]
                self._hand_over()
            for future, batch in self.written:
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - its process died: the batch is written here
                    self.here += batch
        if self.here:
            try:
                generate_for(self.course, self.cfg, self.lesson.id, self.here)
            finally:
                forget_kept()  # this process lives on (`serve`): nothing is kept in it
        for o in outcomes:
            path = page(self.course, o.student, self.lesson)
            if o.reason is not None:
                write_unusable_page(path, o.reason, o.score, o.max_score, self.lesson)
            if getattr(o, "late", "") and getattr(o, "counted", True) and path.is_file():
                from .serve.pages import add_note

                add_note(path, o.late)  # a late hand-in that counts says so at the top
            if not path.is_file():  # nbgrader's step logs quietly: a page it could not write
                print(f"autograder: the feedback page of {o.student} was not written "
                      f"(nbgrader generate_feedback --student {o.student} says why)",
                      file=sys.stderr)


def _freeze_at_exit() -> None:
    """In a feedback process: its last collection at exit would walk every object nbgrader made,
    while the grader waits for it to end."""
    atexit.register(gc.freeze)


class RememberedHighlight(Highlight2HTML):
    """nbconvert's syntax highlighting, remembered: the lesson's own cells are the same on every
    student's page, so each is highlighted once per batch."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen: dict[tuple, str] = {}

    def __call__(self, source, language=None, metadata=None):
        key = (source, language, (metadata or {}).get("magics_language"))
        if key not in self.seen:
            self.seen[key] = super().__call__(source, language, metadata)
        return self.seen[key]


class ReportAlone(Preprocessor):
    """Each grade cell shows its report alone: the score under it (an `execute_result` that
    nbgrader's `determine_grade` reads, tagged by `preprocessor.write_results`) is left out of
    the page. Configured for stock `generate_feedback` and formgrader by `autograder release`
    (`c.HTMLExporter.preprocessors`)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if o.get("metadata", {}).get("autograder") != "score"]
        return cell, resources


#: What BeautifulSoup's pass in nbconvert's HTML export looks for: images without alternative
#: text, and JupyterLab cells. nbgrader's feedback template has neither of its own, and the
#: grader's pictures carry their alternative text.
_SOUP_TARGETS = re.compile(r"<img(?![^>]*\balt=)|jp-notebook", re.IGNORECASE)


class FeedbackPage(HTMLExporter):
    """nbconvert's HTML export for feedback pages, which a browser shows exactly as stock's.

    Stock parses each page with BeautifulSoup (most of the time a page takes) to give images
    their alternative text and JupyterLab cells a tab stop, then writes the parse back out. A
    page that has neither changes in that pass only in whitespace and how tags are closed, so
    here it is written as rendered; any other page gets the stock pass. Parsed, ours and stock's pages are
    the same (`tests/course/test_course.py`).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.highlighters: dict[str | None, RememberedHighlight] = {}
        self.rendered: dict[tuple, str] = {}

    @pass_context
    def markdown2html(self, context, source):
        """nbconvert's markdown filter, remembered: the lesson's own text is the same on every
        student's page, so each cell is rendered once per batch (what the filter reads from the
        cell and the page is part of what is remembered)."""
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        key = (source, json.dumps(cell.get("attachments", {}), sort_keys=True),
               path if self.embed_images else None)
        if key not in self.rendered:
            self.rendered[key] = super().markdown2html(context, source)
        return self.rendered[key]

    def from_notebook_node(self, nb, resources=None, **kw):
        nb = with_mathml(nb)  # math that renders without network (no CDN's MathJax)
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name", None))
        if lexer not in self.highlighters:
            self.highlighters[lexer] = RememberedHighlight(pygments_lexer=lexer, parent=self)
        # Where the stock pass runs, it takes the highlighter from here. (Set to the same value
        # for each page, it does not make nbconvert build its templates again.)
        self.filters = {**self.filters, "highlight_code": self.highlighters[lexer]}
        html, res = nbgrader_parts.html_without_soup(self, nb, resources,
                                                     self.highlighters[lexer], **kw)
        if _SOUP_TARGETS.search(html):
            html, res = super().from_notebook_node(nb, resources, **kw)
        return readable(html, targets_of(nb)), res


#: What a feedback page adds to nbgrader's styles: every line wraps at the page's width (a long
#: message, a mistake's codes, a student's long line of code), so nothing hides behind a
#: horizontal scroll bar.
WRAP_CSS = """<style>
pre, .highlight pre, div.output_text pre, div.output_area pre, .rendered_html pre {
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; }
div.output_area, div.output_subarea, div.input_area, div.inner_cell { min-width: 0; max-width: 100%; }
div.output_subarea { overflow-x: visible; }
.autograder-report { font-size: 13px; }
</style>"""


def targets_of(nb) -> dict[str, str]:
    """grade id -> target, for each grade cell `preprocessor.write_results` marked."""
    found = {}
    for cell in nb.cells:
        mark = cell.metadata.get("autograder")
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if isinstance(mark, dict) and mark.get("target") and grade_id:
            found[grade_id] = mark["target"]
    return found


def readable(page: str, targets: dict[str, str]) -> str:
    """A feedback page as a student reads it: lines that wrap (`WRAP_CSS`), and nbgrader's summary
    at the top naming each graded target (`targets`: grade id -> target) where stock says "Test
    cell"."""
    for grade_id, target in targets.items():
        page = page.replace(f'<a href="#{grade_id}">Test cell</a>',
                            f'<a href="#{grade_id}">{html_escape(target)}</a>', 1)
    return page.replace("</head>", WRAP_CSS + "\n</head>", 1)


class FeedbackFor(GenerateFeedback):
    """nbgrader's `generate_feedback` for the students listed, with one exporter for them all (its
    templates compile once, as in stock `nbgrader generate_feedback` for a whole class)."""

    students = List(Unicode())
    _made = False  # its writer and exporter (`start`)

    @default("exporter_class")
    def _exporter_class_default(self):
        return FeedbackPage

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        """`BaseConverter.init_assignment`'s copy of the other files (`autograded/` to
        `feedback/`), in one walk: nbgrader's `find_all_files` lists a folder again for each file
        in it."""
        from .. import files
        from .record import MAX_OTHER_BYTES, MAX_OTHER_FILE_BYTES, MAX_OTHER_FILES

        files.copy_plain(Path(self._format_source(assignment_id, student_id)),
                         Path(self._format_dest(assignment_id, student_id)),
                         self.coursedir.ignore, MAX_OTHER_FILES, MAX_OTHER_BYTES,
                         MAX_OTHER_FILE_BYTES)

    def init_notebooks(self) -> None:
        self.assignments = nbgrader_parts.notebooks_of(self, self.students)

    def start(self) -> None:
        """`BaseConverter.start`, its writer and exporter made once for all the batches this
        converter is given (stock makes them again for each start)."""
        self.init_notebooks()
        if not self._made:
            self._made = True
            self.writer = FilesWriter(parent=self, config=self.config)
            self.exporter = self.exporter_class(parent=self, config=self.config)
            for step in self.preprocessors:
                self.exporter.register_preprocessor(step)
        here = os.getcwd()
        os.chdir(self.coursedir.root)
        try:
            self.convert_notebooks()
        finally:
            os.chdir(here)


#: In a feedback process: each lesson's converter and gradebook, kept from batch to batch, so
#: that its exporter (templates compiled, cells already rendered) serves the whole class.
_KEPT: dict[tuple[str, str], tuple[FeedbackFor, Gradebook]] = {}


def generate_for(course: Path, cfg: Config, assignment: str, students: list[str]) -> None:
    """nbgrader's generate_feedback of `assignment` for each of `students` (in this process)."""
    key = (str(course), assignment)
    if key not in _KEPT:
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id = assignment
        app = FeedbackFor(coursedir=coursedir, config=cfg, log=quiet_log())
        extra = nbgrader_parts.validate_once()
        extra.HTMLExporter.template_name = "feedback"
        app.update_config(extra)
        app.force = True
        gradebook = Gradebook(cfg.CourseDirectory.db_url, coursedir.course_id)
        # nbgrader's GetGrades, on this gradebook (a course's own steps as they are)
        app.preprocessors = nbgrader_parts.reading_from(gradebook, app.preprocessors)
        _KEPT[key] = (app, gradebook)
    app, _ = _KEPT[key]
    app.students = students
    try:
        app.start()
    except Exception:  # noqa: BLE001 - nbgrader logs and raises after the others: those stay
        pass


def forget_kept() -> None:
    """Close what `generate_for` kept (the gradebooks), e.g. once a lesson's pages are written."""
    while _KEPT:
        _, gradebook = _KEPT.popitem()[1]
        gradebook.close()


def write_unusable_page(path: Path, reason: str, score: float, max_score: float,
                        lesson: Lesson) -> None:
    """The page of a submission that could not be graded: the reason, and its score as the
    gradebook holds it (0, or the instructor's manual scores: a regrade after a manual score
    writes this page again with that score)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render("not_graded.html.j2", lesson=lesson, reason=reason, score=score,
                           max_score=max_score), encoding="utf-8")
