"""Feedback that teaches: each mistake in the catalogue is named, and costs its own target only.

Notebooks are the released one with wrong answers filled in, graded by the real CLI. Targets are
graded on their own, so one notebook carries up to three wrong answers on different targets and
keeps the fourth right: that one must keep full marks.
"""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.answer import rules
from autograder.judge import diagnose, problems
from autograder.judge.compare import compare_gradient
from autograder.judge.outcome import CallResult
from autograder.judge.plan import PlannedCall
from autograder.lesson.model import Case, Check
from autograder.selfcheck import SelfCheckFailed, self_check
from tests.conftest import BACKWARD, check_report, target_mistakes, target_points

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}

MODULE_HEAD = ("class Module():\n    def __call__(self, *args):\n        self.args = args\n"
               "        self.out = self.forward(*args)\n        return self.out\n\n"
               "    def backward(self):\n")


@dataclass(frozen=True)
class Mistake:
    label: str
    target: str
    source: str
    codes: frozenset[str]  # exactly the codes the target's checks name, all checks together
    says: str  # words the student reads in a failing check's message


def wrong(label: str, target: str, source: str, codes: set[str], says: str) -> Mistake:
    return Mistake(label, target, source, frozenset(f"{target}.{c}" for c in codes), says)


def mse(body: str) -> str:
    return f"def mse_grad(inp, targ):\n{body}"


def relu(body: str) -> str:
    return f"def relu_grad(inp, out):\n{body}"


def lin(inp: str = "out.g @ w.t()", w: str = "inp.t() @ out.g", b: str = "out.g.sum(0)") -> str:
    return f"def lin_grad(inp, out, w, b):\n    inp.g = {inp}\n    w.g = {w}\n    b.g = {b}\n"


