"""A new lesson touches only its own folders: `autograder new-lesson ID` writes a working one (the
gradient of square) in the two folders a lesson is, and it is graded by the real `autograder
check`, right and wrong, with no line of the engine changed; it releases into a course, where
`grade` gives the reference full marks and the stub 0, and a student self-checks it from the
release folder alone.

The skeleton is what a lesson author starts from: lesson.toml names the engine's standard checks,
lesson.py holds the forward and one subclass of `autograder.lesson_api.LessonCode` (a named
ratio and a hook of its own), the notebook an answer cell and its self-check, solutions/ID a
reference and a sample class. The lesson is found as any is, on AUTOGRADER_LESSONS.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.lesson import model as lessons
from autograder.lesson import skeleton
from autograder.lesson.source import answer_cells_error
from autograder.selfcheck import run_self_check
from tests.conftest import run_cli, target_mistakes

ID = "squares"


def write_lesson(root: Path, lesson_id: str = ID) -> Path:
    """The skeleton in `root/lessons/<id>/` (its solutions in `root/solutions/<id>/`)."""
    return skeleton.write(lesson_id, root / "lessons")[0]


def answers(folder: Path) -> dict[str, str]:
    """The skeleton's sample answers by name: its right one, then each of its class's."""
    sample = samples.of(lessons.load(folder))
    return {"right": sample.CORRECT["square_grad"],
            **{name: entry[0].get("square_grad", sample.CORRECT["square_grad"])
               for name, entry in sample.CLASS.items()}}


def notebook(folder: Path, answer: str, path: Path) -> Path:
    """The lesson's source notebook with `answer` in its answer cell, as a student hands it in."""
    source = json.loads((folder / f"{folder.name}.ipynb").read_text())
    return samples.write(samples.fill(source, {"square_grad": answer}), path)


@pytest.fixture
def lessons_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "lessons"
    write_lesson(tmp_path)
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(root))
    return root


