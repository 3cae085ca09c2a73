"""The trusted side stays linear and bounded whatever a notebook holds (issue 32): names, cells,
lines, metadata, several large files in one upload.

Measured before: `check` of a notebook of 300 extra cells of thousands of `aN = N` lines took
12 min (each cell's label was found again for each name it defines, by splitting the cell); a
notebook with 7 million empty lists in its metadata (under the 20 MiB cap) held `grade` 5 min
at 4 GB; Gradescope held every notebook of an upload in memory (eight large ones: 4 GB).
The tests count work and measure peak memory (of a child process); times are compared, as CPU
time, with a plain notebook's in the same test.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import engine
from autograder.answer import notebook, program, reading
from autograder.course import samples
from tests.conftest import BACKWARD, CORRECT

MIB = 1 << 20
#: Runs a command and prints, as JSON, its exit code, its output, and the peak memory (bytes)
#: and CPU time (s) of it and every process under it: a fresh parent, so that no other child of
#: the test run counts.
MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=1800)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([done.returncode, done.stdout, done.stderr[-4000:],
                  use.ru_maxrss * 1024, use.ru_utime + use.ru_stime]))
"""


def measured(*args: str, cwd: Path | None = None) -> tuple[int, str, str, int, float]:
    """(exit code, stdout, stderr, peak bytes, CPU seconds) of `python -m autograder ARGS`."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True,
                         text=True, cwd=cwd, check=True)
    return tuple(json.loads(out.stdout))


def names(count: int, start: int = 0) -> str:
    """A cell that defines `count` names, one a line."""
    return "".join(f"a{i} = {i}\n" for i in range(start, start + count))


def with_metadata_lists(nb: dict, size: int) -> bytes:
    """`nb` written with as many empty lists in its metadata as make it `size` bytes."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"]["x"] = "LISTS"
    head, tail = json.dumps(nb, indent=1).split('"LISTS"')
    count = (size - len(head) - len(tail) - 2) // 3
    return (head + "[" + "[]," * count + "[]]" + tail).encode()


# --- reading cells: once each, whatever the names they define --------------------------------

def test_each_cell_is_labelled_once_and_the_students_own_cells_read_within_a_budget(monkeypatch):
    # 30 cells of the student's own, each defining 1,000 names: each cell's first line was
    # found once for each name (the cell split again each time), and every cell read.
    source = engine.source_notebook(BACKWARD)
    extra = [names(1000, 1000 * k) for k in range(30)]
    nb = samples.fill(source, CORRECT, extra)
    first_extra = len(source["cells"])
    read, firsts = [], []
    read_cell, first_line = reading.read_cell, reading.first_line

    def counting_read(index, text, **kwargs):
        read.append((index, len(text)))
        return read_cell(index, text, **kwargs)

    def counting_first(text):
        firsts.append(len(text))
        return first_line(text)

    monkeypatch.setattr(reading, "read_cell", counting_read)
    monkeypatch.setattr(reading, "first_line", counting_first)
    graded = program.build(nb, source, BACKWARD.entries(BACKWARD.names), BACKWARD.language)

    assert len(firsts) <= 2 * len(nb["cells"]), f"{len(firsts)} first lines found"
    own = sum(size for index, size in read if index >= first_extra)
    assert own <= program.MAX_OWN_CHARS < sum(map(len, extra))
    # What grading says stays: a name of the student's own cells is found there.
    assert graded.own_names["a0"] == graded.own_names["a999"] == 'the cell "a0 = 0"'
    assert graded.own_names["a1000"] == 'the cell "a1000 = 1000"'
    # What runs stays: the lesson's cells and the answers, none of the student's own.
    plain = program.build(samples.fill(source, CORRECT), source,
                          BACKWARD.entries(BACKWARD.names), BACKWARD.language)
    assert graded.cells == plain.cells


def test_a_first_line_is_read_no_further_than_its_end():
    cell = "\n \t\n  x = 1  \r\n" + "y = 2\n" * 100_000
    assert reading.first_line(cell) == "x = 1"
    assert reading.first_line(" \n\u2028\x0c ") == "" and reading.first_line("") == ""
    assert reading.first_line("\x1c a\x85b") == "a"
    assert reading.cell_label("#" * 50 + "\nx") == f'the cell "{"#" * 37}..."'


