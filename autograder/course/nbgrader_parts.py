"""Every part of nbgrader 0.9 (and nbconvert 7) that autograder copies, in one place, checked
against the installed versions when it is imported.

Where nbgrader has a public way, autograder uses it; what is here has none: nbgrader's steps and
converters open the gradebook again for each notebook, copy a student's files through links, list
a whole folder for each file, or parse every feedback page a second time. Each part names what it
copies and how it differs. A later nbgrader may change what these parts copy, so another version
is refused, in one line, before anything is graded (`COPIED_FROM`).

- The steps that open the gradebook (each time a new SQLAlchemy engine: every query compiled
  again) use the class's open gradebook (`OnOpenGradebook`), whose commits are the recorder's
  (`OneCommit`): `OverwriteKernelspec` and `OverwriteCells` (sanitize), `SaveAutoGrades` and
  `AssignLatePenalties` (autograde). `step_for(configured, gradebook)` gives the step to run for
  a configured one; a step not listed here (a course's own, or a later nbgrader's) runs as
  configured.
- `CheckCellMetadata` checks each cell against nbgrader's schema compiled once, where
  `jsonschema.validate` checks the schema itself, then compiles it, for every cell.
- `init_autograde_assignment`: `Autograde.init_assignment` on the open gradebook.
- `notebooks_of`: `BaseConverter.init_notebooks` for the students listed.
- `html_without_soup`: `HTMLExporter.from_notebook_node` up to its BeautifulSoup pass.
- `as_from_filename`: the resources nbconvert's `from_filename` gives a notebook read from a file.
"""
# ruff: noqa: E402 - the versions are checked before nbgrader's own modules are imported

from __future__ import annotations

from importlib.metadata import version

#: The versions the parts below were copied from: (distribution, version prefix).
COPIED_FROM = (("nbgrader", "0.9."), ("nbconvert", "7."))