@pytest.mark.sandbox
def test_new_lesson_writes_a_lesson_and_its_solutions_and_says_what_next(tmp_path):
    done = run_cli("new-lesson", ID, cwd=tmp_path)
    lesson, solutions = tmp_path / "assignments" / ID, tmp_path / "solutions" / ID
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"wrote: {lesson} (lesson.toml, lesson.py, {ID}.ipynb)",
        f"wrote: {solutions} (reference.py, samples.py)",
        f'next: make it yours (docs/lessons.md, "Start a new lesson"), then '
        f"AUTOGRADER_LESSONS={lesson.parent} autograder release --course COURSE --assignment {ID}"]
    assert {p.name for p in lesson.iterdir()} == {f"{ID}.ipynb", "lesson.py", "lesson.toml"}
    assert sorted(p.name for p in solutions.iterdir()) == ["reference.py", "samples.py"]
    loaded = lessons.load(lesson)
    assert (loaded.id, loaded.notebook, loaded.names) == (ID, f"{ID}.ipynb", ("square_grad",))
    assert answer_cells_error(loaded) is None  # the notebook's answer cell is the target's
    assert loaded.reference_path == solutions / "reference.py"
    imported = {node.module for node in ast.walk(ast.parse((lesson / "lesson.py").read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert {m for m in imported if m.startswith("autograder")} == {"autograder.lesson_api"}
    cells = json.loads((lesson / f"{ID}.ipynb").read_text())["cells"]
    grade_cell = next(c for c in cells if c["metadata"].get("nbgrader", {}).get("grade"))
    assert grade_cell["metadata"]["nbgrader"]["grade_id"] == "check_square_grad"
    assert f'lesson="{ID}"' in "".join(grade_cell["source"])

    into = tmp_path / "[bold]elsewhere" / "mine"  # a path is said as it is, never as markup
    done = run_cli("new-lesson", "other", "--into", str(into), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"wrote: {into / 'other'} (lesson.toml, lesson.py, other.ipynb)"
    assert (into / "other" / "other.ipynb").is_file()
    assert (into.parent / "solutions" / "other" / "reference.py").is_file()


@pytest.mark.sandbox
@pytest.mark.parametrize("lesson_id, said", [
    (ID, "{root}/assignments/squares exists already: choose another id, or move it away"),
    ("my lesson", "'my lesson' is no lesson id: a letter, then letters, digits, _ or - (at most 64)"),
    ("../up", "'../up' is no lesson id: a letter, then letters, digits, _ or - (at most 64)"),
    ("backward", "'backward' is a lesson this install carries ({bundled}): choose another id"),
])
def test_new_lesson_refuses_in_one_line_and_writes_nothing(tmp_path, lesson_id, said):
    (tmp_path / "assignments" / ID).mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    done = run_cli("new-lesson", lesson_id, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "autograder: " + said.format(
        root=tmp_path, bundled=lessons.BUNDLED / "backward") + "\n"
    assert sorted(tmp_path.rglob("*")) == before


def test_a_solutions_folder_already_there_is_refused_too(tmp_path):
    (tmp_path / "solutions" / ID).mkdir(parents=True)
    with pytest.raises(skeleton.SkeletonError, match=f"^{tmp_path / 'solutions' / ID} exists"):
        skeleton.write(ID, tmp_path / "assignments")
    assert not (tmp_path / "assignments" / ID).exists()


@pytest.mark.sandbox
def test_a_new_lesson_grades_a_right_answer_and_names_a_typical_mistake(lessons_root, tmp_path):
    folder = lessons_root / ID
    reports = {}
    for label, answer in answers(folder).items():
        path = notebook(folder, answer, tmp_path / f"{label}.ipynb")
        done = run_cli("check", str(path), "--json")
        assert done.returncode == (0 if label == "right" else 1), done.stderr
        reports[label] = json.loads(done.stdout)
    right = reports["right"]
    assert (right["lesson"], right["score"], right["max_score"]) == (ID, 2, 2)
    assert not [n for n in right["notes"] if n.startswith("reference:")]  # it agrees with autograd
    assert [c["id"].split("/")[1] for c in right["checks"]] == [
        "no-autograd", "values-float64", "batch-of-one", "values-float32", "inputs-unchanged",
        "gpu-ready"]  # the engine's standard set
    half = reports["half"]
    assert half["score"] == 0
    assert target_mistakes(half, "square_grad") == {"square_grad.missing_factor_2",
                                                    "square_grad.wrong_values"}
    first = next(c for c in half["checks"] if c["id"] == "square_grad/values-float64")
    assert first["message"] == "inp.g is half of the true gradient: d(x^2)/dx is 2x"
    assert target_mistakes(reports["no_upstream"], "square_grad") == {
        "square_grad.ignores_upstream", "square_grad.wrong_values"}
    assert (reports["stub"]["score"], target_mistakes(reports["stub"], "square_grad")) == (
        0, {"square_grad.not_implemented"})


def test_the_self_check_of_a_new_lesson_runs_the_same_checks(lessons_root):
    said = answers(lessons_root / ID)
    namespace: dict = {}
    exec("import torch\n" + said["right"], namespace)
    report = run_self_check("square_grad", namespace["square_grad"], device="cpu", lesson=ID)
    assert report.passed and report.score == 2
    exec("import torch\n" + said["half"], namespace)
    report = run_self_check("square_grad", namespace["square_grad"], device="cpu", lesson=ID)
    assert report.mistakes("square_grad") == ["square_grad.missing_factor_2",
                                              "square_grad.wrong_values"]


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_new_lesson_releases_grades_and_self_checks_from_the_release_folder(
        lessons_root, tmp_path, monkeypatch):
    course = tmp_path / "course"
    done = run_cli("release", "--course", str(course), "--assignment", ID, "--no-exchange")
    released = course / "release" / ID / f"{ID}.ipynb"
    assert (done.returncode, done.stdout) == (0, f"released: {released}\n"), done.stderr
    nb = json.loads(released.read_text())
    samples.write_class(nb, course, lessons.load(lessons_root / ID))  # its sample class
    samples.write(nb, course / "submitted" / "as_released" / ID / f"{ID}.ipynb")  # nbgrader's stub
    done = run_cli("grade", "--course", str(course), "--workers", "1")
    assert done.returncode == 0, done.stderr
    from tests.course.test_course import csv_rows

    scores = {s: (row["score"], row["max_score"])
              for s, row in csv_rows(course / "grades.csv", ID).items()}
    assert scores == {"right": ("2.0", "2.0"), "half": ("0.0", "2.0"),
                      "no_upstream": ("0.0", "2.0"), "stub": ("0.0", "2.0"),
                      "as_released": ("0.0", "2.0")}

    fetched = shutil.copytree(course / "release" / ID, tmp_path / "student" / ID)
    monkeypatch.delenv("AUTOGRADER_LESSONS")  # the student's install knows no such lesson
    monkeypatch.chdir(fetched)  # a notebook's kernel runs in the notebook's folder
    namespace: dict = {}
    exec("import torch\n" + answers(lessons_root / ID)["right"], namespace)
    report = run_self_check("square_grad", namespace["square_grad"], device="cpu", lesson=ID)
    assert report.lesson == ID and report.passed


@pytest.mark.sandbox
def test_a_misspelt_hook_is_one_line_for_the_lesson_author(tmp_path, monkeypatch):
    folder = write_lesson(tmp_path)
    text = (folder / "lesson.py").read_text()
    (folder / "lesson.py").write_text(text.replace("def named_ratios(", "def named_ratio("))
    monkeypatch.setenv("AUTOGRADER_LESSONS", str(folder.parent))
    path = notebook(folder, answers(folder)["right"], tmp_path / "answer.ipynb")
    done = run_cli("check", str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"autograder: {folder / 'lesson.py'}: Hooks.named_ratio is not a hook "
                           "of the lesson API: did you mean named_ratios?\n")


def test_a_hook_with_other_parameters_is_one_line_too(tmp_path):
    folder = write_lesson(tmp_path)
    text = (folder / "lesson.py").read_text()
    start = text.index("def named_ratios(")
    end = text.index(")", start)
    (folder / "lesson.py").write_text(text[:start] + "def named_ratios(self, target, n"
                                      + text[end:])
    with pytest.raises(lessons.LessonError, match=r"Hooks.named_ratios takes \(self, target, n\); "
                                                  r"the hook takes \(self, target, name, n\)"):
        lessons.load(folder).code()


def test_a_lesson_py_without_its_class_is_one_line_for_the_lesson_author(tmp_path):
    # Hooks as module-level functions (as the lessons had them before the class) are no longer
    # read in silence: the author reads what is missing, in one line.
    folder = write_lesson(tmp_path)
    (folder / "lesson.py").write_text(
        "import torch\n\n\ndef square(inp):\n    return inp * inp\n\n\n"
        "def named_ratios(target, name, n):\n"
        "    return [(0.5, ('square_grad.missing_factor_2',), 'd(x^2)/dx is 2x')]\n")
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder).code()
    assert str(raised.value) == (f"{folder / 'lesson.py'} must define one subclass of "
                                 "autograder.lesson_api.LessonCode (it defines none)")


@pytest.mark.parametrize("checks, said", [
    ('"gradients"', "square_grad's checks 'gradients' are no set of checks: one of gradient"),
    ('[{ name = "p", weight = 1, kind = "probe", cases = [{ n = 1 }] }]',
     "check 'p' of square_grad: a probe check is for a probe target"),
])
def test_a_spec_naming_checks_it_cannot_have_is_one_line(tmp_path, checks, said):
    folder = write_lesson(tmp_path)
    spec = folder / "lesson.toml"
    assert 'checks = "gradient"' in spec.read_text()
    spec.write_text(spec.read_text().replace('checks = "gradient"', f"checks = {checks}"))
    with pytest.raises(lessons.LessonError) as raised:
        lessons.load(folder)
    assert str(raised.value) == f"{spec}: {said}"


def test_the_wheel_carries_every_template():
    # A pip-installed instructor's `new-lesson` reads them from the package (tests/project/
    # test_wheel.py builds the wheel; here, what its package data names).
    from fnmatch import fnmatch

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((Path(skeleton.__file__).parents[2] / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["autograder.lesson"]
    used = {*skeleton.LESSON_FILES.values(), *skeleton.SOLUTION_FILES.values()}
    assert used == {p.name for p in skeleton.TEMPLATE.iterdir()}
    assert [name for name in used
            if not any(fnmatch(f"template/{name}", p) for p in patterns)] == []
