"""Gradescope: `results.json` as Gradescope's autograder spec has it, and `run_autograder`'s entry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import gradescope, samples
from autograder.course.gradescope import results
from autograder.present.report import CheckResult, Report
from tests.conftest import CORRECT

REPO = Path(__file__).resolve().parents[2]


def check_spec(data: dict) -> None:
    """The fields Gradescope reads, with the types it expects."""
    assert isinstance(data["score"], float) and isinstance(data["output"], str)
    assert data["visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
    assert data["stdout_visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
    for test in data["tests"]:
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert test["status"] in {"passed", "failed"}
        assert test["visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
    json.dumps(data)


def test_a_report_becomes_one_test_per_target_with_a_line_per_mistake():
    half = "inp.g is half of the true gradient"
    report = Report([
        CheckResult("mse_grad/values-float64", "mse_grad", False, 0.0, 1.0, half,
                    ["mse_grad.missing_factor_2"]),
        CheckResult("mse_grad/values-float32", "mse_grad", False, 0.0, 0.5, half + " (float32)",
                    ["mse_grad.missing_factor_2"]),
        CheckResult("mse_grad/batch-of-one", "mse_grad", True, 0.5, 0.5, "a batch of one works"),
        CheckResult("relu_grad/values-float64", "relu_grad", True, 2.0, 2.0, "right"),
    ], notes=["cell 3 raised NameError"])
    data = results(report)
    check_spec(data)
    assert data["score"] == 2.5
    assert [(t["name"], t["score"], t["max_score"], t["status"]) for t in data["tests"]] == [
        ("mse_grad", 0.5, 2.0, "failed"), ("relu_grad", 2.0, 2.0, "passed")]
    said = data["tests"][0]["output"]
    assert said.splitlines() == [
        "2 of 3 checks fail",
        "FAIL values-float64, values-float32: in values-float64, inp.g is half of the true",
        "     gradient", "     mistakes: mse_grad.missing_factor_2", "pass: batch-of-one"]
    assert data["tests"][1]["output"] == "all 1 checks pass: values-float64"
    assert "NameError" in data["output"]


def test_an_ungradable_submission_is_one_failed_test_with_the_reason():
    data = results(None, "backward.ipynb is not a notebook", max_score=10)
    check_spec(data)
    assert data["score"] == 0.0 and data["tests"][0]["max_score"] == 10.0
    assert "not a notebook" in data["output"]


def run_autograder_entry(submission: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "autograder.course.gradescope", str(submission),
                           str(out)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    check_spec(data)
    return data


@pytest.mark.sandbox
def test_run_autograder_on_a_broken_upload(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "backward.ipynb").write_text("{oops")
    data = run_autograder_entry(tmp_path / "sub", tmp_path / "results" / "results.json")
    assert data["score"] == 0.0 and "not valid JSON" in data["output"]
    assert isinstance(data["execution_time"], float)


@pytest.mark.slow
def test_run_autograder_grades_the_notebook_with_the_engine(tmp_path, make_notebook):
    sub = tmp_path / "sub"
    sub.mkdir()
    make_notebook(name="sub/backward.ipynb")
    data = run_autograder_entry(sub, tmp_path / "results.json")
    assert data["score"] == 10.0 and all(t["status"] == "passed" for t in data["tests"])


def test_the_scripts_gradescope_runs_are_there():
    for name in ("setup.sh", "run_autograder"):
        script = REPO / "gradescope" / name
        assert script.is_file() and script.stat().st_mode & 0o111
    assert "autograder.course.gradescope" in (REPO / "gradescope" / "run_autograder").read_text()


# --- the lesson is the instructor's to choose, not the notebook's ---------------------------------

def test_a_notebook_that_names_another_lesson_in_its_metadata_stays_in_its_own(released, tmp_path):
    # A student who has solved the other lesson sets its id in the metadata: the answer cells
    # say which lesson the notebook is, and the metadata only breaks a tie.
    from autograder.lesson.model import for_notebook

    nb = samples.fill(released, CORRECT)
    nb["metadata"]["autograder"] = {"lesson": "classifier"}
    assert for_notebook(nb).id == "backward"


@pytest.mark.sandbox
def test_another_lessons_notebook_is_refused_in_one_line_naming_both_lessons(tmp_path):
    # A solved notebook of the other lesson, uploaded to the backward assignment: not graded,
    # and the student reads why (not "mse_grad is not defined").
    from autograder.lesson import model as lessons

    classifier = lessons.find("classifier")
    folder = tmp_path / "submission"
    answers = samples.of(classifier).CORRECT
    source = json.loads(classifier.source_path.read_text())
    samples.write(samples.fill(source, answers), folder / "classifier.ipynb")
    out = tmp_path / "results.json"
    assert gradescope.main([str(folder), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    said = ("classifier.ipynb is the notebook of lesson classifier, and this assignment is lesson "
            "backward: upload your backward.ipynb")
    assert data["score"] == 0.0 and data["output"] == f"Not graded: {said}"
    assert [t["output"] for t in data["tests"]] == [said]
    assert "not defined" not in json.dumps(data)
    assert gradescope.main([str(folder), str(out), "classifier"]) == 0
    assert json.loads(out.read_text())["score"] == 6.0


@pytest.mark.sandbox
def test_of_two_notebooks_the_one_with_answers_is_graded_and_both_are_named(tmp_path, released):
    # A student uploads the blank notebook and the copy Jupyter made, where they worked.
    folder = tmp_path / "submission"
    samples.write(released, folder / "backward.ipynb")
    samples.write(samples.fill(released, CORRECT), folder / "backward-Copy1.ipynb")
    out = tmp_path / "results.json"
    assert gradescope.main([str(folder), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    check_spec(data)
    assert data["score"] == 10.0
    assert data["output"].splitlines()[:2] == [
        "graded: backward-Copy1.ipynb",
        "not graded: backward.ipynb: 0 of 4 answers written, fewer than backward-Copy1.ipynb's 4"]
    # Both with answers: the one named as the assignment's is graded, and the other named.
    samples.write(samples.fill(released, {"mse_grad": CORRECT["mse_grad"]}),
                  folder / "backward.ipynb")
    samples.write(samples.fill(released, {"mse_grad": CORRECT["mse_grad"]}),
                  folder / "backward-Copy1.ipynb")
    assert gradescope.main([str(folder), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    assert data["score"] == 2.0
    assert data["output"].splitlines()[:3] == [  # within 88 columns, as every line
        "graded: backward.ipynb", "not graded: backward-Copy1.ipynb: as many answers as "
                                  "backward.ipynb: one is graded,", "    upload only it"]


@pytest.mark.sandbox
def test_students_see_one_test_per_target_each_mistake_once(tmp_path, released):
    folder = tmp_path / "submission"
    no_factor_2 = ("def mse_grad(inp, targ):\n"
                   "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
    samples.write(samples.fill(released, {**CORRECT, "mse_grad": no_factor_2}),
                  folder / "backward.ipynb")
    out = tmp_path / "results.json"
    assert gradescope.main([str(folder), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    check_spec(data)
    assert [t["name"] for t in data["tests"]] == ["mse_grad", "relu_grad", "lin_grad",
                                                  "module_backward"]
    assert [t["status"] for t in data["tests"]] == ["failed", "passed", "passed", "passed"]
    mse = data["tests"][0]
    assert (mse["score"], mse["max_score"], data["score"]) == (0.0, 2.0, 8.0)
    assert mse["output"].count("mse_grad.missing_factor_2") == 1
    assert mse["output"].count("inp.g is half of the true gradient") == 1
    assert "graded:" not in data["output"]  # one notebook: nothing to say of which


# --- what Gradescope hands in is read as `grade` reads it: no link, no FIFO, nothing huge --------

def bounded_entry(submission: Path, out: Path, seconds: float = 120) -> dict:
    """`run_autograder`'s entry on `submission`: it must end by itself, well within `seconds`
    (a generous bound, for a busy machine: the refusals take well under one), and within 2 GiB of
    address space (so that reading /dev/zero fails fast rather than filling the machine)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    done = subprocess.run([sys.executable, "-m", "autograder.course.gradescope", str(submission),
                           str(out), "backward"], capture_output=True, text=True, cwd=REPO,
                          timeout=seconds, preexec_fn=limit)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    check_spec(data)
    return data