class VersionMismatch(ImportError):
    """The installed nbgrader or nbconvert is not the one these parts were copied from: this
    module cannot be imported (its `name`, as an ImportError's, says which module that is; the
    command line shows the message alone)."""


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Raise `VersionMismatch`, in one line, where an installed version (`installed`, else the
    environment's) is not one `COPIED_FROM` names."""
    for dist, prefix in COPIED_FROM:
        got = (installed or {}).get(dist) or version(dist)
        if not got.startswith(prefix):
            raise VersionMismatch(
                f"autograder's course tools copy parts of {dist} {prefix}x "
                f"(autograder/course/nbgrader_parts.py), and {dist} {got} is installed: "
                f"pip install '{dist}=={prefix}*'", name=__name__)


check_versions()  # before the imports below: a later nbgrader may lack what they name

import glob
import json
import os
import shutil
import traceback
import weakref
from types import SimpleNamespace

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from nbconvert.exporters import TemplateExporter
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.nbgraderformat import (
    SchemaTooNewError,
    SchemaTooOldError,
    ValidationError,
)
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    GetGrades,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from traitlets.config import Config
from traitlets.utils.importstring import import_item

# --- nbgrader's steps on the class's open gradebook (nbgrader/preprocessors/) ---------------------

class OneCommit:
    """A gradebook session whose commits wait for the recorder's: nbgrader commits after every
    row it touches; the recorder commits once per submission, with `commit_now`."""

    def __init__(self, session) -> None:
        self.commit_now = session.commit
        self._session = session

    def commit(self) -> None:
        self._session.flush()

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class OnOpenGradebook:
    """For nbgrader's steps that open a gradebook of their own: the class's instead."""

    open_gradebook: Gradebook | None = None  # the recorder's, set before each notebook

    def _take(self, resources) -> None:
        """What the step's own `preprocess` sets first, the gradebook included."""
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
        self.student_id, self.db_url = info["student"], info["db_url"]
        self.gradebook = self.open_gradebook


class LessonCells:
    """The class's gradebook as nbgrader's OverwriteCells reads it, with the lesson's own cells
    (a source cell's type, lock, checksum and text; a graded cell's points) and its notebook's
    kernelspec read once for the class instead of once per cell of each submission: they are
    the instructor's, written by `release` and the same for every student. Anything else is the
    gradebook's, read as it is."""

    def __init__(self, gradebook: Gradebook) -> None:
        self._gradebook = gradebook
        self._read: dict[tuple, object] = {}

    def __getattr__(self, name: str):
        return getattr(self._gradebook, name)

    def _once(self, key: tuple, read):
        if key not in self._read:
            try:
                self._read[key] = read()
            except MissingEntry as exc:
                self._read[key] = exc
        found = self._read[key]
        if isinstance(found, MissingEntry):
            raise found
        return found

    def find_source_cell(self, name: str, notebook: str, assignment: str):
        def read():
            cell = self._gradebook.find_source_cell(name, notebook, assignment)
            return SimpleNamespace(name=cell.name, cell_type=cell.cell_type, locked=cell.locked,
                                   checksum=cell.checksum, source=cell.source)
        return self._once(("source", name, notebook, assignment), read)

    def find_graded_cell(self, name: str, notebook: str, assignment: str):
        def read():
            cell = self._gradebook.find_graded_cell(name, notebook, assignment)
            return SimpleNamespace(name=cell.name, max_score=cell.max_score)
        return self._once(("graded", name, notebook, assignment), read)

    def kernelspec(self, notebook: str, assignment: str) -> str | None:
        return self._once(("kernelspec", notebook, assignment),
                          lambda: self._gradebook.find_notebook(notebook, assignment).kernelspec)


_LESSON_CELLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lesson_cells(gradebook: Gradebook) -> LessonCells:
    """The `LessonCells` of an open gradebook (one for as long as it is open)."""
    if gradebook not in _LESSON_CELLS:
        _LESSON_CELLS[gradebook] = LessonCells(gradebook)
    return _LESSON_CELLS[gradebook]


class OverwriteKernelspecFrom(OnOpenGradebook, OverwriteKernelspec):
    """nbgrader's OverwriteKernelspec, as its `preprocess` does it, from the class's gradebook."""

    def preprocess(self, nb, resources):
        self._take(resources)
        kernelspec = lesson_cells(self.gradebook).kernelspec(self.notebook_id, self.assignment_id)
        if kernelspec is not None:
            kernelspec = json.loads(kernelspec)
        if kernelspec:
            nb.metadata["kernelspec"] = kernelspec
        return nb, resources


class OverwriteCellsFrom(OnOpenGradebook, OverwriteCells):
    """nbgrader's OverwriteCells (its per-cell logic unchanged) from the class's gradebook."""

    def preprocess(self, nb, resources):
        self._take(resources)
        self.gradebook = lesson_cells(self.gradebook)  # the lesson's cells, read once a class
        nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
        if self.add_missing_cells:
            nb, resources = self.add_missing_grade_cells(nb, resources)
            nb, resources = self.add_missing_task_cells(nb, resources)
        return nb, resources


class SaveAutoGradesInto(OnOpenGradebook, SaveAutoGrades):
    """nbgrader's SaveAutoGrades (its per-cell logic unchanged) into the class's gradebook."""

    def preprocess(self, nb, resources):
        self._take(resources)
        return NbGraderPreprocessor.preprocess(self, nb, resources)


class AssignLatePenaltiesInto(OnOpenGradebook, AssignLatePenalties):
    """nbgrader's AssignLatePenalties, as its `preprocess` does it, into the class's gradebook."""

    def preprocess(self, nb, resources):
        self._take(resources)
        self.init_plugin()
        self.gradebook.db.flush()
        self.gradebook.db.expire_all()  # the scores just saved, as a fresh gradebook would read them
        assignment = self.gradebook.find_submission(self.assignment_id, self.student_id)
        notebook = self.gradebook.find_submission_notebook(self.notebook_id, self.assignment_id,
                                                           self.student_id)
        notebook.late_submission_penalty = None
        if assignment.total_seconds_late > 0:
            penalty = self.plugin_inst.late_submission_penalty(self.student_id, notebook.score,
                                                               assignment.total_seconds_late)
            if penalty is not None:
                notebook.late_submission_penalty = self._check_late_penalty(notebook, penalty)
        return nb, resources


# --- the metadata check, its schema compiled once -------------------------------------------------

class GetGradesFrom(OnOpenGradebook, GetGrades):
    """nbgrader's GetGrades (its per-cell logic unchanged) from a gradebook kept open for a batch
    of feedback pages: stock opens one per page, which also compiles its queries again. Each
    page's reading ends with the page, so that the grader's next write never waits for it."""

    def preprocess(self, nb, resources):
        self._take(resources)
        try:
            nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
            notebook = self.gradebook.find_submission_notebook(
                self.notebook_id, self.assignment_id, self.student_id)
            late_penalty = notebook.late_submission_penalty or 0
            info = resources["nbgrader"]
            info["score"], info["max_score"] = notebook.score - late_penalty, notebook.max_score
            info["late_penalty"] = late_penalty
        finally:
            self.gradebook.db.rollback()
        return nb, resources


def reading_from(gradebook: Gradebook, steps: list) -> list:
    """A converter's configured `steps` with nbgrader's GetGrades made to read `gradebook`, kept
    open by the caller; each is still made by the exporter, with its configuration."""
    bound = type("GetGradesOnOpen", (GetGradesFrom,), {"open_gradebook": gradebook})
    return [bound if (import_item(s) if isinstance(s, str) else s) is GetGrades else s
            for s in steps]


class _SchemaCompiledOnce(BaseMetadataValidator):
    """BaseMetadataValidator.validate_cell: the same checks and the same error (jsonschema's best
    match) from a validator compiled once."""

    def validate_cell(self, cell) -> None:
        if "nbgrader" not in cell.metadata:
            return
        version = cell.metadata["nbgrader"].get("schema_version", 0)
        if version < self.schema_version:
            raise SchemaTooOldError(f"Outdated schema version: {version} (expected "
                                    f"{self.schema_version})", version, self.schema_version)
        if version > self.schema_version:
            raise SchemaTooNewError(f"Schema version is too new: {version} (expected "
                                    f"{self.schema_version})", version, self.schema_version)
        if "compiled" not in self.__dict__:
            cls = validator_for(self.schema)
            cls.check_schema(self.schema)
            self.compiled = cls(self.schema)
        error = best_match(self.compiled.iter_errors(cell.metadata["nbgrader"]))
        if error is not None:
            raise error


class _MetadataValidator(MetadataValidatorV3, _SchemaCompiledOnce):
    """nbgrader's metadata validator; its base's schema check is `_SchemaCompiledOnce`'s."""


_VALIDATOR: list[_MetadataValidator] = []


class CheckCellMetadataOnce(CheckCellMetadata):
    """nbgrader's CheckCellMetadata, as its `preprocess` does it, with one validator for the
    class (nbgrader's reads its three schema files again for each notebook)."""

    def preprocess(self, nb, resources):
        if not _VALIDATOR:
            _VALIDATOR.append(_MetadataValidator())
        try:
            _VALIDATOR[0].validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            msg = "Notebook failed to validate; the nbgrader metadata may be corrupted."
            self.log.error(msg)
            raise ValidationError(msg) from None
        return nb, resources


_ONCE = {OverwriteKernelspec: OverwriteKernelspecFrom, OverwriteCells: OverwriteCellsFrom,
         SaveAutoGrades: SaveAutoGradesInto, AssignLatePenalties: AssignLatePenaltiesInto,
         CheckCellMetadata: CheckCellMetadataOnce, GetGrades: GetGradesFrom}


def step_for(configured, gradebook: Gradebook | None, **kwargs):
    """The step to run for a configured one (a class, its name, or an instance, used as it is),
    made with `kwargs`: the class's version of it, on `gradebook`; nbgrader's own without one."""
    step = import_item(configured) if isinstance(configured, str) else configured
    if gradebook is not None and isinstance(step, type):
        step = _ONCE.get(step, step)
    if isinstance(step, type):
        step = step(**kwargs)
    if isinstance(step, OnOpenGradebook):
        step.open_gradebook = gradebook
    return step


# --- Autograde.init_assignment, on the class's open gradebook (nbgrader/converters/autograde.py) ---

def init_autograde_assignment(app, gradebook: Gradebook, assignment_id: str, student_id: str,
                              timestamp, notebook: str) -> None:
    """What `Autograde.init_assignment` does once the student's other files are copied (the
    caller copies them, never through a link), on the open `gradebook`: the student's and the
    submission's rows (with `timestamp`, which the caller read), the instructor's versions of the
    source folder's other files over the student's, and the notebooks to grade: `notebook`
    alone (the gradebook knows one; stock skips the others a student hands in). Stock opens the
    gradebook five times, checks that the assignment exists (checked once for the class here)
    and gives a missing notebook 0 (one is never graded here)."""
    gradebook.update_or_create_student(student_id)
    gradebook.update_or_create_submission(
        assignment_id, student_id, **({"timestamp": timestamp} if timestamp else {}))
    dest = app._format_dest(assignment_id, student_id)
    source = app.coursedir.format_path(app.coursedir.source_directory, ".", assignment_id)
    found = set(utils.find_all_files(source, app.coursedir.ignore + ["*.ipynb"]))
    found -= {os.path.join(source, x) for x in app.exclude_overwriting.get(assignment_id, [])}
    for filename in found:
        target = os.path.join(dest, os.path.relpath(filename, source))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            os.remove(target)
        shutil.copy(filename, target)
    app.notebooks = [n for n in app.notebooks if os.path.basename(n) == notebook]


def validate_once() -> Config:
    """nbconvert's own switch (`Exporter.optimistic_validation`): the notebook is validated once,
    after the last preprocessor, not after each of them (a tenth of a class's time went to the
    repeats). A step that breaks the notebook is still found, by the one validation at the end."""
    extra = Config()
    extra.Exporter.optimistic_validation = True
    return extra


def as_from_filename(resources: dict, name: str, path: str) -> dict:
    """`resources` with what nbconvert's `Exporter.from_filename` puts there for the steps that
    read it (the notebook's name and folder), for a notebook given from memory."""
    resources["metadata"] = {"name": name, "path": path}
    return resources


# --- BaseConverter.init_notebooks, for the students listed (nbgrader/converters/base.py) ---------

def notebooks_of(app, students: list[str]) -> dict[str, list[str]]:
    """`BaseConverter.init_notebooks`'s `assignments` (a submission's folder -> its notebooks)
    for `students` alone: stock globs every student's folder."""
    found = {}
    for student in students:
        folder = app._format_source(app.coursedir.assignment_id, student)
        notebooks = glob.glob(os.path.join(glob.escape(folder), f"{app.coursedir.notebook_id}.ipynb"))
        if notebooks:
            found[folder] = notebooks
    return found


# --- HTMLExporter.from_notebook_node, without its BeautifulSoup pass (nbconvert/exporters/html.py) -

def html_without_soup(exporter, nb, resources, highlight_code, **kw) -> tuple[str, dict]:
    """The page `HTMLExporter.from_notebook_node` renders, before its BeautifulSoup pass (which
    gives images without alternative text their text and JupyterLab cells a tab stop), with
    `highlight_code` as its highlighter."""
    res = exporter._init_resources(resources)
    exporter.register_filter("highlight_code", highlight_code)
    exporter.register_filter("filter_data_type", WidgetsDataTypeFilter(
        notebook_metadata=exporter._nb_metadata, parent=exporter, resources=res))
    return TemplateExporter.from_notebook_node(exporter, nb, res, **kw)
