"""The mistake codes a lesson's hooks give are its catalogue's (`[mistakes]` of its lesson.toml)
or the engine's general ones (`diagnose.GENERAL`, `diagnose.NAMED`, of one of its targets).

Hooks give codes only when they run, on the trusted side, so they are checked there: each hook
the engine asks goes through `Checked`, and a code that is neither fails that grading in one line
naming the code, the hook and the lesson.toml whose `[mistakes]` lacks it (the grader's own
failure, never the student's), where before it reached the report and the class report unknown.
"""

from __future__ import annotations

from ..lesson.model import SPEC, Lesson, LessonError
from ..lesson.spec_keys import nearest
from ..lesson_api import LessonCode
from ..present.report import GATE_CODES, Verdict


class Checked:
    """A lesson's hooks (`LessonCode`), each result's codes checked against its catalogue."""

    def __init__(self, lesson: Lesson, code: LessonCode, general: tuple[str, ...]) -> None:
        """`general`: the engine's codes any target may have (`diagnose` gives them)."""
        self._lesson, self._code = lesson, code
        self._general = (*general, *GATE_CODES)

    def _check(self, hook: str, codes) -> None:
        lesson = self._lesson
        general = self._general
        for code in codes or ():
            target, _, suffix = str(code).partition(".")
            if code in lesson.mistakes or (target in lesson.names and suffix in general):
                continue
            known = [*lesson.mistakes, *(f"{t}.{g}" for t in lesson.names for g in general)]
            raise LessonError(f"{lesson.folder / 'lesson.py'}'s {hook} gives the mistake code "
                              f"{code!r}, which [mistakes] of {lesson.folder / SPEC} does not "
                              f"list{nearest(str(code), known)}")

    def _hint(self, hook: str, hint):
        if hint:
            self._check(hook, hint[1])
        return hint

    def __getattr__(self, name: str):
        found = getattr(self._code, name)
        if name in ("TRANSPOSED",):
            for hint in found.values():
                self._hint(name, hint)
        return found

    def named_ratios(self, target, name, n):
        ratios = self._code.named_ratios(target, name, n)
        for _, codes, _ in ratios:
            self._check("named_ratios", codes)
        return ratios

    def diagnose_values(self, *args):
        return self._verdict("diagnose_values", self._code.diagnose_values(*args))

    def diagnose_shape(self, *args):
        found = self._code.diagnose_shape(*args)
        if isinstance(found, Verdict):
            return self._verdict("diagnose_shape", found)
        if found:
            self._check("diagnose_shape", found[2])
        return found

    def _verdict(self, hook: str, verdict):
        if isinstance(verdict, Verdict):
            self._check(hook, verdict.mistakes)
        return verdict

    def combine(self, *args):
        return self._hint("combine", self._code.combine(*args))

    def dtype_hint(self, *args):
        return self._hint("dtype_hint", self._code.dtype_hint(*args))

    def not_finite_hint(self, *args):
        return self._hint("not_finite_hint", self._code.not_finite_hint(*args))

    def error_hint(self, *args):
        return self._hint("error_hint", self._code.error_hint(*args))
