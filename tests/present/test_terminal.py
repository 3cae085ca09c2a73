"""A terminal shows student text as text: no escape sequence a student wrote reaches it.

An exception message, a print or a file name with ANSI/OSC sequences would set the terminal's
title, clear the screen or plant a hyperlink (OSC 8). Every command shows them as visible escapes
(`\\x1b`); `--json` stays exact data (JSON escapes them itself).
"""

from __future__ import annotations

import json

from autograder.course import samples
from autograder.present.terminal import visible
from tests.conftest import BACKWARD, run_cli

#: A title, a cleared screen, a hyperlink, a carriage return that writes over the line.
HOSTILE = r"\x1b]0;owned\x07\x1b[2J\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ \rscore: 10"

RAISES = ("def mse_grad(inp, targ):\n"
          f"    _ = print('printed: {HOSTILE}')  # a print as a value: grading runs it\n"
          f"    raise ValueError('raised: {HOSTILE}')\n")

CONTROL_BYTES = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]} - {"\n"}


def no_control(text: str) -> None:
    found = sorted({c for c in text if c in CONTROL_BYTES})
    assert not found, f"control characters reached the terminal: {found}"


def test_visible_shows_each_control_character_and_keeps_lines():
    assert visible("a\x1b[2Jb\tc\nd\re\x9b\u202e") == "a\\x1b[2Jb\tc\nd\\re\\x9b\\u202e"
    assert visible("a\nb\tc", lines=False) == "a\\nb\\tc"


def test_check_shows_a_students_escape_sequences_as_text(make_notebook):
    path = make_notebook({"mse_grad": RAISES})
    done = run_cli("check", str(path), "--show-output")
    assert done.returncode == 1, done.stderr
    no_control(done.stdout)
    no_control(done.stderr)
    table, printed = done.stdout.split("what the notebook printed")
    table = "".join(table.replace("│", "").split())  # a cell's text, read across its lines
    assert "mse_gradraisedValueError:raised:" in table
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x1b]8;;http://evil.example\\x1b\\click" in table
    assert ("printed: \\x1b]0;owned\\x07\\x1b[2J\\x1b]8;;http://evil.example\\x1b\\click"
            "\\x1b]8;;\\x1b\\ \\rscore: 10\n") in printed  # --show-output: one line as printed


def test_check_json_keeps_the_exact_text(make_notebook):
    done = run_cli("check", str(make_notebook({"mse_grad": RAISES})), "--json")
    assert "\x1b" not in done.stdout  # JSON's own escapes: \u001b
    report = json.loads(done.stdout)
    assert any("raised: \x1b]0;owned\x07" in c["message"] for c in report["checks"])


def test_an_error_line_shows_a_file_name_as_text(tmp_path):
    path = tmp_path / "\x1b]0;owned\x07.ipynb"
    path.write_text("{oops")
    done = run_cli("check", str(path))
    assert done.returncode == 2
    no_control(done.stdout + done.stderr)
    assert "\\x1b]0;owned\\x07.ipynb" in done.stderr and len(done.stderr.splitlines()) == 1


def test_grade_and_report_show_student_text_as_text(tmp_path, released):
    course = tmp_path / "course"
    assert run_cli("release", "--course", str(course), "--assignment", "backward").returncode == 0
    released = json.loads((course / "release" / "backward" / "backward.ipynb").read_text())
    samples.write_class(released, course, BACKWARD, {"ann": ({"mse_grad": RAISES}, [])})
    folder = course / "submitted" / "bob" / "backward"
    folder.mkdir(parents=True)
    (folder / "\x1b]0;owned\x07\x1b[2J.ipynb").write_text("{}")  # no backward.ipynb: the reason
    graded = run_cli("grade", "--course", str(course), "--workers", "1")
    assert graded.returncode == 0, graded.stderr
    report = run_cli("report", "--course", str(course))
    assert report.returncode == 0, report.stderr
    for done in (graded, report):
        no_control(done.stdout)
        no_control(done.stderr)
    assert "\\x1b]0;owned\\x07\\x1b[2J.ipynb" in " ".join(graded.stdout.split())  # bob's reason
    said = " ".join(report.stdout.split())
    assert "\\x1b]0;owned\\x07\\x1b[2J.ipynb" in said  # who could not be graded, and why
    assert "raised: \\x1b]0;owned" in said  # what the checks said
