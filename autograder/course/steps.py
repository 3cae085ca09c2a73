"""nbgrader's own sanitize and autograde steps, each doing what it does for one notebook, with the
work that is the same for every student of a class done once for the class:

- The steps that open the gradebook (each time a new SQLAlchemy engine: every query compiled
  again) use the class's open gradebook (`OnOpenGradebook`), whose commits are the recorder's
  (`OneCommit`): `OverwriteKernelspec` and `OverwriteCells` (sanitize), `SaveAutoGrades` and
  `AssignLatePenalties` (autograde).
- `CheckCellMetadata` checks each cell against nbgrader's schema compiled once, where
  `jsonschema.validate` checks the schema itself, then compiles it, for every cell.

`step_for(configured, gradebook)` gives the step to run for a configured one; a step not listed
here (a course's own, or a later nbgrader's) runs as configured.
"""

from __future__ import annotations

import json
import traceback

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from traitlets.utils.importstring import import_item


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


class OverwriteKernelspecFrom(OnOpenGradebook, OverwriteKernelspec):
    """nbgrader's OverwriteKernelspec, as its `preprocess` does it, from the class's gradebook."""

    def preprocess(self, nb, resources):
        self._take(resources)
        kernelspec = self.gradebook.find_notebook(self.notebook_id, self.assignment_id).kernelspec
        if kernelspec is not None:
            kernelspec = json.loads(kernelspec)
        if kernelspec:
            nb.metadata["kernelspec"] = kernelspec
        return nb, resources


class OverwriteCellsFrom(OnOpenGradebook, OverwriteCells):
    """nbgrader's OverwriteCells (its per-cell logic unchanged) from the class's gradebook."""

    def preprocess(self, nb, resources):
        self._take(resources)
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
         CheckCellMetadata: CheckCellMetadataOnce}


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
