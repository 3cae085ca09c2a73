"""The second lesson, a digit classifier (assignments/classifier/): its reference is autograd's
answer (tests/lessons/test_solutions.py, as for every lesson), its mistakes are named, its solution gets
full marks and its release none, and it goes through release, grade, feedback and Gradescope like
the first."""

from __future__ import annotations

import json

import pytest
import torch

from autograder.course import gradescope, samples
from autograder.judge import problems
from autograder.lesson import model as lessons
from autograder.lesson.model import Case
from autograder.selfcheck import run_self_check
from tests.conftest import REPO, check_report, target_mistakes, target_points

CLASSIFIER = lessons.load(REPO / "assignments" / "classifier")
SAMPLES = samples.of(CLASSIFIER)
SOURCE = CLASSIFIER.source_path


def test_the_labels_cross_as_integers_and_the_log_probabilities_are_normalised():
    case = Case.of(n=6, n_out=10, flags=("large",))
    inputs = problems.make_inputs(CLASSIFIER, "nll_grad", case, torch.Generator().manual_seed(1))
    assert inputs["targ"].dtype == torch.int64 and inputs["targ"].max() < 10
    torch.testing.assert_close(inputs["inp"].exp().sum(-1), torch.ones(6, dtype=torch.float64))
    logits = problems.make_inputs(CLASSIFIER, "log_softmax_grad", case,
                                  torch.Generator().manual_seed(1))["inp"]
    assert logits.abs().max() > 700  # where a bare exp() overflows, in float64 too


def test_the_two_gradients_together_are_softmax_minus_one_hot_over_n():
    ref = CLASSIFIER.reference()
    logits, labels = torch.randn(5, 10, dtype=torch.float64), torch.randint(10, (5,))
    out = ref.log_softmax(logits)
    ref.nll_grad(out, labels)
    ref.log_softmax_grad(logits, out)
    one_hot = torch.nn.functional.one_hot(labels, 10).to(logits.dtype)
    torch.testing.assert_close(logits.g, (logits.softmax(-1) - one_hot) / 5)


@pytest.mark.sandbox
def test_the_solution_gets_full_marks_and_the_release_none(released_classifier, tmp_path):
    code, report = check_report(SOURCE)
    assert code == 0 and report["score"] == report["max_score"] == 6.0
    assert report["lesson"] == "classifier"
    stubs = samples.write(released_classifier, tmp_path / "classifier.ipynb")
    code, report = check_report(stubs)
    assert code == 1 and report["score"] == 0.0
    assert target_mistakes(report, "nll_grad") == {"nll_grad.not_implemented"}


@pytest.mark.sandbox
@pytest.mark.parametrize("code", sorted(SAMPLES.MISTAKES))
def test_each_mistake_of_the_catalogue_is_named(code, released_classifier, tmp_path):
    target, answer = SAMPLES.MISTAKES[code]
    path = samples.write(samples.fill(released_classifier, {**SAMPLES.CORRECT, target: answer}),
                         tmp_path / "classifier.ipynb")
    _, report = check_report(path, seed=5)
    assert code in target_mistakes(report, target)
    other = next(t for t in CLASSIFIER.names if t != target)
    assert target_points(report)[other] == 3.0  # the other answer keeps its points
    assert target_points(report)[target] < 3.0
    assert code in CLASSIFIER.mistakes  # the catalogue says what it means


@pytest.mark.sandbox
def test_autograd_in_an_answer_scores_zero(released_classifier, tmp_path):
    mallory = SAMPLES.CLASS["mallory"][0]
    path = samples.write(samples.fill(released_classifier, {**SAMPLES.CORRECT, **mallory}),
                         tmp_path / "classifier.ipynb")
    _, report = check_report(path)
    assert target_points(report) == {"nll_grad": 3.0, "log_softmax_grad": 0.0}
    assert target_mistakes(report, "log_softmax_grad") == {"log_softmax_grad.uses_autograd"}


