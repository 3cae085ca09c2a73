"""What a failure of the grader's own, trusted side looks like: to a student, one line and the
contract's exit code, never a traceback; a wrong reference, to the instructor alone, once."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from autograder import engine
from autograder.cli import app
from autograder.course import gradescope
from autograder.lesson import model as lessons
from autograder.present.report import REFERENCE_NOTE, for_students
from tests.conftest import REPO

LESSON_IDS = ("backward", "classifier")


def broken_trusted_side(*args, **kwargs):
    raise RuntimeError("the lesson's prepare broke\n  on its second line")


def test_check_says_a_failure_of_the_trusted_side_in_one_line_and_exits_2(monkeypatch):
    monkeypatch.setattr(engine, "check_parsed", broken_trusted_side)
    source = REPO / "assignments" / "classifier" / "classifier.ipynb"
    said = "the grader failed: RuntimeError: the lesson's prepare broke on its second line"
    for args in (["check", str(source)], ["check", str(source), "--json"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [f"autograder: {said}"]
        if "--json" in args:  # the error object, for a script
            assert json.loads(result.stdout) == {"error": said, "file": str(source)}
        else:
            assert result.stdout == ""


def test_gradescope_says_a_failure_of_the_trusted_side_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(engine, "check_parsed", broken_trusted_side)
    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(REPO / "assignments" / "classifier" / "classifier.ipynb", folder)
    out = tmp_path / "results.json"
    assert gradescope.main([str(folder), str(out), "classifier"]) == 0
    data = json.loads(out.read_text())
    assert data["score"] == 0
    said = json.dumps(data)
    assert "the grader failed: RuntimeError: the lesson's prepare broke" in said
    assert "Traceback" not in said


@pytest.mark.sandbox
@pytest.mark.parametrize("lesson_id", LESSON_IDS)
def test_the_solutions_get_full_marks_on_the_seeds_that_once_failed(lesson_id):
    path = REPO / "assignments" / lesson_id / f"{lesson_id}.ipynb"
    for seed in (932, 2074, 2117):
        report = engine.check_notebook(path, seed=seed, warm=True)
        assert report.score == report.max_score, (seed, [c.message for c in report.checks
                                                         if not c.passed])
        assert not [n for n in report.notes if n.startswith(REFERENCE_NOTE)]


@pytest.mark.sandbox
def test_a_wrong_reference_costs_the_student_nothing_and_tells_the_instructor(tmp_path):
    folder = shutil.copytree(REPO / "assignments" / "classifier", tmp_path / "lessons" / "classifier")
    solutions = shutil.copytree(REPO / "solutions" / "classifier", tmp_path / "solutions" / "classifier")
    reference = solutions / "reference.py"
    reference.write_text(reference.read_text().replace(
        "inp.g = out.g - out.exp() * out.g.sum(-1, keepdim=True)", "inp.g = out.g.clone()"))
    lesson = lessons.load(folder)
    path = REPO / "assignments" / "classifier" / "classifier.ipynb"
    report = engine.check_notebook(path, seed=5, warm=True, lesson=lesson)
    assert report.score == report.max_score
    said = [n for n in report.notes if n.startswith(REFERENCE_NOTE)]
    assert len(said) == 1 and "classifier's reference log_softmax_grad disagrees" in said[0]
    assert not for_students(said[0])


NOTE = (f"{REFERENCE_NOTE} classifier's reference log_softmax_grad disagrees with autograd on "
        "inp.g in large-logits case 2 (float32): graded against torch.autograd alone, no student "
        "affected; fix it in the lesson's reference.py")


def test_grades_summary_tells_the_instructor_once_per_wrong_reference(tmp_path):
    from rich.console import Console

    from autograder.course.grade import Outcome
    from autograder.course.show import print_class
    from autograder.present.report import CheckResult, Report

    def outcome(student: str, notes: list[str]) -> Outcome:
        check = CheckResult("log_softmax_grad:values", "log_softmax_grad", True, 3.0, 3.0, "ok")
        return Outcome(student, 3.0, 3.0, Report([check], notes=notes), "classifier")

    console = Console(record=True, width=300)
    print_class([outcome("ada", [NOTE, "sandbox: pid namespace"]), outcome("bob", [NOTE]),
                 outcome("cy", ["sandbox: pid namespace"])], tmp_path, console)
    lines = console.export_text().splitlines()
    said = [line for line in lines if REFERENCE_NOTE in line]
    assert said == [f"for the instructor (2 submission(s)): {NOTE}"]
    assert sum(line.count("3 / 3") for line in lines) == 3  # the students' scores, unaffected


def test_the_class_report_tells_the_instructor_once_per_wrong_reference(tmp_path):
    from rich.console import Console

    from autograder.course import classreport
    from autograder.present.report import CheckResult, Report

    check = CheckResult("log_softmax_grad:values", "log_softmax_grad", True, 3.0, 3.0, "ok")
    for student in ("ada", "bob"):
        classreport.keep(tmp_path, "classifier", student,
                         Report([check], notes=[NOTE, "sandbox: pid namespace"]), None)
    kept = classreport.read_kept(tmp_path, "classifier", "ada")
    assert kept.reference == [NOTE]
    rows = [classreport.Row(s, 3.0, 3.0, {"log_softmax_grad": (3.0, 3.0)}, k.checks,
                            reference=k.reference)
            for s, k in (("ada", kept), ("bob", kept),
                         ("cy", classreport.Kept(None, kept.checks)))]
    report = classreport.ClassReport(tmp_path, "classifier", ["log_softmax_grad"], rows)
    assert report.reference_notes() == {NOTE: ["ada", "bob"]}
    page = classreport.page(report)
    assert page.count("fix it in the lesson&#39;s reference.py") == 1
    assert "For the instructor</strong> (2 of 3 submissions)" in page
    console = Console(record=True, width=400)
    classreport.print_summary(report, console)
    said = [line for line in console.export_text().splitlines() if REFERENCE_NOTE in line]
    assert said == [f"for the instructor (2 of 3 submissions): {NOTE}"]
