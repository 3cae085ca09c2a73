"""The reference solutions are themselves right: equal to torch.autograd in float64."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import problems
from autograder.lesson import Case
from autograder.plan import reference_gradients

from .conftest import BACKWARD

solutions = BACKWARD.reference()

sizes = st.integers(min_value=1, max_value=9)


def assert_matches_autograd(target: str, case: Case, seed: int) -> None:
    inputs = problems.make_inputs(BACKWARD, target, case, torch.Generator().manual_seed(seed))
    call = problems.make_call(BACKWARD.target(target), "c", case)
    got = reference_gradients(solutions, call, inputs)
    truth = problems.true_gradients(BACKWARD, target, inputs)
    assert got.keys() == truth.keys()
    for name in truth:
        assert got[name].dtype == torch.float64
        assert got[name].shape == truth[name].shape, name
        torch.testing.assert_close(got[name], truth[name], rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=sizes, n_in=sizes, n_out=sizes, seed=st.integers(0, 2**31 - 1))
def test_lin_grad_is_autograd(n, n_in, n_out, seed):
    assert_matches_autograd("lin_grad", Case.of(n=n, n_in=n_in, n_out=n_out), seed)


@settings(max_examples=40, deadline=None)
@given(n=sizes, seed=st.integers(0, 2**31 - 1))
def test_mse_grad_is_autograd(n, seed):
    assert_matches_autograd("mse_grad", Case.of(n=n), seed)


@settings(max_examples=40, deadline=None)
@given(n=sizes, width=sizes, zeros=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_relu_grad_is_autograd_including_exact_zeros(n, width, zeros, seed):
    # torch.relu's backward takes the subgradient 0 at exactly 0, as the reference does.
    assert_matches_autograd("relu_grad", Case.of(n=n, n_out=width, flags=('zeros',) if zeros else ()), seed)


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
