"""The plan of a run, over seeds: every plan builds, a right reference always passes the cross-check
with autograd, and a wrong one is the instructor's bug, never the student's (docs/architecture.md,
"Reference cross-check")."""

from __future__ import annotations

import types

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autograder.judge import problems
from autograder.judge.plan import build_plan
from autograder.lesson import model as lessons
from autograder.present.report import REFERENCE_NOTE, for_students
from autograder.selfcheck import run_self_check
from tests.conftest import REPO

LESSONS = {name: lessons.load(REPO / "assignments" / name) for name in ("backward", "classifier")}
CLASSIFIER = LESSONS["classifier"]
#: Seeds whose float32 large-logits case once failed the classifier's right reference (the
#: cross-check compared a reference fed an `out` rounded from unrounded logits with autograd's
#: answer on the rounded ones).
ONCE_FAILED = (932, 2074, 2117)


@pytest.mark.parametrize("seed", ONCE_FAILED)
def test_a_right_reference_passes_the_cross_check_on_the_seeds_that_once_failed(seed):
    plan = build_plan(CLASSIFIER, seed, solutions=CLASSIFIER.reference())
    assert plan.reference_problems == []


def test_a_derived_input_is_the_forward_of_the_inputs_as_sent():
    # log_softmax's `out`, in the float32 large-logits case: autograd's forward of the logits as
    # sent (rounded to float32), then rounded itself; not the forward of the unrounded logits.
    checks = CLASSIFIER.target("log_softmax_grad").checks
    case = next(c for check in checks for c in check.cases
                if c.dtype == "float32" and c.flag("large"))
    for seed in ONCE_FAILED:
        exact = problems.make_inputs(CLASSIFIER, "log_softmax_grad", case,
                                     torch.Generator().manual_seed(seed))
        assert torch.equal(exact["inp"], problems.as_case(exact["inp"], case))
        assert torch.equal(exact["out"], CLASSIFIER.forward("log_softmax")(exact["inp"]))


def wrong_reference() -> types.ModuleType:
    """The classifier's reference with two instructor's bugs: a term left out, a crash."""
    ref = CLASSIFIER.reference()
    wrong = types.ModuleType("wrong_reference")
    wrong.__dict__.update(vars(ref))

    def log_softmax_grad(inp, out):
        inp.g = out.g.clone()  # the softmax term left out

    def nll_grad(inp, targ):
        raise ValueError("an instructor's typo")

    wrong.log_softmax_grad, wrong.nll_grad = log_softmax_grad, nll_grad
    return wrong


def test_a_wrong_reference_is_one_line_for_the_instructor_and_grading_goes_on_with_autograd():
    plan = build_plan(CLASSIFIER, 7, solutions=wrong_reference())
    alone = build_plan(CLASSIFIER, 7)  # autograd alone: what the student is judged against
    assert [p.call.id for p in plan.calls] == [p.call.id for p in alone.calls]
    for planned, truth in zip(plan.calls, alone.calls, strict=True):
        assert planned.expected.keys() == truth.expected.keys()
        assert all(torch.equal(planned.expected[k], truth.expected[k]) for k in truth.expected)
    notes = plan.reference_problems
    assert len(notes) == 2, notes  # one line per reference, not one per case
    assert all(n.startswith(REFERENCE_NOTE) and "\n" not in n and not for_students(n)
               for n in notes)
    softmax = next(n for n in notes if "log_softmax_grad" in n)
    assert "disagrees with autograd on inp.g in values-float64 case 1 (float64)" in softmax
    assert "more case(s)" in softmax and "no student affected" in softmax
    nll = next(n for n in notes if " nll_grad " in n)
    assert "raised ValueError: an instructor's typo in values-float64 case 1" in nll


@pytest.mark.parametrize("name", sorted(LESSONS))
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))  # a course's seeds (`resolve`)
@example(seed=ONCE_FAILED[0])
def test_every_plan_builds_and_its_reference_passes_every_check_of_its_own_target(name, seed):
    lesson = LESSONS[name]
    solutions = lesson.reference()
    plan = build_plan(lesson, seed, solutions=solutions, lanes=("cpu", "gpu-ready"))
    assert plan.reference_problems == []
    for target in lesson.names:
        # The reference as a student's answer, through the grader's own checks (the self-check's
        # in-process harness: same plan, comparisons and messages), on this seed's inputs.
        report = run_self_check(target, getattr(solutions, lesson.target(target).entry),
                                device="cpu", lesson=lesson.id, seed=seed)
        failed = [(c.id, c.message) for c in report.checks if not c.passed]
        assert not failed, (seed, failed)