MISTAKES = [
    # mse_grad
    wrong("mse: no factor 2", "mse_grad",
          mse("    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"),
          {"missing_factor_2", "wrong_values"},
          "inp.g is half of the true gradient: d/dx of (x - t)^2 is 2(x - t)"),
    wrong("mse: t - x", "mse_grad",
          mse("    inp.g = 2. * (targ - inp.squeeze(-1)).unsqueeze(-1) / inp.shape[0]\n"),
          {"sign_flipped", "wrong_values"}, "inp.g has the wrong sign"),
    wrong("mse: no mean", "mse_grad",
          mse("    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1)\n"),
          {"not_averaged", "wrong_values"},
          "times the true gradient: mse is a mean, so divide by N"),
    wrong("mse: neither 2 nor N", "mse_grad",
          mse("    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1)\n"),
          {"not_averaged", "missing_factor_2", "wrong_values"},
          "N/2 = 1.5 times the true gradient"),
    wrong("mse: a constant off", "mse_grad",
          mse("    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0] + 0.1\n"),
          {"wrong_values"}, "inp.g is not the gradient: worst at index"),
    wrong("mse: shape (N,)", "mse_grad",
          mse("    inp.g = 2. * (inp.squeeze(-1) - targ) / inp.shape[0]\n"),
          {"wrong_shape"}, "inp.g has shape (3,) but inp has shape (3, 1)"),
    wrong("mse: (N, 1) - (N,) broadcasts", "mse_grad",
          mse("    inp.g = 2. * (inp - targ) / inp.shape[0]\n"),
          {"wrong_shape"}, "broadcasts to (N, N)"),
    wrong("mse: computed, not stored", "mse_grad",
          mse("    g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"),
          {"missing_g"}, "mse_grad did not set inp.g"),
    wrong("mse: stored in .grad", "mse_grad",
          mse("    inp.grad = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"),
          {"missing_g"}, "mse_grad stored the gradient in inp.grad; the lesson's convention is "
          "inp.g, which the grader reads"),
    wrong("lin: stored in .grad", "lin_grad", lin().replace(".g =", ".grad ="),
          {"missing_g"}, "lin_grad stored the gradients in inp.grad, w.grad, b.grad; the lesson's "
          "convention is inp.g, w.g, b.g, which the grader reads"),
    wrong("mse: divides by zero", "mse_grad",
          mse("    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / 0.\n"),
          {"not_finite"}, "inp.g has NaN or infinite values"),
    wrong("mse: subtracts in place", "mse_grad",
          mse("    inp -= targ.unsqueeze(-1)\n    inp.g = 2. * inp / inp.shape[0]\n"),
          {"mutates_input"}, "mse_grad changed inp in place"),
    wrong("mse: autograd", "mse_grad",
          "import torch\n" + mse("    with torch.enable_grad():\n"
                                 "        x = inp.detach().clone().requires_grad_()\n"
                                 "        (x.squeeze(-1) - targ).pow(2).mean().backward()\n"
                                 "    inp.g = x.grad\n"),
          {"uses_autograd"}, "mse_grad uses autograd (torch.enable_grad on line 3"),
    # relu_grad
    wrong("relu: the mask alone", "relu_grad", relu("    inp.g = (inp > 0).to(inp.dtype)\n"),
          {"ignores_upstream", "wrong_values"}, "inp.g is the 0/1 mask alone: multiply it by"),
    wrong("relu: the mask alone, as .float()", "relu_grad", relu("    inp.g = (inp > 0).float()\n"),
          {"ignores_upstream", "wrong_values", "wrong_dtype"},
          "inp.g is the 0/1 mask alone: multiply it by the upstream gradient out.g (the chain "
          "rule), inp.g = mask * out.g; and inp.g is float32 but inp is float64"),
    wrong("relu: mask inverted", "relu_grad",
          relu("    inp.g = (inp <= 0).to(inp.dtype) * out.g\n"),
          {"wrong_mask", "wrong_values"}, "the mask is inverted"),
    wrong("relu: out >= 0 lets everything through", "relu_grad",
          relu("    inp.g = (out >= 0).to(inp.dtype) * out.g\n"),
          {"wrong_mask", "wrong_values"}, "inp.g passes out.g everywhere, also where inp < 0"),
    wrong("relu: out instead of out.g", "relu_grad", relu("    inp.g = out.clone()\n"),
          {"wrong_values"}, "inp.g equals out, the ReLU's output: use out.g"),
    wrong("relu: inp and out.g swapped", "relu_grad",
          relu("    inp.g = (out.g > 0).to(inp.dtype) * inp\n"),
          {"inputs_swapped", "wrong_values"},
          "inp.g is the gradient with inp and out.g swapped, each used where the other belongs "
          "(out.g is the gradient flowing back): the two have the same shape"),
    wrong("relu: edits out.g in place", "relu_grad",
          relu("    inp.g = out.g\n    inp.g[inp <= 0] = 0\n"),
          {"mutates_input"}, "relu_grad changed out.g in place"),
    wrong("relu: a numpy array", "relu_grad", relu("    inp.g = ((inp > 0) * out.g).numpy()\n"),
          {"not_tensor"}, "inp.g is a ndarray, not a tensor"),
    wrong("relu: a name that does not exist", "relu_grad", relu("    inp.g = mask * out.g\n"),
          {"error"}, "relu_grad raised NameError: name 'mask' is not defined"),
    # lin_grad
    wrong("lin: the stub as released", "lin_grad",
          "def lin_grad(inp, out, w, b):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n",
          {"not_implemented"}, "still raises NotImplementedError"),
    wrong("lin: w.g transposed", "lin_grad", lin(w="out.g.t() @ inp"),
          {"weight_transposed", "wrong_shape"},
          "w.g has shape (4, 5), the transpose of w's (5, 4)"),
    wrong("lin: b.g not summed", "lin_grad", lin(b="out.g"),
          {"bias_not_summed", "wrong_shape"}, "b.g has shape (3, 4) but b has shape (4,)"),
    wrong("lin: b.g averaged", "lin_grad", lin(b="out.g.mean(0)"),
          {"bias_averaged", "wrong_values"}, "b.g is 1/N = 1/3 of the true gradient"),
    wrong("lin: inp.g from out", "lin_grad", lin(inp="out @ w.t()"),
          {"input_grad_wrong", "wrong_values"},
          "inp.g is computed from out, the layer's output: use out.g, the gradient that flows back "
          "(w.g and b.g are right"),
    wrong("lin: inp.g transposed", "lin_grad", lin(inp="w @ out.g.t()"),
          {"input_grad_wrong", "wrong_shape"}, "inp.g has shape (5, 3), the transpose of inp's"),
    wrong("lin: w.g averaged", "lin_grad", lin(w="inp.t() @ out.g / inp.shape[0]"),
          {"wrong_values"},
          "w.g is 1/N = 1/3 of the true gradient: out.g already carries the loss's 1/N"),
    wrong("lin: uses .float()", "lin_grad", lin(w="(inp.t() @ out.g).float()"),
          {"wrong_dtype"}, "w.g is float32 but w is float64: keep the input's dtype"),
    # module_backward
    wrong("module: args not unpacked", "module_backward",
          MODULE_HEAD + "        self.bwd(self.out, self.args)\n",
          {"wrong_arguments"}, "backward() called bwd(out, a tuple)"),
    wrong("module: bwd(out) without the inputs", "module_backward",
          MODULE_HEAD + "        self.bwd(self.out)\n",
          {"inputs_left_out", "wrong_arguments"},
          "backward() called bwd(out), without the inputs: bwd needs them too, "
          "self.bwd(self.out, *self.args)"),
    wrong("module: returns without calling", "module_backward",
          MODULE_HEAD + "        return self.bwd\n",
          {"does_nothing"}, "backward() did not call self.bwd"),
    wrong("module: autograd", "module_backward", MODULE_HEAD + "        self.out.backward()\n",
          {"uses_autograd"}, "module_backward uses autograd (.backward() on line 8"),
]


