"""A third lesson touches only its own folder: a small one (the gradient of tanh), written here
from a template, is graded by the real `autograder check`, right and wrong, with no line of the
engine changed.

The template is what a lesson author writes: lesson.toml names the engine's standard checks,
lesson.py holds the forward and one subclass of `autograder.lesson_api.LessonCode`, a reference,
and a notebook made with nbformat. The lesson is found as any is, on AUTOGRADER_LESSONS.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.lesson import model as lessons
from autograder.selfcheck import run_self_check
from tests.conftest import run_cli, target_mistakes
from tests.support import tanh

LESSON_TOML = tanh.toml(2, more='''
[mistakes]
"tanh_grad.sign_flipped" = "tanh(x)^2 - 1 for 1 - tanh(x)^2"
"tanh_grad.uses_input" = "1 - inp^2 where 1 - out^2 belongs"
''')

LESSON_PY = '''
import torch

from autograder.lesson_api import LessonCode, Verdict, off_by


def tanh(inp):
    return torch.tanh(inp)


class Tanh(LessonCode):
    def {ratios}(self, target, name, n):
        return [(-1.0, ("tanh_grad.sign_flipped",), "d tanh(x)/dx is 1 - tanh(x)^2")]

    def diagnose_values(self, target, name, got, planned, tol):
        x = planned.inputs
        if off_by(got, (1 - x["inp"] ** 2) * x["out.g"]) <= tol:
            return Verdict(False, "inp.g uses inp where out = tanh(inp) belongs: "
                                  "inp.g = (1 - out**2) * out.g",
                           ("tanh_grad.uses_input", "tanh_grad.wrong_values"))
        return None
'''

RIGHT = tanh.RIGHT
SIGN_FLIPPED = "def tanh_grad(inp, out):\n    inp.g = (out ** 2 - 1) * out.g\n"
USES_INPUT = "def tanh_grad(inp, out):\n    inp.g = (1 - inp ** 2) * out.g\n"


def write_lesson(root: Path, ratios_hook: str = "named_ratios") -> Path:
    """The template, in `root/tanh/` (its reference in `root/../solutions/tanh/`): everything a
    new lesson is."""
    return tanh.write(root, LESSON_TOML, LESSON_PY.replace("{ratios}", ratios_hook))


@pytest.fixture
def lessons_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "lessons"
    write_lesson(root)
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(root))
    return root


@pytest.mark.sandbox
def test_a_new_lesson_grades_a_right_answer_and_names_a_typical_mistake(lessons_root, tmp_path):
    reports = {}
    for label, answer in (("right", RIGHT), ("sign", SIGN_FLIPPED), ("input", USES_INPUT)):
        path = tmp_path / f"{label}.ipynb"
        nbformat.write(tanh.notebook(answer), path)
        done = run_cli("check", str(path), "--json")
        assert done.returncode == (0 if label == "right" else 1), done.stderr
        reports[label] = json.loads(done.stdout)
    right = reports["right"]
    assert (right["lesson"], right["score"], right["max_score"]) == ("tanh", 2, 2)
    assert not [n for n in right["notes"] if n.startswith("reference:")]  # it agrees with autograd
    assert [c["id"].split("/")[1] for c in right["checks"]] == [
        "no-autograd", "values-float64", "batch-of-one", "values-float32", "inputs-unchanged",
        "gpu-ready"]  # the engine's standard set
    sign = reports["sign"]
    assert sign["score"] == 0
    assert target_mistakes(sign, "tanh_grad") == {"tanh_grad.sign_flipped",
                                                  "tanh_grad.wrong_values"}
    first = next(c for c in sign["checks"] if c["id"] == "tanh_grad/values-float64")
    assert first["message"] == "inp.g has the wrong sign: d tanh(x)/dx is 1 - tanh(x)^2"
    assert target_mistakes(reports["input"], "tanh_grad") == {"tanh_grad.uses_input",
                                                              "tanh_grad.wrong_values"}


def test_the_self_check_of_a_new_lesson_runs_the_same_checks(lessons_root):
    namespace: dict = {}
    exec("import torch\n" + RIGHT, namespace)
    report = run_self_check("tanh_grad", namespace["tanh_grad"], device="cpu", lesson="tanh")
    assert report.passed and report.score == 2
    exec("import torch\n" + SIGN_FLIPPED, namespace)
    report = run_self_check("tanh_grad", namespace["tanh_grad"], device="cpu", lesson="tanh")
    assert report.mistakes("tanh_grad") == ["tanh_grad.sign_flipped", "tanh_grad.wrong_values"]


@pytest.mark.sandbox
def test_a_misspelt_hook_is_one_line_for_the_lesson_author(tmp_path, monkeypatch):
    folder = write_lesson(tmp_path / "lessons", ratios_hook="named_ratio")
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(tmp_path / "lessons"))
    nbformat.write(tanh.notebook(RIGHT), tmp_path / "answer.ipynb")
    done = run_cli("check", str(tmp_path / "answer.ipynb"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"autograder: {folder / 'lesson.py'}: Tanh.named_ratio is not a hook "
                           "of the lesson API: did you mean named_ratios?\n")


def test_a_hook_with_other_parameters_is_one_line_too(tmp_path):
    folder = write_lesson(tmp_path / "lessons")
    text = (folder / "lesson.py").read_text().replace("def named_ratios(self, target, name, n)",
                                                       "def named_ratios(self, target, n)")
    (folder / "lesson.py").write_text(text)
    with pytest.raises(lessons.LessonError, match=r"Tanh.named_ratios takes \(self, target, n\); "
                                                  r"the hook takes \(self, target, name, n\)"):
        lessons.load(folder).code()


def test_a_lesson_py_without_its_class_is_one_line_for_the_lesson_author(tmp_path):
    # Hooks as module-level functions (as the lessons had them before the class) are no longer
    # read in silence: the author reads what is missing, in one line.
    folder = write_lesson(tmp_path / "lessons")
    (folder / "lesson.py").write_text(
        "import torch\n\n\ndef tanh(inp):\n    return torch.tanh(inp)\n\n\n"
        "def named_ratios(target, name, n):\n"
        "    return [(-1.0, ('tanh_grad.sign_flipped',), 'd tanh(x)/dx is 1 - tanh(x)^2')]\n")
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder).code()
    assert str(raised.value) == (f"{folder / 'lesson.py'} must define one subclass of "
                                 "autograder.lesson_api.LessonCode (it defines none)")


@pytest.mark.parametrize("checks, said", [
    ('"gradients"', "tanh_grad's checks 'gradients' are no set of checks: one of gradient"),
    ('[{ name = "p", weight = 1, kind = "probe", cases = [{ n = 1 }] }]',
     "check 'p' of tanh_grad: a probe check is for a probe target"),
])
def test_a_spec_naming_checks_it_cannot_have_is_one_line(tmp_path, checks, said):
    folder = write_lesson(tmp_path / "lessons")
    (folder / "lesson.toml").write_text(LESSON_TOML.replace('checks = "gradient"',
                                                            f"checks = {checks}"))
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder)
    assert str(raised.value) == f"{folder / 'lesson.toml'}: {said}"
