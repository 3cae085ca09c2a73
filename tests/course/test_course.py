"""`autograder grade` on a real nbgrader course (real nbgrader, no mocks): what an instructor sees.

One class is released, handed in and graded once per test run (shared by the xdist workers);
tests that change it (regrade, manual override, stock `nbgrader autograde`) work on a copy.
"""

from __future__ import annotations

import csv
import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from filelock import FileLock
from nbconvert.exporters import HTMLExporter
from nbgrader.api import Gradebook

from autograder.course import put_python_on_path, samples
from autograder.course.config import course_config
from autograder.course.feedback import FeedbackPage, readable, targets_of
from autograder.course.grade import grade_course
from autograder.course.release import release
from tests.conftest import BACKWARD, CLASS, CORRECT, run_cli
from tests.support.cheats import ROUND_4

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}
NO_FACTOR_2 = {"mse_grad": "def mse_grad(inp, targ):\n"
                           "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]\n"}
NBFORMAT_3 = json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                         "worksheets": [{"cells": []}]}).encode()
#: Student -> why it cannot be graded (a word the reason must contain), for the broken ones.
BROKEN = {"notjson": (b"hello", "not valid JSON"), "empty": (b"", "is empty"),
          "old": (NBFORMAT_3, "nbformat 3"), "list": (b"[1, 2]", "not an object"),
          "cellsnotlist": (b'{"nbformat": 4, "cells": 3}', "no list of cells")}
GRADED = ["alice", "bob", "carl", "mallory", "tamper", "twin"]
#: Made by `hand_in`, each not gradable, with a word its reason must hold.
ODD = {"missing": "no backward.ipynb", "dup": "mse_grad", "badstamp": "timestamp.txt is not a date"}
STUDENTS = sorted([*GRADED, *BROKEN, *ODD])
DUE = "2026-01-10 12:00:00"


def hand_in(course: Path, released: dict) -> None:
    samples.write_class(released, course, BACKWARD, {"alice": ({}, []), "bob": (NO_FACTOR_2, []),
                                           "carl": ({}, []),
                                           "mallory": (ROUND_4, [])})  # autograd by the frames
    # Late: nbgrader reads timestamp.txt and the due date in the gradebook.
    (course / "submitted" / "carl" / "backward" / "timestamp.txt").write_text("2026-01-11 12:00:00 UTC")
    samples.write_class(released, course, BACKWARD, {"badstamp": ({}, [])})
    (course / "submitted" / "badstamp" / "backward" / "timestamp.txt").write_text("yesterday-ish")
    # A Jupyter copy of the mse_grad cell (same grade_id), the answer in the copy, as students do.
    nb = samples.fill(released, CORRECT)
    index = next(i for i, c in enumerate(nb["cells"])
                 if c["metadata"].get("nbgrader", {}).get("grade_id") == "mse_grad")
    stub = json.loads(json.dumps(nb["cells"][index]))
    stub["source"] = "def mse_grad(inp, targ):\n    raise NotImplementedError()\n"
    nb["cells"].insert(index, stub)
    samples.write(nb, course / "submitted" / "dup" / "backward" / "backward.ipynb")
    # Two cells with the same nbformat id: nbformat gives one a new id, and it is graded.
    nb = samples.fill(released, CORRECT)
    nb["cells"][1]["id"] = nb["cells"][0]["id"]
    samples.write(nb, course / "submitted" / "twin" / "backward" / "backward.ipynb")
    # A locked test cell rewritten, its points raised: nbgrader's OverwriteCells puts both back.
    nb = samples.fill(released, CORRECT)
    test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id")
                == "check_mse_grad")
    test["source"], test["metadata"]["nbgrader"]["points"] = "assert True\n", 100
    samples.write(nb, course / "submitted" / "tamper" / "backward" / "backward.ipynb")
    samples.write_class(released, course, BACKWARD, {name: raw for name, (raw, _) in BROKEN.items()})
    other = course / "submitted" / "missing" / "backward" / "Backward (1).ipynb"
    samples.write(released, other)