def pack(mistakes: list[Mistake], per_notebook: int = 3) -> list[list[Mistake]]:
    """Notebooks of wrong answers on different targets, each leaving at least one target right."""
    queues = {t: [m for m in mistakes if m.target == t] for t in BACKWARD.names}
    notebooks = []
    for turn in itertools.count():
        if not any(queues.values()):
            return notebooks
        order = sorted(BACKWARD.names,
                       key=lambda t: (-len(queues[t]), (BACKWARD.names.index(t) + turn) % 4))
        notebooks.append([queues[t].pop(0) for t in order[:per_notebook] if queues[t]])


NOTEBOOKS = pack([m for m in MISTAKES if m.label != "mse: autograd"])  # a test of its own below


def test_every_public_code_is_covered_and_there_are_enough_distinct_mistakes():
    general = {"not_implemented", "error", "missing_g", "not_tensor", "wrong_shape", "wrong_dtype",
               "not_finite", "wrong_values", "mutates_input", "uses_autograd"}
    specific = {"mse_grad.missing_factor_2", "mse_grad.sign_flipped", "mse_grad.not_averaged",
                "relu_grad.ignores_upstream", "relu_grad.wrong_mask", "lin_grad.weight_transposed",
                "lin_grad.bias_not_summed", "lin_grad.bias_averaged", "lin_grad.input_grad_wrong",
                "module_backward.wrong_arguments", "module_backward.does_nothing",
                "module_backward.inputs_left_out"}
    named = set().union(*(m.codes for m in MISTAKES))
    assert specific <= named
    assert {code.split(".", 1)[1] for code in named} >= set(diagnose.NAMED)  # the engine's own
    contract = (BACKWARD.folder.parents[1] / "docs" / "contract.md").read_text()
    assert all(f"`T.{code}`" in contract for code in (*diagnose.GENERAL, *diagnose.NAMED))
    assert general <= {code.split(".", 1)[1] for code in named}
    assert len({m.source for m in MISTAKES}) >= 15
    assert all(len({m.target for m in nb}) == len(nb) < len(BACKWARD.names) for nb in NOTEBOOKS)


@pytest.mark.parametrize("mistakes", NOTEBOOKS,
                         ids=[" + ".join(m.label for m in nb) for nb in NOTEBOOKS])
def test_a_mistake_is_named_and_costs_its_own_target_only(make_notebook, mistakes):
    code, report = check_report(make_notebook({m.target: m.source for m in mistakes}))
    assert code == 1
    points = target_points(report)
    for target in BACKWARD.names:
        mine = [m for m in mistakes if m.target == target]
        if not mine:  # a right answer beside wrong ones keeps every point
            assert points[target] == FULL[target], target
            assert target_mistakes(report, target) == set(), target
            continue
        (mistake,) = mine
        assert points[target] < FULL[target], mistake.label
        assert target_mistakes(report, target) == set(mistake.codes), mistake.label
        messages = [c["message"] for c in report["checks"] if c["target"] == target
                    and not c["passed"]]
        assert any(mistake.says in m for m in messages), (mistake.label, messages)
        for c in report["checks"]:  # every failing check says why, with a code
            if c["target"] == target and not c["passed"]:
                # lin_grad gives credit per gradient: its right .g earn their share.
                assert c["mistakes"] and (c["points"] == 0.0 or BACKWARD.target(target).credit)


