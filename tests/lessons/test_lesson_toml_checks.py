"""A mistake in lesson.toml is one line when the lesson loads, naming the file, the key and
where it is (and, for a misspelling, the nearest valid key): never a late credit error, nor
"the grader failed: KeyError" at every submission (issue 34, item 7).

Each test copies the backward lesson (and its solutions, where a lesson's solutions live) and
makes one mistake an author made.
"""

from __future__ import annotations

import json
import shutil

import pytest

from autograder.course.release import ReleaseError, release
from autograder.lesson import model as lessons
from tests.conftest import REPO, run_cli


@pytest.fixture
def backward(tmp_path):
    folder = tmp_path / "lessons" / "backward"
    shutil.copytree(REPO / "assignments" / "backward", folder)
    shutil.copytree(REPO / "solutions" / "backward", tmp_path / "solutions" / "backward")
    return folder


def edited(folder, old: str, new: str):
    spec = folder / "lesson.toml"
    text = spec.read_text()
    assert text.count(old) >= 1, old
    spec.write_text(text.replace(old, new, 1))
    return spec


def refusal(folder) -> str:
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder)
    said = str(raised.value)
    assert "\n" not in said
    return said


def test_the_bundled_lessons_load_as_they_are(backward):
    assert lessons.load(backward).names == lessons.load(REPO / "assignments" / "backward").names
    assert lessons.load(REPO / "assignments" / "classifier").names == ("nll_grad", "log_softmax_grad")


MISSPELT = [
    # (what the lesson says, the author's misspelling, the key, where, the suggestion)
    ('name = "one-input"\nweight = 1', 'name = "one-input"\nweigth = 1', "weigth",
     "a check of [[checkset.probe]]", "weight"),
    ("[tolerances]", "[toleranse]", "toleranse", "the top level", "tolerances"),
    ('collect = ["inp"]\nchecks = "gradient"', 'colect = ["inp"]\nchecks = "gradient"', "colect",
     "target mse_grad", "collect"),
    ('forward = { name = "relu", of = ["inp"], upstream = "out.g" }',
     'forward = { name = "relu", of = ["inp"], upsteam = "out.g" }', "upsteam",
     "the forward of target relu_grad", "upstream"),
    ("float32 = 1e-4", "flaot32 = 1e-4", "flaot32", "[tolerances]", "float32"),
    ('derived = { out = { forward = "lin", of', 'derived = { out = { froward = "lin", of',
     "froward", "derived 'out' of target lin_grad", "forward"),
    ('cases = [{ n = 1 }]', 'cases = [{ n = 1, dtyp = "float32" }]', "dtyp",
     "a case of check 'one-input' of target module_backward", "dtype"),
    ('summaries = { "values-float64"', 'summaries = { "values-flaot64"', "values-flaot64",
     "the summaries of target relu_grad", "values-float64"),
]


@pytest.mark.parametrize(("old", "new", "key", "where", "meant"), MISSPELT,
                         ids=[m[2] for m in MISSPELT])
def test_a_misspelt_key_is_one_line_naming_it_the_file_and_the_nearest_key(
        backward, old, new, key, where, meant):
    spec = edited(backward, old, new)
    said = refusal(backward)
    assert said.startswith(f"{spec}: unknown ")
    assert f"{key!r} in {where} (did you mean {meant!r}?)" in said


def test_a_check_without_its_weight_says_so(backward):
    spec = edited(backward, 'name = "latest-call"\nweight = 1\n', 'name = "latest-call"\n')
    assert refusal(backward) == (f"{spec}: a check of [[checkset.probe]] has no 'weight'")


def test_an_unknown_size_name_is_refused_when_the_lesson_loads(backward):
    """Before, every submission failed as "the grader failed: KeyError" when drawn."""
    spec = edited(backward, 'inputs = { inp = ["n", "n_out"]', 'inputs = { inp = ["n", "n_ot"]')
    said = refusal(backward)
    assert said == (f"{spec}: input 'inp' of target relu_grad names size 'n_ot', which a case of "
                    "its check 'values-float64' does not give (did you mean 'n_out'?): it gives "
                    "n, n_in, n_out")


def test_a_size_the_cases_leave_out_is_refused(backward):
    """A lesson's own checks whose cases give no size its shapes name."""
    edited(backward, 'name = "mse_grad"\npoints = 2', 'name = "mse_grad"\npoints = 2\n'
           'checks = [{ name = "one", weight = 1, kind = "values", cases = [{ n = 3 }] }]')
    spec = edited(backward, 'checks = "gradient"\ninputs = { inp = ["n", 1]',
                  'inputs = { inp = ["n", "width"]')
    assert refusal(backward) == (f"{spec}: input 'inp' of target mse_grad names size 'width', "
                                 "which a case of its check 'one' does not give: it gives n")


def misnamed_answer_cell(folder, grade_id: str, wrong: str):
    """The source notebook with the answer cell `grade_id` renamed `wrong`."""
    path = folder / "backward.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == grade_id:
            meta["grade_id"] = wrong
    path.write_text(json.dumps(nb))
    return path


def test_a_misspelt_grade_id_is_refused_at_release_before_the_course_is_touched(
        backward, tmp_path, monkeypatch):
    """Before, the lesson released, and the author's own solution scored 0 for mse_grad."""
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(backward.parent))
    source = misnamed_answer_cell(backward, "mse_grad", "mse_gard")
    course = tmp_path / "course"
    with pytest.raises(ReleaseError) as raised:
        release(course, assignment="backward")
    assert str(raised.value) == (
        f"{source}: the answer cell 'mse_gard' is no target of {backward / 'lesson.toml'} (did "
        "you mean 'mse_grad'?): its targets are mse_grad, relu_grad, lin_grad, module_backward")
    assert not course.exists()


def test_a_target_with_no_answer_cell_is_refused_at_release(backward, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(backward.parent))
    source = misnamed_answer_cell(backward, "lin_grad", "linear")
    with pytest.raises(ReleaseError) as raised:
        release(tmp_path / "course", assignment="backward")
    assert str(raised.value) == (
        f"{source} has no answer cell for target 'lin_grad' of {backward / 'lesson.toml'} (a code "
        "cell whose grade_id is 'lin_grad'); its answer cells that are no target: linear")


@pytest.mark.sandbox
def test_a_mistake_code_a_hook_gives_that_mistakes_lacks_fails_the_grading_in_one_line(
        backward, tmp_path, monkeypatch):
    """The codes of lesson.py's hooks are known only when they run: checked there, on the
    trusted side. Before, 'mse_grad.sign_flipped' reached the report, missing from the catalogue
    the class report explains codes with."""
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(backward.parent))
    spec = edited(backward, '"mse_grad.sign_flipped" =', '"mse_grad.sign_fliped" =')
    nb = json.loads((backward / "backward.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "mse_grad":
            cell["source"] = ("def mse_grad(inp, targ):\n"
                              "    inp.g = 2. * (targ.unsqueeze(-1) - inp) / inp.shape[0]\n")
    answer = tmp_path / "flipped.ipynb"
    answer.write_text(json.dumps(nb))
    done = run_cli("check", str(answer))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"autograder: {backward / 'lesson.py'}'s named_ratios gives the mistake code "
        f"'mse_grad.sign_flipped', which [mistakes] of {spec} does not list (did you mean "
        "'mse_grad.sign_fliped'?)"]