@pytest.fixture(scope="session")
def graded(tmp_path_factory, worker_id) -> tuple[Path, str]:
    """A released course, a class handed in, `autograder grade` run once: (course, its stdout)."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if worker_id != "master" else root
    course = root / "graded-class"
    with FileLock(str(root / "graded-class.lock")):
        done = course / "cli-stdout.txt"
        if not done.is_file():
            shutil.rmtree(course, ignore_errors=True)
            released = json.loads(release(course, assignment="backward")[0].read_text())
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
                gb.update_or_create_assignment("backward", duedate=DUE)
            hand_in(course, released)
            run = run_cli("grade", "--course", str(course), "--workers", "2", "--gradescope")
            assert run.returncode == 0, run.stderr
            done.write_text(run.stdout)
    return course, done.read_text()


def grades(course: Path, student: str) -> dict[str, tuple[float | None, float | None]]:
    """(auto_score, manual_score) per target, as nbgrader's gradebook holds them."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        nb = gb.find_submission_notebook("backward", "backward", student)
        return {g.name.removeprefix("check_"): (g.auto_score, g.manual_score) for g in nb.grades}


def csv_rows(path: Path, assignment: str = "backward") -> dict[str, dict]:
    with path.open() as f:
        return {row["student_id"]: row for row in csv.DictReader(f)
                if row["assignment"] == assignment}


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    put_python_on_path()
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          capture_output=True, text=True)


def copy(graded, tmp_path) -> Path:
    return Path(shutil.copytree(graded[0], tmp_path / "course"))


def test_the_table_shows_every_student_and_where_the_feedback_is(graded):
    course, stdout = graded
    for student in STUDENTS:
        assert student in stdout
    assert "10 / 10" in stdout and "8 / 10" in stdout
    assert "not graded" in stdout and "feedback pages" in stdout
    assert str(course / "feedback") in stdout


def test_scores_are_in_the_gradebook_per_grade_cell(graded):
    course, _ = graded
    assert grades(course, "alice") == {t: (p, None) for t, p in FULL.items()}
    bob = grades(course, "bob")
    assert bob["mse_grad"] == (0.0, None)
    assert {t: s for t, (s, _) in bob.items() if t != "mse_grad"} == {
        t: p for t, p in FULL.items() if t != "mse_grad"}