def test_autograd_inside_the_stub_loses_the_whole_target_even_with_right_values(
        make_notebook, tmp_path, capsys):
    (autograd,) = [m for m in MISTAKES if m.label == "mse: autograd"]
    code, report = check_report(make_notebook({"mse_grad": autograd.source}))
    assert code == 1
    assert target_points(report) == {**FULL, "mse_grad": 0.0}
    assert target_mistakes(report, "mse_grad") == set(autograd.codes)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["mse_grad/no-autograd"]["mistakes"] == ["mse_grad.uses_autograd"]
    assert checks["mse_grad/no-autograd"]["message"].startswith(
        "mse_grad uses autograd (torch.enable_grad on line 3 of the mse_grad cell): "
        "write the gradient by hand")
    # Grading refuses autograd for the whole run: the values check says so, once.
    assert checks["mse_grad/values-float64"]["message"] == (
        "no result: autograd refuses while mse_grad is graded (see mse_grad/no-autograd)")
    # The self-check on the same code says the same words.
    with pytest.raises(SelfCheckFailed):
        self_check("mse_grad", load_function(tmp_path, autograd.source, "mse_grad", prelude=""))
    out = " ".join(capsys.readouterr().out.split())
    # The gate's line, with the gate's words; the other checks wait for it, on a line of their own.
    assert f"FAIL no-autograd: {checks['mse_grad/no-autograd']['message']}" in out
    assert "waiting for no-autograd: values-float64, batch-of-one, values-float32, " \
           "inputs-unchanged, gpu-ready" in out


# --- the self-check says the same as the grader -----------------------------------------------