def hand_in(kind: str, submission: Path, elsewhere: Path) -> None:
    """A submission whose `backward.ipynb` is `kind` (the source notebook, solutions and all,
    scored 10/10 through a link)."""
    import os

    source = REPO / "assignments" / "backward" / "backward.ipynb"
    if kind == "a link to another file":
        (submission / "backward.ipynb").symlink_to(source)
    elif kind == "a link to /dev/zero":
        (submission / "backward.ipynb").symlink_to("/dev/zero")
    elif kind == "a FIFO":
        os.mkfifo(submission / "backward.ipynb")
    elif kind == "a link on the way":
        (elsewhere / "backward.ipynb").write_bytes(source.read_bytes())
        (submission / "work").symlink_to(elsewhere, target_is_directory=True)
    elif kind == "over the cap":
        with open(submission / "backward.ipynb", "wb") as f:
            f.truncate(21 << 20)  # sparse: 21 MiB to read, none on disk


REFUSED = {
    "a link to another file": "backward.ipynb is a link: links in a submission are not graded",
    "a link to /dev/zero": "backward.ipynb is a link: links in a submission are not graded",
    "a FIFO": "backward.ipynb is not a plain file",
    "a link on the way": "no backward.ipynb in the submission (work is a link: links in a "
                         "submission are not followed): upload your notebook",
    "over the cap": "backward.ipynb is larger than 20 MiB",
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_gradescope_reads_no_link_fifo_or_huge_file_and_says_why(tmp_path, kind):
    submission, elsewhere = tmp_path / "submission", tmp_path / "elsewhere"
    submission.mkdir()
    elsewhere.mkdir()
    hand_in(kind, submission, elsewhere)
    data = bounded_entry(submission, tmp_path / "results" / "results.json")
    assert data["score"] == 0.0
    assert data["output"] == f"Not graded: {REFUSED[kind]}"
    assert data["tests"] == [{"name": "the notebook can be graded", "score": 0.0,
                              "max_score": 10.0, "status": "failed", "output": REFUSED[kind],
                              "visibility": "visible"}]


def test_gradescope_writes_results_json_even_when_the_grader_fails(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk\nis full")

    monkeypatch.setattr(gradescope, "find_submission", broken)
    out = tmp_path / "results.json"
    assert gradescope.main([str(tmp_path), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    check_spec(data)
    assert data["score"] == 0.0
    assert data["output"] == ("Not graded: the grader failed: RuntimeError: the disk is full: "
                              "tell your instructor")


def run_script(tmp_path: Path, python: str) -> dict:
    """`gradescope/run_autograder` as Gradescope runs it, in a stand-in of its /autograder."""
    import os

    root, bin_dir = tmp_path / "autograder", tmp_path / "bin"
    (root / "submission").mkdir(parents=True)
    (root / "source").symlink_to(REPO)
    os.mkfifo(root / "submission" / "backward.ipynb")
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f"#!/bin/sh\nexec {python} \"$@\"\n")
    (bin_dir / "python3").chmod(0o755)
    env = {**os.environ, "GRADESCOPE_ROOT": str(root),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(REPO / "gradescope" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert isinstance(data["score"], float) and isinstance(data["output"], str)
    return data


def test_run_autograder_refuses_a_fifo_and_says_why(tmp_path):
    data = run_script(tmp_path, sys.executable)
    assert data["score"] == 0.0 and data["output"] == "Not graded: backward.ipynb is not a plain file"


def test_run_autograder_writes_results_json_when_python_itself_fails(tmp_path):
    data = run_script(tmp_path, "/bin/false")
    assert data["score"] == 0.0
    assert data["output"] == "Not graded: the grader stopped before it wrote its results"


def test_each_notebook_not_graded_is_named_with_why():
    from autograder.course.gradescope import Upload, choose
    from autograder.lesson import model as lessons

    link = "backward.ipynb is a link: links in a submission are not graded"
    uploads = [Upload("backward.ipynb", problem=link),
               Upload("scratch.ipynb", nb={}),
               Upload("work/backward (1).ipynb", nb={}, lesson="backward", answered=4, cells=4),
               Upload("old.ipynb", nb={}, lesson="backward", answered=2, cells=4),
               Upload("classifier.ipynb", nb={}, lesson="classifier")]
    best, why, reason = choose(uploads, lessons.find("backward"), ["backward.ipynb"])
    assert best.name == "work/backward (1).ipynb" and reason == ""
    assert why == [("backward.ipynb", link),
                   ("scratch.ipynb", "none of the lesson's answer cells"),
                   ("old.ipynb", "2 of 4 answers written, fewer than work/backward (1).ipynb's 4"),
                   ("classifier.ipynb", "the notebook of lesson classifier")]


def test_a_gradescope_test_says_the_checks_that_wait_as_waiting_not_failed():
    half = "inp.g is half of the true gradient"
    report = Report([
        CheckResult("mse_grad/values-float64", "mse_grad", False, 0.0, 1.0, half,
                    ["mse_grad.missing_factor_2"]),
        CheckResult("mse_grad/inputs-unchanged", "mse_grad", False, 0.0, 0.5, half,
                    ["mse_grad.missing_factor_2"], state="waiting", waits_for="values-float64"),
        CheckResult("mse_grad/no-autograd", "mse_grad", True, 0.0, 0.0, "written by hand"),
    ])
    said = results(report)["tests"][0]["output"].splitlines()
    assert said == ["1 of 3 checks fail, 1 waits",
                    f"FAIL values-float64: {half}", "     mistakes: mse_grad.missing_factor_2",
                    "waiting for the right values (values-float64): inputs-unchanged",
                    "pass: no-autograd"]


def test_every_line_a_student_reads_on_gradescope_is_within_88_columns():
    long = ("in values-float64, w.g has shape (4, 5), the transpose of w's (5, 4): w.g = inp.t() "
            "@ out.g has w's shape; b.g has shape (3, 4) but b has shape (4,): b is added to "
            "every row, so sum out.g over the batch, out.g.sum(0)")
    codes = ["lin_grad.weight_transposed", "lin_grad.bias_not_summed", "lin_grad.wrong_shape"]
    report = Report([
        CheckResult("lin_grad/values-float64", "lin_grad", False, 0.0, 1.0, long, codes),
        *(CheckResult(f"relu_grad/{name}", "relu_grad", True, 0.5, 0.5, "right")
          for name in ("no-autograd", "values-float64", "batch-of-one", "values-float32",
                       "inputs-unchanged", "gpu-ready"))],
        notes=["your code keeps tensors on their device (checked with stand-in CUDA tensors, "
               "no GPU needed)"])
    data = results(report, graded="backward.ipynb",
                   ignored=[("backward-Copy1.ipynb", "as many answers as backward.ipynb: one is "
                                                     "graded, upload only it")])
    said = [data["output"], *(t["output"] for t in data["tests"])]
    assert all(len(line) <= 88 for text in said for line in text.splitlines()), said
    assert "(3, 4) but b" in data["tests"][0]["output"]  # a shape kept whole
    assert data["tests"][1]["output"].startswith("all 6 checks pass: no-autograd, ")


@pytest.mark.slow
def test_run_autograder_gives_the_attacks_of_round_4_nothing(tmp_path, make_notebook):
    from tests.support.cheats import ROUND_4, ROUND_4_COMPUTED

    for how, answers in (("read", ROUND_4), ("computed", ROUND_4_COMPUTED)):
        sub = tmp_path / how
        sub.mkdir()
        make_notebook(answers, name=f"{how}/backward.ipynb")
        data = run_autograder_entry(sub, tmp_path / f"{how}.json")
        assert data["score"] == 3.0, data["output"]  # module_backward, right; the rest 0
