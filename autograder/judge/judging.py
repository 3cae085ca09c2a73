"""Judge every call of a plan once, from what came back (trusted side).

A call that did not run is said by `failures`; one that did is judged by its check's kind
(`kinds`). The verdicts, one per call, are what the checks' points (`scoring`) and the device
summary (`devices`) read.
"""

from __future__ import annotations

from ..answer.reading import Cell
from ..present import picture
from ..present.report import Verdict
from . import failures, kinds
from .outcome import TargetOutcome, UntrustedRun
from .plan import Plan, PlannedCall

#: Verdicts by call id; None for a call that counts for nothing (`skipped`).
Verdicts = dict[str, Verdict | None]


def skipped(planned: PlannedCall, outcome: TargetOutcome) -> bool:
    """A real-CUDA case where the student's process found no GPU: it counts for nothing."""
    meta = outcome.calls.get(planned.call.id)
    return planned.case.lane == "cuda" and meta is not None and meta.status == "unavailable"


def outcome_of(run: UntrustedRun, target: str) -> TargetOutcome:
    return run.targets.get(target) or TargetOutcome("crashed", "no result came back")


def judge_calls(plan: Plan, run: UntrustedRun,
                answers: dict[str, Cell] | None = None,
                own: dict[str, str] | None = None) -> Verdicts:
    """Every call of `plan`, judged once. `answers` gives each target's answer cell (as
    grading read it), for what to say when its function is not there; `own` what the student's own
    cells (which grading does not run) define, for a NameError's hint."""
    answers = answers or {}
    found: Verdicts = {}
    for planned in plan.calls:
        outcome = outcome_of(run, planned.target)
        found[planned.call.id] = None if skipped(planned, outcome) else judge_call(
            planned.target, planned, outcome, run, answers.get(planned.target), own)
    return found


def judge_call(target: str, planned: PlannedCall, outcome: TargetOutcome, run: UntrustedRun,
               solution_cell: Cell | None, own: dict[str, str] | None = None) -> Verdict:
    """One call: how the process fared, whether the call ran, then its kind's judgement."""
    stopped = failures.process_failure(target, outcome)
    if stopped is not None:
        return stopped
    meta = outcome.calls.get(planned.call.id)
    failure = failures.call_failure(target, meta, own, planned)
    if failure is not None:
        if meta is not None and meta.status == "undefined" and solution_cell is not None:
            error = run.cell_error(solution_cell.index)
            if error:
                failure = failures.cell_failed(target, error, own)
            else:
                failure = failures.misnamed(target, planned, solution_cell) or failure
        return failure
    verdict = kinds.of(planned.check.kind).judge(target, planned, meta, outcome.tensors)
    return picture.keep(verdict, target, planned, outcome.tensors)  # where it differs, drawn
