"""The self-check a student runs in the notebook: the grader's checks, in the student's kernel.

Same spec, same inputs plan, same comparisons and messages as `autograder check`; the answers
come from torch.autograd (no reference solutions needed). It prints the report and raises when
a check fails, so that `nbgrader validate` reports the failure too. It grades nothing: the grade
comes from the grader, which runs the same checks in a separate process.

Where it fails, what it does depends on who runs it (`failing_in`):

* a student's notebook (a Jupyter kernel): it prints the report and one line on stderr that
  says the check failed, and raises nothing, so that Run All goes on to every later self-check;
* `nbgrader validate` (the Validate button) and stock `nbgrader autograde`, which set
  `NBGRADER_EXECUTION` in the kernel they start: it raises, so that they count the failure. The
  validator shows a failing cell's error and stderr only, so there the report goes to stderr:
  Validate's dialog shows the diagnosis itself, not "(see above)" with nothing above it;
* anything else (a script, a test): it prints the report and raises.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

from .answer import rules
from .judge.devices import describe, lanes_for, summarize
from .judge.judging import judge_calls
from .judge.outcome import TargetOutcome, UntrustedRun
from .judge.plan import build_plan
from .judge.scoring import judge_target
from .lesson import model as lessons
from .lesson import resolve
from .present import picture
from .present.report import Report, name_cells, wrapped
from .untrusted.calls import run_call


class SelfCheckFailed(AssertionError):
    """Some check failed; the printed report says which and why.

    In a notebook it shows as one line, not a traceback into the grader (IPython asks an
    exception for `_render_traceback_`); it is still an error, which `nbgrader validate` sees."""

    def _render_traceback_(self) -> list[str]:
        return [f"SelfCheckFailed: {self}"]


def self_check(target: str, obj: object, device: str = "all", lesson: str | None = None) -> None:
    """What a grade cell calls: print the report of `run_self_check`; where a check fails, say so
    as its caller needs it (see the module's doc: a notebook goes on, Validate and scripts see an
    error).

    Returns nothing, so that a notebook shows the report alone (and stock nbgrader reads no
    partial credit from a displayed value).
    """
    report = run_self_check(target, obj, device, lesson)
    where = failing_in()
    out = sys.stderr if where == "nbgrader" and not report.passed else sys.stdout
    print(report.student_text(target), file=out)
    if said := describe(report.devices):
        print("\n".join(wrapped(f"devices: {said}", rest="           ")), file=out)
    out.flush()
    picture.show(report, target)  # in a notebook: where a wrong .g differs from the true one
    if report.passed:
        return
    if where == "notebook":
        print(f"self-check failed: {report.head(target)} (the report above says why; "
              "the cells below still run)", file=sys.stderr, flush=True)
        return
    raise SelfCheckFailed(f"{report.head(target)} (see above)")


def failing_in() -> str:
    """Who reads a failing self-check: "nbgrader" (validate or autograde, which set
    NBGRADER_EXECUTION for the kernel they run), "notebook" (a student's Jupyter kernel: Run All
    must go on) or "script" (anything else, which reads an error)."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return "nbgrader"
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return "notebook" if getattr(shell, "kernel", None) is not None else "script"


def source_of(obj: object) -> str | None:
    """The code the no-autograd gate reads: the notebook cell `obj` was defined in, whole, as
    grading reads the answer cell (IPython keeps each cell's lines for tracebacks, in
    `linecache`, with no file behind them); elsewhere (a module's file) `obj`'s own source,
    blank lines first, so that line numbers are its file's. A class defined in a notebook cell
    keeps no file Python can find, so its cell is found through its methods."""
    cell = _cell_of(obj)
    if cell is not None:
        return cell
    try:
        lines, first = inspect.getsourcelines(obj)
        return "\n" * max(first - 1, 0) + "".join(lines)
    except (OSError, TypeError):
        pass
    if not isinstance(obj, type):
        return None
    import ast
    import linecache

    for method in vars(obj).values():
        cell = linecache.getlines(getattr(getattr(method, "__code__", None), "co_filename", ""))
        if not cell:
            continue
        try:
            tree = ast.parse("".join(cell))
        except (SyntaxError, ValueError):
            return None
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == obj.__name__:
                start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                return "\n" * (start - 1) + "".join(cell[start - 1:node.end_lineno])
    return None


def under_guards(obj: object, source: str, lesson: lessons.Lesson,
                 given: list[dict] = ()) -> object:
    """`obj` made again from its `source` as grading makes it: compiled for the answer
    language's guards (`compiler.py`, `untrusted/guards.py`), with the names of the
    notebook it was defined in, and over them what grading runs of the lesson's own cells
    (`given`: `program.build`'s cells, compiled and run the same way), so that what the guards
    refuse is refused here in the same words. Where its source does not compile, `obj` itself
    (the rules' findings say why)."""
    from .answer import compiler
    from .untrusted import guards

    code, refused = compiler.compile_answer(source, f"<{ANSWER_CELL}>")
    if code is None:
        return obj
    names = dict(_globals_of(obj))
    names.update(guards.globals_for(lesson.language))
    for cell in given:
        lesson_code = compiler.compile_cell(cell["source"], cell["name"])
        if isinstance(lesson_code, dict):  # grading reports it; the kernel's names stay
            continue
        try:
            exec(lesson_code, names)  # noqa: S102 - the lesson's code, in the student's kernel
        except Exception:  # noqa: BLE001, S112 - as in grading, an error stops that cell only
            continue
    try:
        exec(code, names)  # noqa: S102 - the student's own code, in the student's own kernel
    except guards.NotAllowed:
        return obj  # at its definition: the calls will not reach it either
    return names.get(getattr(obj, "__name__", ""), obj)


