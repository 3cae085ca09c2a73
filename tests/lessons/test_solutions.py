"""The reference solutions are themselves right: equal to torch.autograd in float64, for every
lesson here and every case of its lesson.toml; and they live where only an instructor reads them.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.course.release import course_lesson
from autograder.judge import problems
from autograder.judge.plan import reference_gradients
from autograder.lesson import model as lessons
from autograder.lesson.model import Case
from tests.conftest import BACKWARD, REPO

solutions = BACKWARD.reference()


def lesson_cases() -> list:
    """(lesson, target, case) for each distinct case of each function target's checks, in
    float64 on the CPU (its sizes and flags as lesson.toml gives them)."""
    found = {}
    for lesson in lessons.available().values():
        for target in lesson.targets:
            if target.kind != "function":
                continue
            for check in target.checks:
                for case in check.cases:
                    plain = dataclasses.replace(case, dtype="float64", device="cpu", stand_in=False)
                    sizes = ",".join(f"{k}={v}" for k, v in (("n", plain.n), *plain.dims))
                    found.setdefault((lesson.id, target.name, plain), pytest.param(
                        lesson, target.name, plain,
                        id="-".join([lesson.id, target.name, sizes, *plain.flags])))
    return list(found.values())


@pytest.mark.parametrize("lesson,target,case", lesson_cases())
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), data=st.data())
def test_the_reference_is_autograd_in_float64(lesson, target, case, seed, data):
    """On the case's own sizes, and on sizes drawn from 1 to 9 (N = 1 and non-square layers)."""
    if data.draw(st.booleans(), label="other sizes"):
        case = dataclasses.replace(case, n=data.draw(st.integers(1, 9), label="n"), dims=tuple(
            (name, data.draw(st.integers(1, 9), label=name)) for name, _ in case.dims))
    inputs = problems.make_inputs(lesson, target, case, torch.Generator().manual_seed(seed))
    call = problems.make_call(lesson.target(target), "c", case)
    got = reference_gradients(lesson.reference(), call, inputs)
    truth = problems.true_gradients(lesson, target, inputs)
    assert got.keys() == truth.keys()
    for name in truth:
        assert torch.isfinite(truth[name]).all()
        assert got[name].dtype == torch.float64
        assert got[name].shape == truth[name].shape, name
        torch.testing.assert_close(got[name], truth[name], rtol=1e-12, atol=1e-12)


def test_every_lesson_here_has_its_reference_and_cases():
    for lesson in lessons.available().values():
        assert lesson.reference() is not None, lesson.id
        assert lesson.reference_path == REPO / "solutions" / lesson.id / "reference.py"
        assert lesson.id in {p.values[0].id for p in lesson_cases()}


def test_a_course_gets_the_solutions_in_their_own_folder(tmp_path):
    mine = course_lesson(tmp_path, BACKWARD)
    assert mine.folder == tmp_path / "lessons" / "backward"
    assert {p.name for p in mine.folder.iterdir()} == {"backward.ipynb", "lesson.toml", "lesson.py"}
    assert mine.reference_path == tmp_path / "solutions" / "backward" / "reference.py"
    assert (tmp_path / "solutions" / "backward" / "samples.py").is_file()


def test_the_exact_zero_case_really_has_zeros():
    inputs = problems.make_inputs(BACKWARD, "relu_grad", Case.of(n=3, n_out=3, flags=("zeros",)),
                                  torch.Generator())
    assert (inputs["inp"] == 0).sum() >= 3


def test_reference_module_backward_calls_bwd_with_out_and_args():
    seen = []

    class Layer(solutions.Module):
        def forward(self, a, b):
            return a + b

        def bwd(self, out, a, b):
            seen.append((out, a, b))

    layer = Layer()
    a, b = torch.ones(2), torch.zeros(2)
    out = layer(a, b)
    layer.backward()
    assert len(seen) == 1 and seen[0][0] is out and seen[0][1] is a and seen[0][2] is b