def test_the_graded_notebook_shows_the_report_and_the_score_nbgrader_reads(graded):
    course, _ = graded
    nb = json.loads((course / "autograded" / "bob" / "backward" / "backward.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "check_mse_grad")
    # One line per distinct mistake, naming the checks it covers, its codes on a line of their own.
    text = "".join(cell["outputs"][0]["data"]["text/plain"])
    assert text.startswith("mse_grad: 0 / 2") and text.count("FAIL ") == 1
    assert "FAIL values-float64, " in text and "\n       mistakes: mse_grad.missing_factor_2" in text
    assert "autograder-report" in "".join(cell["outputs"][0]["data"]["text/html"])
    assert cell["outputs"][-1]["output_type"] == "execute_result"
    assert float("".join(cell["outputs"][-1]["data"]["text/plain"])) == 0.0


def test_the_notes_are_at_the_top_and_the_sandboxs_stay_with_the_instructor(graded):
    course, _ = graded
    nb = json.loads((course / "autograded" / "bob" / "backward" / "backward.ipynb").read_text())
    # Bob only left out the factor 2: no note says anything about his code (the device line is
    # there only when a device check fails for a device reason).
    assert nb["cells"][0]["metadata"].get("autograder") != "notes"
    assert "sandbox" not in json.dumps(nb) and "CPU: failed" not in json.dumps(nb)
    page = (course / "feedback" / "bob" / "backward" / "backward.html").read_text()
    assert "CPU: failed" not in page and "sandbox" not in page and "(meta)" not in page
    # The instructor's log: the report kept for `autograder report` has every note.
    kept = json.loads((course / "reports" / "backward" / "students" / "bob.json").read_text())
    assert any(n.startswith("sandbox: ") for n in kept["report"]["notes"])


def test_a_feedback_page_shows_each_report_alone(graded):
    course, _ = graded
    text = BeautifulSoup((course / "feedback" / "bob" / "backward" / "backward.html").read_text(),
                         features="html.parser").get_text()
    assert "mse_grad: 0 / 2" in text and "Out[" not in text


def test_stock_nbgrader_export_has_the_scores_and_grades_csv_matches_it(graded, tmp_path):
    course, _ = graded
    out = tmp_path / "stock.csv"
    done = nbgrader(course, "export", "--to", str(out))
    assert done.returncode == 0, done.stderr
    stock, ours = csv_rows(out), csv_rows(course / "grades.csv")
    assert set(stock) == set(ours) == set(STUDENTS)
    for student, row in stock.items():
        assert {k: v for k, v in ours[student].items() if k != "note"} == row
    assert float(stock["alice"]["score"]) == 10.0 and float(stock["bob"]["score"]) == 8.0
    assert ours["alice"]["note"] == ""


def test_a_feedback_page_per_student_has_the_diagnosis(graded):
    course, _ = graded
    for student in STUDENTS:
        assert (course / "feedback" / student / "backward" / "backward.html").is_file(), student
    page = (course / "feedback" / "bob" / "backward" / "backward.html").read_text()
    results = json.loads((course / "gradescope" / "bob" / "backward" / "results.json").read_text())
    failing = [t for t in results["tests"] if t["status"] == "failed"]
    assert [t["name"] for t in failing] == ["mse_grad"]  # one Gradescope test per target
    message = next(line for line in failing[0]["output"].splitlines()
                   if line.startswith("FAIL ")).split(": ", 1)[1]
    assert html.escape(message, quote=True) in page or html.escape(message, quote=False) in page
    assert "BEGIN SOLUTION" not in page


@pytest.mark.parametrize("student", sorted([*BROKEN, *ODD]))
def test_a_broken_submission_is_zero_with_its_reason(graded, student):
    course, stdout = graded
    word = BROKEN[student][1] if student in BROKEN else ODD[student]
    row = csv_rows(course / "grades.csv")[student]
    assert float(row["score"]) == 0.0 and word in row["note"]
    assert all(auto == 0.0 for auto, _ in grades(course, student).values())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        comments = gb.find_submission_notebook("backward", "backward", student).comments
        assert comments and all(word in c.auto_comment for c in comments)
    assert word in (course / "feedback" / student / "backward" / "backward.html").read_text()
    # In autograded/, so that formgrader's Manual Grading lists it: the reason, no student code.
    nb = json.loads((course / "autograded" / student / "backward" / "backward.ipynb").read_text())
    assert word in "".join(nb["cells"][0]["source"])
    answers = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert answers and all("".join(c["source"]).startswith("# Not graded: ") for c in answers)
    assert sorted(p.name for p in (course / "autograded" / student / "backward").iterdir()) == [
        "backward.ipynb"]


def test_broken_submissions_change_nothing_for_the_others(graded):
    course, _ = graded
    rows = csv_rows(course / "grades.csv")
    assert [float(rows[s]["score"]) for s in GRADED] == [10.0, 8.0, 10.0, 3.0, 10.0, 10.0]


def test_a_late_submission_is_counted_as_nbgrader_counts_it(graded):
    course, stdout = graded
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        assert gb.find_submission("backward", "carl").total_seconds_late == 24 * 3600
        assert gb.find_submission("backward", "alice").total_seconds_late == 0
    assert csv_rows(course / "grades.csv")["carl"]["timestamp"].startswith("2026-01-11 12:00:00")
    assert "(late)" in stdout


def test_a_copied_cell_is_zero_with_the_reason_and_a_repeated_cell_id_is_graded(graded):
    course, _ = graded
    note = csv_rows(course / "grades.csv")["dup"]["note"]
    assert "mse_grad" in note and "copied cell" in note
    assert grades(course, "twin") == {t: (p, None) for t, p in FULL.items()}


def test_gradescope_results_json_has_the_spec_fields(graded):
    course, _ = graded
    for student in STUDENTS:
        data = json.loads((course / "gradescope" / student / "backward" / "results.json").read_text())
        assert isinstance(data["score"], float) and isinstance(data["output"], str)
        assert data["visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
        assert data["tests"]
        for test in data["tests"]:
            assert isinstance(test["name"], str) and isinstance(test["output"], str)
            assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
            assert 0 <= test["score"] <= test["max_score"]
            assert test["status"] in {"passed", "failed"} and test["visibility"] == "visible"
        assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    assert json.loads((course / "gradescope" / "bob" / "backward" / "results.json").read_text())["score"] == 8.0
    # The fourth attack round's answers (autograd through a generator's frame) earn nothing.
    assert json.loads((course / "gradescope" / "mallory" / "backward" / "results.json")
                      .read_text())["score"] == 3.0


def test_the_attacks_of_round_4_earn_nothing_in_the_gradebook(graded):
    course, _ = graded
    scores = grades(course, "mallory")
    assert {t: auto for t, (auto, _) in scores.items()} == {
        "mse_grad": 0.0, "relu_grad": 0.0, "lin_grad": 0.0, "module_backward": 3.0}


def recorded(course: Path, student: str) -> tuple:
    """Everything nbgrader's autograde records for a student: the gradebook's rows and the files
    in autograded/ (bytes and permissions)."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        sub = gb.find_submission("backward", student)
        nb = gb.find_submission_notebook("backward", "backward", student)
        rows = (str(sub.timestamp), sub.total_seconds_late, nb.late_submission_penalty,
                sorted((g.name, g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades),
                sorted((c.name, c.auto_comment) for c in nb.comments))
    folder = course / "autograded" / student / "backward"
    files = {p.name: (p.read_bytes(), oct(p.stat().st_mode)) for p in sorted(folder.iterdir())}
    return rows, files


def outputs(text: str) -> list:
    return [c.get("outputs") for c in json.loads(text)["cells"] if c["cell_type"] == "code"]


def test_stock_nbgrader_autograde_records_exactly_what_autograder_grade_recorded(graded, tmp_path):
    course = copy(graded, tmp_path)
    # full marks, a mistake, late, autograd through a generator's frame, locked cell
    students = ("alice", "bob", "carl", "mallory", "tamper")
    ours = {s: recorded(course, s) for s in students}
    for student in students:
        done = nbgrader(course, "autograde", "backward", "--student", student, "--force")
        assert done.returncode == 0, done.stderr[-2000:]
    stock = {s: recorded(course, s) for s in students}
    assert stock == ours
    tampered = json.loads(ours["tamper"][1]["backward.ipynb"][0])["cells"]
    test = next(c for c in tampered
                if c["metadata"].get("nbgrader", {}).get("grade_id") == "check_mse_grad")
    assert test["source"] != "assert True\n" and test["metadata"]["nbgrader"]["points"] == 2.0
    assert ours["carl"][0][1] == 24 * 3600 and "timestamp.txt" in ours["carl"][1]
    assert "inp.g is half" in json.dumps(outputs(ours["bob"][1]["backward.ipynb"][0].decode()))


def test_a_feedback_page_is_stock_generate_feedbacks_page_once_parsed(graded, tmp_path):
    course = copy(graded, tmp_path)
    page = course / "feedback" / "bob" / "backward" / "backward.html"
    ours = page.read_text()
    # Stock, with the math as ours has it (MathML, no CDN); then ours names the targets in the
    # summary and wraps long lines (`feedback.readable`).
    done = nbgrader(course, "generate_feedback", "backward", "--student", "bob", "--force",
                    '--HTMLExporter.preprocessors=["autograder.course.feedback.ReportAlone",'
                    '"autograder.course.offline_math.OfflineMath"]')
    assert done.returncode == 0, done.stderr[-2000:]
    graded_nb = nbformat.read(course / "autograded" / "bob" / "backward" / "backward.ipynb", 4)
    stock = readable(page.read_text(), targets_of(graded_nb))
    # Stock's last step parses the page with BeautifulSoup and writes the parse back out; ours
    # skips that step where it only changes whitespace: the same document in a browser.
    assert str(BeautifulSoup(ours, features="html.parser")) == stock
    assert "inp.g is half" in html.unescape(stock)


@pytest.mark.parametrize("markdown", ["Plain *text*.", 'A figure: <IMG src="fig.png">'])
def test_the_feedback_exporter_gives_stocks_document_and_stocks_bytes_where_an_image_is(markdown):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown),
                                         nbformat.v4.new_code_cell("x = 1  # the same in each\nx")])
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    stock, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    stock = readable(stock, {})  # what ours adds: lines that wrap
    exporter = FeedbackPage(template_name="classic")
    ours, _ = exporter.from_notebook_node(nb)
    again, _ = exporter.from_notebook_node(nb)  # the second page's highlighting is remembered
    assert str(BeautifulSoup(ours, features="html.parser")) == stock == str(
        BeautifulSoup(again, features="html.parser"))
    if "IMG" in markdown:  # stock's pass gives the image its alternative text: it is run here
        assert ours == stock and 'alt="No description' in ours
    else:
        assert ours != stock


def test_remembered_markdown_is_each_pages_own_where_the_same_text_has_other_attachments():
    pages = []
    exporter = FeedbackPage(template_name="classic")
    for pixel in ("AAAA", "BBBB"):  # the same text, another picture behind the same name
        cell = nbformat.v4.new_markdown_cell("![dot](attachment:dot.png)")
        cell.attachments = {"dot.png": {"image/png": pixel}}
        nb = nbformat.v4.new_notebook(cells=[cell])
        ours, _ = exporter.from_notebook_node(nb)
        assert f"data:image/png;base64,{pixel}" in ours
        pages.append(ours)
    assert pages[0] != pages[1]


def test_a_regrade_gives_the_same_scores_and_keeps_a_manual_override(graded, tmp_path):
    course = copy(graded, tmp_path)
    before = csv_rows(course / "grades.csv")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        grade = gb.find_grade("check_mse_grad", "backward", "backward", "bob")
        grade.manual_score = 1.5
        gb.db.commit()
    outcomes = grade_course(course, workers=2)
    assert [o.student for o in outcomes] == STUDENTS
    after = csv_rows(course / "grades.csv")
    for student in STUDENTS:
        if student != "bob":
            assert after[student] == before[student]
    assert float(after["bob"]["score"]) == 9.5
    assert grades(course, "bob")["mse_grad"] == (0.0, 1.5)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        assert gb.find_grade("check_mse_grad", "backward", "backward", "bob").needs_manual_grade


def test_release_makes_stock_autograde_use_the_isolated_check(graded):
    course, _ = graded
    config = (course / "nbgrader_config.py").read_text()
    assert '"autograder.course.preprocessor.IsolatedCheck"' in config
    steps = course_config(course).Autograde.autograde_preprocessors
    assert steps[0] == "autograder.course.preprocessor.IsolatedCheck"
    assert not any("Execute" in str(s) for s in steps)


def test_grade_outside_a_course_says_why_in_one_line(tmp_path):
    done = run_cli("grade", "--course", str(tmp_path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "release" in done.stderr


def test_the_demo_grades_a_sample_class(tmp_path):
    done = run_cli("demo", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr[-2000:]
    for student in CLASS:
        assert student in done.stdout
    assert "not graded" in done.stdout and "feedback pages" in done.stdout
    rows = csv_rows(tmp_path / "demo" / "grades.csv")
    assert float(rows["ada"]["score"]) == float(rows["ben"]["score"]) == 10.0
    assert float(rows["mallory"]["score"]) < 10.0 and float(rows["zoe"]["score"]) == 0.0
    # The second lesson's class, in the same gradebook.
    rows = csv_rows(tmp_path / "demo" / "grades.csv", "classifier")
    assert float(rows["ada"]["score"]) == float(rows["ben"]["score"]) == 6.0
    assert float(rows["mallory"]["score"]) == 3.0 and float(rows["eve"]["score"]) < 6.0
    demo = tmp_path / "demo"
    for lesson in ("backward", "classifier"):  # each lesson's feedback, Gradescope, report
        assert (demo / "feedback" / "ada" / lesson / f"{lesson}.html").is_file()
        assert json.loads((demo / "gradescope" / "ben" / lesson / "results.json").read_text())[
            "score"] == {"backward": 10.0, "classifier": 6.0}[lesson]
        assert "ada" in (demo / "reports" / lesson / "mistakes.csv").read_text()
    assert "log_softmax_grad.overflows" in (demo / "reports" / "classifier" / "index.html").read_text()
    page = (tmp_path / "demo" / "reports" / "backward" / "index.html").read_text()
    assert "mse_grad.missing_factor_2" in page and "zoe" in page
    assert "class report:" in done.stdout and "Nbgrader > Formgrader" in done.stdout


def test_a_feedback_process_keeps_one_converter_for_its_batches_and_each_page_is_its_students(
        graded, tmp_path):
    from autograder.course import feedback

    course = copy(graded, tmp_path)
    pages = {s: course / "feedback" / s / "backward" / "backward.html" for s in ("alice", "bob")}
    for page in pages.values():
        page.unlink()
    cfg = course_config(course)
    try:
        feedback.generate_for(course, cfg, "backward", ["alice"])  # one batch, then another
        kept = feedback._KEPT[(str(course), "backward")][0]
        feedback.generate_for(course, cfg, "backward", ["bob"])
        assert feedback._KEPT[(str(course), "backward")][0] is kept
    finally:
        feedback.forget_kept()
    assert not feedback._KEPT
    assert "Score: 10.0 / 10.0" in pages["alice"].read_text()
    assert "Score: 8.0 / 10.0" in pages["bob"].read_text()