def load_function(tmp_path, source: str, name: str, prelude: str = "import torch\n"):
    """The student's function from a file of its own, so that its source can be read."""
    path = tmp_path / "student.py"
    path.write_text(prelude + source)
    module_spec = importlib.util.spec_from_file_location("student", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.mark.parametrize("label", ["mse: no factor 2", "relu: edits out.g in place"])
def test_the_self_check_names_the_mistake_in_the_graders_words(tmp_path, capsys, label):
    (mistake,) = [m for m in MISTAKES if m.label == label]
    with pytest.raises(SelfCheckFailed):
        self_check(mistake.target, load_function(tmp_path, mistake.source, mistake.target))
    out = " ".join(capsys.readouterr().out.split())
    assert out.count(mistake.says) == 1  # each distinct mistake once
    assert all(code in out for code in mistake.codes)


def test_the_self_check_gate_reads_the_source_of_the_function(tmp_path, capsys):
    source = ("def mse_grad(inp, targ):\n"
              "    x = inp.detach().clone().requires_grad_()\n"
              "    with torch.enable_grad():\n"
              "        (x.squeeze(-1) - targ).pow(2).mean().backward()\n"
              "    inp.g = x.grad\n")
    with pytest.raises(SelfCheckFailed, match="mse_grad: 1 of 6 checks fail, 5 wait"):
        self_check("mse_grad", load_function(tmp_path, source, "mse_grad"))
    out = " ".join(capsys.readouterr().out.split())
    # student.py starts with `import torch`: line numbers count from the top, as in a cell.
    assert "FAIL no-autograd:" in out and "waiting for no-autograd: values-float64" in out
    assert "mse_grad uses autograd (requires_grad_() on line 3" in out


# --- the no-autograd scan, on source text, as grading reads an answer (rules.findings_in) ------

def autograd_in(source: str) -> list[str]:
    return [f.what for f in rules.findings_in(source) if f.kind == rules.AUTOGRAD]


@pytest.mark.parametrize("source,what", [
    ("def f(x):\n    x.sum().backward()\n", ".backward()"),
    ("def f(x):\n    x.sum().backward()\n    return x.grad\n", ".grad"),
    ("import torch\ndef f(x):\n    return torch.autograd.grad(x.sum(), x)\n", "torch.autograd"),
    ("from torch.autograd import grad\n", "import torch.autograd.grad"),
    ("from torch import autograd\n", "import torch.autograd"),
    ("def f(x):\n    y = torch.tensor(x, requires_grad=True)\n", "requires_grad="),
    ("def f(x):\n    x.requires_grad = True\n", "requires_grad"),
    ("def f(x):\n    with torch.set_grad_enabled(True):\n        pass\n", "torch.set_grad_enabled"),
    ("from torch import enable_grad\n", "torch.enable_grad"),
    ("def f(x):\n    return torch.func.grad(g)(x)\n", "torch.func"),
])
def test_the_scan_finds_autograd(source, what):
    assert what in autograd_in(source)


@pytest.mark.parametrize("source", [
    "def f(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n",
    "def f(x):\n    # x.backward() would be cheating\n    s = 'x.grad'\n"
    "    x.g = x.detach().clone()\n",
    "def f(x):\n    with torch.no_grad():\n        x.g = x * 2\n",
    "def f(x):\n    x.grad = x * 2  # a mix-up with .g, not autograd\n",
    "class Module():\n    def backward(self):\n        self.bwd(self.out, *self.args)\n",
    "class Layer(Module):\n    def backward(self):\n        super().backward()\n",
    "def f(x)\n    x.backward()\n",  # does not parse: its checks fail anyway
])
def test_the_scan_leaves_hand_written_code_alone(source):
    assert autograd_in(source) == []


def test_a_grad_read_alone_is_the_convention_mixed_up_not_autograd(make_notebook):
    source = "def relu_grad(inp, out):\n    inp.grad = (inp > 0).to(inp.dtype) * out.grad\n"
    assert autograd_in(source) == []
    _, report = check_report(make_notebook({"relu_grad": source}))
    assert target_points(report) == {**FULL, "relu_grad": 0.0}
    checks = {c["id"]: c for c in report["checks"]}
    gate = checks["relu_grad/no-autograd"]
    assert gate["mistakes"] == ["relu_grad.not_allowed"]
    assert "the lesson's convention is .g: the upstream gradient is in out.g" in gate["message"]
    assert "uses autograd" not in gate["message"] and "by hand" not in gate["message"]


# --- the diagnosis, on tensors ---------------------------------------------------------------

def planned_call(target: str, case: Case, seed: int) -> PlannedCall:
    inputs = problems.make_inputs(BACKWARD, target, case, torch.Generator().manual_seed(seed))
    check = Check("values-float64", 1, "values", (case,))
    return PlannedCall(target, check, case,
                       problems.make_call(BACKWARD.target(target), "c", case), inputs,
                       problems.true_gradients(BACKWARD, target, inputs),
                       problems.also_accepted(BACKWARD, target, inputs), BACKWARD)


def judged(target: str, name: str, got: torch.Tensor, planned: PlannedCall):
    meta = CallResult.parse({"g": {name: {"kind": "tensor", "device": "cpu"}}})
    return compare_gradient(target, name, meta, got, planned)


BATCH_SIZES = st.integers(1, 40).filter(lambda n: n != 2)


@settings(max_examples=40, deadline=None)
@given(n=BATCH_SIZES, seed=st.integers(0, 2**31 - 1), sign=st.sampled_from([1, -1]),
       half=st.booleans(), summed=st.booleans())
def test_a_scalar_factor_of_the_mse_gradient_names_each_part(n, seed, sign, half, summed):
    planned = planned_call("mse_grad", Case.of(n=n), seed)
    truth = planned.expected["inp"]
    factor = sign * (0.5 if half else 1.0) * (n if summed else 1)
    verdict = judged("mse_grad", "inp", factor * truth, planned)
    want = {code for code, on in [("mse_grad.sign_flipped", sign < 0),
                                  ("mse_grad.missing_factor_2", half),
                                  ("mse_grad.not_averaged", summed and n > 1)] if on}
    assert verdict.passed == (not want)
    if want:
        assert set(verdict.mistakes) == want | {"mse_grad.wrong_values"}
        assert verdict.mistakes[-1] == "mse_grad.wrong_values"  # the specific codes come first


@settings(max_examples=30, deadline=None)
@given(n=BATCH_SIZES, seed=st.integers(0, 2**31 - 1), noise=st.floats(1e-3, 1.0))
def test_a_gradient_that_is_no_multiple_gets_no_specific_code(n, seed, noise):
    planned = planned_call("mse_grad", Case.of(n=n), seed)
    truth = planned.expected["inp"]
    gen = torch.Generator().manual_seed(seed)
    got = 0.5 * truth + noise * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    verdict = judged("mse_grad", "inp", got, planned)
    if not verdict.passed:
        assert verdict.mistakes == ("mse_grad.wrong_values",)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 30), n_in=st.integers(1, 9), n_out=st.integers(1, 9),
       seed=st.integers(0, 2**31 - 1))