def _cell_of(obj: object) -> str | None:
    """The text of the notebook cell that defined `obj` (a function, or a class through its
    methods), where IPython keeps it (`linecache`, an entry with no file's time); else None."""
    import linecache

    methods = vars(obj).values() if isinstance(obj, type) else (obj,)
    for method in methods:
        name = getattr(getattr(method, "__code__", None), "co_filename", None)
        entry = linecache.cache.get(name) if isinstance(name, str) else None
        if entry is not None and len(entry) == 4 and entry[1] is None:
            return "".join(entry[2])
    return None


def _globals_of(obj: object) -> dict:
    if isinstance(obj, type):
        for method in vars(obj).values():
            if hasattr(method, "__globals__"):
                return method.__globals__
        return {}
    return getattr(obj, "__globals__", {})


def read_as_graded(lesson: lessons.Lesson, target: str, source: str):
    """`source` read as grading reads it (`program.build`: one reading of the lesson's own cells
    for the rules and for the run), as the answer cell of `target` in the lesson's notebook
    (its source notebook; beside a fetched notebook, the released one): the names the lesson's
    cells define and set count as grading counts them. None where there is no notebook of the
    lesson to read (then the answer is read alone)."""
    from .answer import notebook, program

    try:
        nb = notebook.read_notebook(lesson.source_path)
    except notebook.NotebookError:
        return None
    entry = lesson.target(target).entry
    cells = notebook.code_cells(nb)
    answer = notebook.answer_cells(cells, (target,)).get(target)
    if answer is None:
        return None
    mine = {**nb, "cells": [dict(c, source=source) if i == answer.index else c
                            for i, c in enumerate(nb["cells"])]}
    return program.build(mine, nb, {target: entry}, lesson.language)


#: How an error in the answer is placed (`calls.describe_exception`): named, as in `check`,
#: "the <target> cell".
ANSWER_CELL = "cell 0"


def find_lesson(target: str, lesson: str | None = None) -> lessons.Lesson:
    """The lesson named, or the first here that has `target`: first the one beside the notebook
    (the kernel's folder, where a student fetched the assignment), then the installed ones."""
    here = Path.cwd()
    if lesson is not None:
        return lessons.find(lesson, beside=here)
    found = lessons.available(beside=here)
    for candidate in found.values():
        if target in candidate.names:
            return candidate
    known = sorted({t for candidate in found.values() for t in candidate.names})
    raise ValueError(f"unknown target {target!r}: one of {', '.join(known)}")


def run_self_check(target: str, obj: object, device: str = "all",
                   lesson: str | None = None, seed: int | None = None) -> Report:
    """Check `obj` (the student's function, or their `Module` class) as `target` of `lesson`
    (default: the lesson here that has it), in this process, on the inputs of `seed` (default:
    the lesson's self-check seed).

    `device` as for `autograder check`: by default on the CPU, on stand-in CUDA tensors
    (GPU-readiness) and, where this kernel has a GPU, on CUDA; the report says which ran.
    """
    found = find_lesson(target, lesson)
    if target not in found.names:
        raise ValueError(f"unknown target {target!r}: one of {', '.join(found.names)}")
    source = source_of(obj)
    graded = read_as_graded(found, target, source) if source is not None else None
    findings = None if source is None else graded.findings.get(target, []) \
        if graded is not None else rules.findings_in(source, found.language)
    clean = findings is not None and not any(f.kind == rules.AUTOGRAD for f in findings)
    seed = resolve.seed(found, "self-check") if seed is None else seed
    plan = build_plan(found, seed, (target,), lanes=lanes_for(device),
                      refuse_autograd={target} if clean else set())
    wire = plan.wire_inputs()
    outcome = TargetOutcome("ok")
    answers = {a.index for a in graded.answers.values()} if graded is not None else set()
    given = [c for c in graded.cells if c["index"] not in answers] if graded else []
    runs = next((c["source"] for c in graded.cells if c["index"] in answers), source) \
        if graded is not None else source  # what grading runs of it: its prints left out
    guarded = under_guards(obj, runs, found, given) if findings == [] else obj
    for planned in plan.calls:
        namespace = {planned.call.function: guarded}
        outcome.add(planned.call.id, *run_call(namespace, planned.call.to_json(), wire))
    run = UntrustedRun(targets={target: outcome})
    verdicts = judge_calls(plan, run)
    checks = judge_target(target, plan, run, verdicts, resolve.points(found)[target], findings)
    for check in checks:
        check.message = name_cells(check.message, {ANSWER_CELL: f"the {target} cell"})
    devices = summarize(plan, run, verdicts, device)
    return Report(checks, seed=plan.seed, notes=[describe(devices)], devices=devices,
                  lesson=found.id)