def test_the_self_check_in_a_kernel_uses_the_lesson_it_is_told():
    namespace = {"torch": torch}
    exec(SAMPLES.CORRECT["log_softmax_grad"], namespace)
    assert run_self_check("log_softmax_grad", namespace["log_softmax_grad"]).passed
    exec(SAMPLES.MISTAKES["log_softmax_grad.overflows"][1], namespace)
    report = run_self_check("log_softmax_grad", namespace["log_softmax_grad"], lesson="classifier")
    assert report.lesson == "classifier"
    assert "log_softmax_grad.overflows" in report.mistakes()


@pytest.mark.sandbox
def test_gradescope_grades_a_classifier_notebook(released_classifier, tmp_path):
    folder = tmp_path / "submission"
    samples.write(samples.fill(released_classifier, SAMPLES.CORRECT), folder / "classifier.ipynb")
    assert gradescope.main([str(folder), str(tmp_path / "results.json")]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 6.0
    assert {t["name"].split("/")[0] for t in results["tests"]} == {"nll_grad", "log_softmax_grad"}


def graded_answer(released: dict, tmp_path, target: str, answer: str) -> dict:
    path = samples.write(samples.fill(released, {**SAMPLES.CORRECT, target: answer}),
                         tmp_path / "classifier.ipynb")
    return check_report(path, seed=5)[1]


def failing_messages(report: dict, target: str) -> list[str]:
    return [c["message"] for c in report["checks"] if c["target"] == target and not c["passed"]]


@pytest.mark.sandbox
def test_the_sum_over_the_classes_left_out_is_named_not_a_sum_over_the_batch(
        released_classifier, tmp_path):
    report = graded_answer(released_classifier, tmp_path, "log_softmax_grad",
                           "def log_softmax_grad(inp, out):\n"
                           "    inp.g = out.g - out.exp() * out.g\n")
    assert target_mistakes(report, "log_softmax_grad") == {
        "log_softmax_grad.missing_class_sum", "log_softmax_grad.wrong_values"}
    messages = failing_messages(report, "log_softmax_grad")
    assert all("the sum over the classes is missing" in m for m in messages), messages
    assert not any("dim 0" in m or "over the batch" in m for m in messages), messages
    assert "log_softmax_grad.missing_class_sum" in CLASSIFIER.mistakes


@pytest.mark.sandbox
@pytest.mark.parametrize("made", ["torch.zeros(inp.shape, dtype=torch.float64)",
                                  "torch.eye(inp.shape[1])[targ] * 0"])
def test_a_one_hot_made_otherwise_is_not_told_of_f_one_hot(made, released_classifier, tmp_path):
    answer = ("def nll_grad(inp, targ):\n"
              f"    g = {made}\n"
              "    g[torch.arange(targ.shape[0]), targ] = -1.0 / targ.shape[0]\n"
              "    inp.g = g\n")
    report = graded_answer(released_classifier, tmp_path, "nll_grad", answer)
    assert "nll_grad.wrong_one_hot" not in target_mistakes(report, "nll_grad")
    assert "nll_grad.wrong_dtype" in target_mistakes(report, "nll_grad")
    messages = failing_messages(report, "nll_grad")
    assert not any("one_hot" in m or "zeros_like(w)" in m for m in messages), messages
    wrong = "float64 but inp is float32" if "float64" in made else "float32 but inp is float64"
    assert any(f"inp.g is {wrong}: keep the input's dtype" in m and "dtype=inp.dtype" in m
               for m in messages), messages


@pytest.mark.sandbox
def test_a_right_one_hot_indexed_out_of_an_identity_matrix_earns_every_point(
        released_classifier, tmp_path):
    # Indexing a stand-in CUDA tensor makes torch import code that names autograd's engine
    # class: refusing autograd for good must leave that name a type (it failed gpu-ready).
    answer = ("def nll_grad(inp, targ):\n"
              "    eye = torch.eye(inp.shape[1], dtype=inp.dtype, device=inp.device)\n"
              "    inp.g = -eye[targ] / inp.shape[0]\n")
    report = graded_answer(released_classifier, tmp_path, "nll_grad", answer)
    assert failing_messages(report, "nll_grad") == []
    assert target_points(report)["nll_grad"] == 3.0