def test_bias_averaged_is_told_from_a_missing_factor_2(n, n_in, n_out, seed):
    planned = planned_call("lin_grad", Case.of(n=n, n_in=n_in, n_out=n_out), seed)
    truth = planned.expected["b"]
    assert "lin_grad.bias_averaged" in judged("lin_grad", "b", truth / n, planned).mistakes
    assert "lin_grad.bias_averaged" not in judged("lin_grad", "b", truth / 2, planned).mistakes


def test_the_spec_batch_sizes_keep_the_named_ratios_apart():
    for target, checks in ((t.name, t.checks) for t in BACKWARD.targets):
        for check in checks:
            for case in check.cases if check.kind != "probe" else ():
                assert case.n != 2, (target, check.name)
                for name in ("inp", "w", "b"):
                    ratios = [r for r, _, _ in BACKWARD.code().named_ratios(target, name, case.n)]
                    assert 1.0 not in ratios
                    assert len(set(ratios)) == len(ratios), (target, check.name, name, ratios)


def test_a_square_weight_gradient_transposed_is_named_from_its_values():
    planned = planned_call("lin_grad", Case.of(n=3, n_in=4, n_out=4), 3)
    truth = planned.expected["w"]
    verdict = judged("lin_grad", "w", truth.t().contiguous(), planned)
    assert verdict.mistakes == ("lin_grad.weight_transposed", "lin_grad.wrong_values")
    assert verdict.message.startswith("w.g is the transpose of the true gradient")


def test_the_zero_subgradient_is_accepted_and_an_inverted_mask_is_not():
    planned = planned_call("relu_grad", Case.of(n=5, n_out=4, flags=("zeros",)), 0)
    inp, upstream = planned.inputs["inp"], planned.inputs["out.g"]
    assert (inp == 0).any()
    for mask in (inp > 0, inp >= 0):
        assert judged("relu_grad", "inp", mask * upstream, planned).passed
    verdict = judged("relu_grad", "inp", (inp <= 0) * upstream, planned)
    assert verdict.mistakes == ("relu_grad.wrong_mask", "relu_grad.wrong_values")
    assert "inverted" in verdict.message


def test_a_message_never_shows_a_hidden_value():
    planned = planned_call("mse_grad", Case.of(n=3), 7)
    truth = planned.expected["inp"]
    shown = {f"{v:.3g}" for v in truth.flatten().tolist()} | {
        f"{v:.3g}" for t in planned.inputs.values() for v in t.flatten().tolist()}
    for got in (0.5 * truth, -truth, 3 * truth, truth + 1, truth.flatten(), truth * 0):
        message = judged("mse_grad", "inp", got, planned).message
        assert not any(value in message for value in shown if len(value) > 2), message


# --- messages on real code, through the real check ----------------------------------------------

RIGHT_LIN = ("    inp.g = out.g @ w.t()\n    w.g = inp.t() @ out.g\n    b.g = out.g.sum(0)\n")


def failing_lines(report: dict, target: str) -> list[tuple[str, list[str]]]:
    return [(c["message"], c["mistakes"]) for c in report["checks"]
            if c["target"] == target and not c["passed"]]


def test_a_debugger_call_left_in_a_right_answer_does_nothing_in_grading(make_notebook):
    source = "import pdb\ndef lin_grad(inp, out, w, b):\n    pdb.set_trace()\n    breakpoint()\n"
    code, report = check_report(make_notebook({"lin_grad": source + RIGHT_LIN}))
    assert code == 0 and target_points(report) == FULL


def test_a_base_class_named_otherwise_is_told_what_the_grader_calls(make_notebook):
    source = ("class LayerFunction():\n    def __call__(self, *args):\n        self.args = args\n"
              "        self.out = self.forward(*args)\n        return self.out\n\n"
              "    def backward(self):\n        self.bwd(self.out, *self.args)\n")
    _, report = check_report(make_notebook({"module_backward": source}))
    messages = {m for m, _ in failing_lines(report, "module_backward")}
    assert messages == {"there is no class Module in the module_backward cell: it defines "
                        "LayerFunction; the grader calls Module, so give yours that name",
                        # no code to read: the gate does not say "written by hand", and
                        # says why there is none
                        "not checked: there is no class Module in the module_backward cell: it "
                        "defines LayerFunction; the grader calls Module, so give yours that name"}