@pytest.mark.sandbox
def test_check_of_300_cells_of_thousands_of_names_costs_about_what_the_stubs_do(make_notebook):
    plain = make_notebook(name="plain.ipynb")
    big = make_notebook(extra_cells=[names(4000)] * 300, name="big.ipynb")
    assert big.stat().st_size > 15 * MIB
    code, out, err, _, plain_cpu = measured(sys.executable, "-m", "autograder", "check",
                                            str(plain), "--json")
    assert code == 0, err
    code, big_out, err, _, big_cpu = measured(sys.executable, "-m", "autograder", "check",
                                              str(big), "--json")
    assert code == 0, err
    assert json.loads(big_out)["score"] == json.loads(out)["score"] == 10.0
    assert big_cpu < 3 * plain_cpu, f"{big_cpu:.1f} s of CPU, the stubs {plain_cpu:.1f} s"


# --- the shape of a notebook's JSON, checked before it is parsed ------------------------------

def shape(value, depth: int = 1) -> tuple[int, int, int]:
    """(values, lists and objects, depth) of a parsed JSON value, keys counted as values."""
    if isinstance(value, list | dict):
        inner = [shape(v, depth + 1) for v in (value.values() if isinstance(value, dict)
                                                else value)]
        keys = len(value) if isinstance(value, dict) else 0
        return (1 + keys + sum(i[0] for i in inner), 1 + sum(i[1] for i in inner),
                max([depth] + [i[2] for i in inner]))
    return 1, 0, 0


BASE = {"cells": [{"cell_type": "raw", "metadata": {"a": 1}, "source": "x"}],
        "metadata": {"k": 0}, "nbformat": 4, "nbformat_minor": 5}


def at_most(x: list) -> dict:
    return {**BASE, "metadata": {"x": x}}


def nested(depth: int) -> list:
    out: list = [0]
    for _ in range(depth - 1):
        out = [out]
    return out


LIMITS = {
    "lists and objects": (lambda n: at_most([[0]] * n), 1, notebook.MAX_CONTAINERS,
                          f"more than {notebook.MAX_CONTAINERS:,} lists and objects"),
    "values": (lambda n: at_most([0] * n), 0, notebook.MAX_VALUES,
               f"more than {notebook.MAX_VALUES:,} values"),
    "strings": (lambda n: at_most(["ab"] * n), 0, notebook.MAX_VALUES,
                f"more than {notebook.MAX_VALUES:,} values"),
    "depth": (lambda n: at_most(nested(n)), 2, notebook.MAX_DEPTH,
              f"more than {notebook.MAX_DEPTH} lists and objects inside each other"),
}


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_a_notebook_at_a_limit_is_read_and_one_past_it_refused_before_it_is_built(limit,
                                                                               monkeypatch):
    make, index, bound, said = LIMITS[limit]
    n = 10 + bound - shape(make(10))[index]  # one more a step: n puts it at the limit, exactly
    at = make(n)
    assert shape(at)[index] == bound
    assert notebook.parse_notebook(json.dumps(at), "at.ipynb")["cells"] == BASE["cells"]
    loads = []
    monkeypatch.setattr(notebook.json, "loads", lambda *a, **k: loads.append(1))
    with pytest.raises(notebook.NotebookError) as refused:
        notebook.parse_notebook(json.dumps(make(n + 1), indent=1).encode(), "past.ipynb")
    assert str(refused.value) == (f"past.ipynb holds {said}, far more than a notebook does: "
                                  "it is not read")
    assert loads == []  # refused before any of it was built


def test_escaped_quotes_and_brackets_in_strings_are_not_counted():
    texts = ["[" * 300, "\\" * 7, '\\"' * 50, '"[{', "\\\\\"[[[[[", "]]]}}" * 40]
    nb = {**BASE, "metadata": {t: [t, {t: t}] for t in texts}}
    assert notebook.parse_notebook(json.dumps(nb, ensure_ascii=False).encode()) == nb
    assert notebook.parse_notebook(json.dumps(nb).encode("utf-16")) == nb


@pytest.mark.parametrize("path", sorted(Path(BACKWARD.folder).parent.glob("*/*.ipynb")),
                         ids=lambda p: p.name)