def test_an_n_by_n_by_1_broadcast_is_named_as_the_broadcast(make_notebook):
    source = "def mse_grad(inp, targ):\n    inp.g = (2. * (inp - targ) / inp.shape[0]).unsqueeze(-1)\n"
    _, report = check_report(make_notebook({"mse_grad": source}), seed=3)
    messages = {m for m, _ in failing_lines(report, "mse_grad")}
    assert any("inp (N, 1) minus targ (N,) broadcasts to (N, N)" in m for m in messages)
    assert not any(".unsqueeze(-1))" in m for m in messages)  # one dimension too many, not few


def test_one_dimension_too_many_at_n_1_is_not_told_to_unsqueeze(make_notebook):
    source = ("def mse_grad(inp, targ):\n"
              "    inp.g = (2. * (inp.squeeze(-1) - targ) / inp.shape[0]).reshape(-1, 1, 1)\n")
    _, report = check_report(make_notebook({"mse_grad": source}), seed=3)
    messages = [m for m, _ in failing_lines(report, "mse_grad")]
    assert any("(3, 1, 1) but inp has shape (3, 1)" in m and "1 dimension more than inp" in m
               for m in messages), messages
    assert not any("unsqueeze" in m for m in messages)


def test_dividing_by_a_fixed_size_is_told_to_divide_by_the_batch(make_notebook):
    source = "def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / 1500\n"
    _, report = check_report(make_notebook({"mse_grad": source}), seed=3)
    messages = {m for m, _ in failing_lines(report, "mse_grad")}
    assert any("as if divided by 1500 and not by this batch's N = 3" in m for m in messages)
    assert all("as if divided by 1500" in m and "inp.shape[0]" in m for m in messages), messages


def test_a_gradient_right_only_at_n_1_earns_nothing_for_the_batch_of_one(make_notebook):
    source = "def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1)\n"
    _, report = check_report(make_notebook({"mse_grad": source}))
    checks = {c["id"]: c for c in report["checks"]}
    assert not checks["mse_grad/batch-of-one"]["passed"]
    assert checks["mse_grad/batch-of-one"]["mistakes"] == checks["mse_grad/values-float64"]["mistakes"]
    assert checks["mse_grad/batch-of-one"]["message"].startswith(
        "no points while mse_grad/values-float64 fails")


def test_cells_are_named_as_a_student_finds_them_and_shapes_as_python_writes_them(make_notebook):
    source = "def lin_grad(inp, out, w, b):\n" + RIGHT_LIN.replace("sum(0)", "sum(0) + missing")
    _, report = check_report(make_notebook({"lin_grad": source}))
    messages = [m for m, _ in failing_lines(report, "lin_grad")]
    assert any("(the lin_grad cell, line 4)" in m for m in messages), messages
    assert not any("cell 1" in m for m in messages)
    source = "def lin_grad(inp, out, w, b):\n" + RIGHT_LIN.replace("sum(0)", "sum(1)")
    _, report = check_report(make_notebook({"lin_grad": source}), seed=3)
    messages = [m for m, _ in failing_lines(report, "lin_grad")]
    assert any("b.g has shape (3,) but b has shape (4,)" in m for m in messages), messages


@pytest.mark.parametrize("body,says", [
    ("2. * inp.shape[0] * (inp.squeeze(-1) - targ).unsqueeze(-1)",
     "inp.g is N^2 = 9 times the true gradient: a factor N multiplies where it should divide"),
    ("inp.shape[0] / 2. * (inp.squeeze(-1) - targ).unsqueeze(-1)",
     "inp.g is 9/4 times the true gradient: the factor is upside down, N/2 where 2/N belongs"),
    ("inp.shape[0] / (2. * (inp.squeeze(-1) - targ).unsqueeze(-1))",
     "inp.g is the reciprocal of the true gradient, element by element (1 / g for g)"),
])
def test_a_factor_on_the_wrong_side_of_the_line_is_named_not_off_by(make_notebook, body, says):
    _, report = check_report(make_notebook({"mse_grad": f"def mse_grad(inp, targ):\n    inp.g = {body}\n"}),
                             seed=3)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["mse_grad/values-float64"]["message"].startswith(says)
    assert not any("is not the gradient: worst at index" in m
                   for m, _ in failing_lines(report, "mse_grad"))


def test_no_autograd_never_passes_for_a_function_that_is_not_there(make_notebook):
    _, report = check_report(make_notebook({"relu_grad": "# I will do this one later\n"}))
    checks = {c["id"]: c for c in report["checks"]}
    gate = checks["relu_grad/no-autograd"]
    assert not gate["passed"] and gate["message"] == "not checked: there is no relu_grad to read"
    assert "written by hand" not in gate["message"]
    assert target_points(report) == {**FULL, "relu_grad": 0.0}
    assert checks["mse_grad/no-autograd"]["passed"]  # a right answer beside it: read, and clean


# --- two inputs of one shape mixed up: the engine's, for any lesson -----------------------------

@pytest.mark.sandbox
def test_an_input_used_where_another_of_its_shape_belongs_is_named(released_classifier, tmp_path):
    from autograder.course import samples
    from autograder.lesson import model as lessons
    from tests.conftest import REPO

    classifier = lessons.load(REPO / "assignments" / "classifier")
    # exp(inp) for softmax: inp where out = log_softmax(inp) belongs (softmax is out.exp()).
    answer = ("def log_softmax_grad(inp, out):\n"
              "    inp.g = out.g - inp.exp() * out.g.sum(-1, keepdim=True)\n")
    path = samples.write(samples.fill(released_classifier, {
        **samples.of(classifier).CORRECT, "log_softmax_grad": answer}), tmp_path / "classifier.ipynb")
    _, report = check_report(path, seed=5)
    says = ("inp.g is the gradient with inp used where out belongs (out = log_softmax(inp)): the "
            "two have the same shape, so only the values show it; use out there")
    checks = {c["id"]: c for c in report["checks"]}
    for name in ("values-float64", "batch-of-one", "values-float32"):
        assert checks[f"log_softmax_grad/{name}"]["message"] == says
        assert checks[f"log_softmax_grad/{name}"]["mistakes"] == [
            "log_softmax_grad.inputs_swapped", "log_softmax_grad.wrong_values"]
    assert target_points(report)["nll_grad"] == 3.0  # costs its own target only
    # Only the reference's formula reads `out`: the self-check, which never loads a reference
    # in the student's kernel, cannot name this swap (tests/check/test_no_reference_in_kernel.py).


#: One-hots of the right form made without F.one_hot, each with another mistake beside it.
ONE_HOTS_OF_THEIR_OWN = {
    "zeros, a fixed float64": "    g = torch.zeros(inp.shape, dtype=torch.float64, device=inp.device)\n"
                              "    g[torch.arange(targ.shape[0]), targ] = -1.0 / targ.shape[0]\n"
                              "    inp.g = g\n",
    "eye, torch's default float32": "    inp.g = -torch.eye(inp.shape[1], device=inp.device)[targ] "
                                    "/ targ.shape[0]\n",
    "zeros_like, not averaged": "    g = torch.zeros_like(inp)\n"
                                "    g[torch.arange(targ.shape[0]), targ] = -1.0\n    inp.g = g\n",
    "a comparison, the sign flipped": "    classes = torch.arange(inp.shape[1], device=inp.device)\n"
                                      "    inp.g = (targ[:, None] == classes).to(inp.dtype) "
                                      "/ targ.shape[0]\n",
}


@pytest.mark.sandbox
@pytest.mark.parametrize("label", sorted(ONE_HOTS_OF_THEIR_OWN))
def test_a_one_hot_of_ones_own_is_never_told_of_f_one_hot_in_any_check(released_classifier,
                                                                          tmp_path, label):
    from autograder.course import samples
    from autograder.lesson import model as lessons
    from tests.conftest import REPO

    classifier = lessons.load(REPO / "assignments" / "classifier")
    answer = "def nll_grad(inp, targ):\n" + ONE_HOTS_OF_THEIR_OWN[label]
    path = samples.write(samples.fill(released_classifier, {
        **samples.of(classifier).CORRECT, "nll_grad": answer}), tmp_path / "classifier.ipynb")
    _, report = check_report(path, seed=5)
    mine = [c for c in report["checks"] if c["target"] == "nll_grad"]
    assert any(not c["passed"] for c in mine), label  # each has a mistake to tell
    for c in mine:  # check by check: neither the code nor a word of a one-hot's making
        assert "nll_grad.wrong_one_hot" not in c["mistakes"], (label, c)
        assert "one_hot" not in c["message"] and "one-hot" not in c["message"], (label, c)