def test_every_lessons_notebook_is_within_the_limits(path):
    nb = notebook.read_notebook(path)
    values, containers, depth = shape(nb)
    assert values <= notebook.MAX_VALUES // 100 and containers <= notebook.MAX_CONTAINERS // 10
    assert depth <= notebook.MAX_DEPTH // 5


def test_seven_million_empty_lists_are_refused_in_one_line_within_little_memory(tmp_path):
    path = tmp_path / "backward.ipynb"
    path.write_bytes(with_metadata_lists(engine.source_notebook(BACKWARD),
                                         notebook.MAX_NOTEBOOK_BYTES - 1000))
    code, out, err, peak, _ = measured(sys.executable, "-c", (
        "import sys; from autograder.answer import notebook\n"
        "try: notebook.read_notebook(sys.argv[1])\n"
        "except notebook.NotebookError as exc: print(exc)\n"), str(path))
    assert code == 0, err
    assert out == (f"{path} holds more than {notebook.MAX_CONTAINERS:,} lists and objects, far "
                   "more than a notebook does: it is not read\n")
    assert peak < 256 * MIB, f"{peak / MIB:.0f} MiB"  # a bare json.loads of it: 544 MB


@pytest.mark.sandbox
def test_grade_refuses_a_notebook_of_seven_million_lists_at_the_cost_of_a_plain_class(tmp_path):
    from autograder.course.release import release

    course = tmp_path / "course"
    released = json.loads(release(course, assignment="backward")[0].read_text())
    samples.write_class(released, course, BACKWARD, {"ann": ({}, [])})
    code, _, err, plain_peak, plain_cpu = measured(sys.executable, "-m", "autograder", "grade",
                                                   "--course", str(course))
    assert code == 0, err
    hostile = with_metadata_lists(released, notebook.MAX_NOTEBOOK_BYTES - 1000)
    samples.write_class(released, course, BACKWARD, {"bob": hostile})
    code, _, err, peak, cpu = measured(sys.executable, "-m", "autograder", "grade",
                                       "--course", str(course))
    assert code == 0, err
    with (course / "grades.csv").open() as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert float(rows["ann"]["score"]) == 10.0
    assert float(rows["bob"]["score"]) == 0.0
    assert rows["bob"]["note"] == (
        f"backward.ipynb holds more than {notebook.MAX_CONTAINERS:,} lists and objects, far "
        "more than a notebook does: it is not read")
    assert peak < 1024 * MIB, f"{peak / MIB:.0f} MiB (a plain class: {plain_peak / MIB:.0f})"
    assert cpu < 3 * plain_cpu, f"{cpu:.1f} s of CPU, a plain class {plain_cpu:.1f} s"


# --- Gradescope: one notebook of an upload in memory at a time --------------------------------

@pytest.mark.sandbox
def test_gradescope_holds_one_of_eight_large_notebooks_at_a_time(tmp_path, released):
    # Eight notebooks in the upload: seven under the cap and within the limits, each with 3
    # million lines in a cell (parsed, some 200 MB), and the one with the answers. All eight
    # were held at once.
    folder = tmp_path / "submission"
    big = samples.fill(released, {"mse_grad": CORRECT["mse_grad"]})
    big["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "LINES"})
    head, tail = json.dumps(big).split('"LINES"')
    lines = "[" + '"abcd",' * ((notebook.MAX_NOTEBOOK_BYTES - len(head + tail) - 100) // 7) + '""]'
    raw = (head + lines + tail).encode()
    assert notebook.MAX_NOTEBOOK_BYTES - 4000 < len(raw) <= notebook.MAX_NOTEBOOK_BYTES
    for name in ["backward.ipynb"] + [f"backward-Copy{i}.ipynb" for i in range(1, 7)]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)
    samples.write(samples.fill(released, CORRECT), folder / "work" / "mine.ipynb")  # the answers
    raw = None
    out = tmp_path / "results.json"
    code, _, err, peak, _ = measured(sys.executable, "-m", "autograder.course.gradescope",
                                     str(folder), str(out), "backward")
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["score"] == 10.0
    assert data["output"].splitlines()[0] == "graded: work/mine.ipynb"
    assert peak < 1024 * MIB, f"{peak / MIB:.0f} MiB"
