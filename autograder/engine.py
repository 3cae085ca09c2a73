"""The journey of one submission, top to bottom:

    read notebook -> rules and program (what runs) -> run it (untrusted process)
                  -> judge each call (trusted: judging, compare, diagnose) -> score -> report

Nothing here imports or executes student code: that happens only in `untrusted/runner.py`, in
its own process, which runs the program `program.py` built: the answers the rules allow and the
lesson's own code they need, nothing else of the notebook. Imports with only torch installed.
"""

from __future__ import annotations

from pathlib import Path

from . import settings
from .answer import notebook, program
from .judge.outcome import ErrorInfo
from .lesson import model as lessons
from .lesson import resolve
from .lesson.bundle import LessonBundle, unpack
from .lesson.model import Lesson
from .present.report import CheckResult, Report, name_cells
from .sandbox.launch import run_untrusted
from .sandbox.layers import Limits


def source_notebook(lesson: Lesson) -> dict | None:
    """The lesson's trusted source notebook, parsed, where this install has it."""
    path = lesson.source_path
    return notebook.read_notebook(path) if path.is_file() else None


def check_notebook(path: str | Path, *, seed: int | None = None, device: str = "all",
                   warm: bool = False, lesson: Lesson | None = None) -> Report:
    """Grade one notebook file, as `autograder check` does: its lesson found from the notebook
    unless given. Raises `NotebookError` (one line) when it cannot be graded, `LessonError` when
    it belongs to no lesson here, `DeviceUnavailable` when `device="cuda"` and the student's
    process finds no GPU. `warm` forks the student's process from a warm parent (a process that
    checks many notebooks)."""
    return check_parsed(notebook.read_notebook(path), seed=seed, device=device, warm=warm,
                        lesson=lesson)


def check_parsed(nb: dict, *, seed: int | None = None, device: str = "all", warm: bool = False,
                 lesson: Lesson | None = None) -> Report:
    """`check_notebook` for a notebook already read and parsed (Gradescope reads its own, without
    following a link)."""
    lesson = lesson or lessons.for_notebook(nb)
    source = source_notebook(lesson)
    return grade_notebook(nb, lesson, points=resolve.points(lesson, source=source, nb=nb),
                          seed=resolve.seed(lesson, "check", given=seed),
                          device=device, source=source, warm=warm)


def grade_notebook(nb: dict, lesson: Lesson, *, points: dict[str, float],
                   seed: int | None = None, reference: bool = True,
                   targets: tuple[str, ...] | None = None, device: str = "all",
                   warm: bool = False, source: dict | None = None) -> Report:
    """Grade a parsed (and, for a course, sanitized) notebook of `lesson`.

    `reference`: compare with the lesson's reference solutions too, where its folder has them
    (else, or with False, with autograd alone).
    `device` is one of `settings.DEVICE_CHOICES`: the points are the same whichever ran.
    `warm` starts the student's process from a warm parent (for batches: same isolation).
    `source` is the lesson's trusted source notebook, whose own cells run in place of the
    student's copies (None: the student's other cells stand in, and the report says so).
    """
    plans = []
    targets = targets or lesson.names
    solutions = lesson.reference() if reference else None
    lanes = settings.lanes_for(device)  # torch is not imported yet: the student's process starts first
    graded = program.build(nb, source, lesson.entries(targets), lesson.language)

    def draw_inputs():
        # Runs once the student's process has started: torch loads while the cells run.
        from .judge.plan import build_plan

        plans.append(build_plan(lesson, seed, targets, solutions, lanes,
                                refuse_autograd=graded.refuse_autograd()))
        return plans[0].wire_targets(targets), plans[0].wire_inputs()

    run = run_untrusted(graded.cells, draw_inputs,
                        cells_timeout=settings.CELLS_TIMEOUT, target_timeout=settings.TARGET_TIMEOUT,
                        limits=Limits(), warm=warm, language=lesson.language.table)
    from .judge.devices import describe, summarize
    from .judge.judging import judge_calls
    from .judge.scoring import judge_target

    plan = plans[0]
    verdicts = judge_calls(plan, run, graded.answers, graded.own_names)  # each call, once
    devices = summarize(plan, run, verdicts, device)
    if device == "cuda" and devices["cuda"] == "not available here":
        raise settings.DeviceUnavailable("--device cuda: the grading process finds no CUDA GPU here "
                                "(torch.cuda.is_available() is False); use --device all or cpu")
    checks: list[CheckResult] = []
    for target in targets:
        checks += judge_target(target, plan, run, verdicts, points.get(target, 0.0),
                               graded.findings.get(target, []), graded.not_run.get(target))
    notes = []
    if solutions is None:
        notes.append("compared with torch.autograd alone: the reference solutions are not "
                     "installed here")
    if not graded.lesson_cells:
        notes.append("the lesson's own cells are not installed here: your notebook's other "
                     "cells stood in for them (grading runs the lesson's)")
    if said := describe(devices):  # "" where the devices add nothing to the checks
        notes.append(said)
    cells = {c["index"]: c for c in graded.cells}
    for index in sorted(run.cell_errors)[:5]:
        if index in cells:
            notes.append(describe_cell_error(cells[index], run.cell_error(index)))
    if run.stray:
        notes.append(f"{run.stray} bytes on the grader's channel were not the grader's: ignored")
    labels = {c["name"]: c["label"] for c in graded.cells}
    for check in checks:
        check.message = name_cells(check.message, labels)
    notes = [name_cells(note, labels) for note in notes]
    notes += plan.reference_problems  # the instructor's, as the sandbox's layers are
    notes.append("sandbox: " + "; ".join(run.sandbox))
    return Report(checks, reference=plan.reference, seed=plan.seed, notes=notes,
                  output=run.stdout + run.stderr, devices=devices, lesson=lesson.id)


def describe_cell_error(cell: dict, error: ErrorInfo) -> str:
    """'the cell "def forward_and_backward(..." raised NameError: ... at line 3' — findable."""
    message = (error.message or "")[:200]
    if error.limit:
        message += f" ({error.limit})"
    where = error.where
    at = f" at {where}" if where and not where.startswith(f"{cell['name']}, ") else (
        f" at line {where.split('line ')[-1]}" if where else "")
    return (f'{cell["label"]} raised {error.type}'
            f'{": " + message if message else ""}{at}')


def warm_up(lesson_folder: str) -> None:
    """A local batch's first step: start the warm workers, then, while their first process
    imports torch, import what judging needs and compute one reference (torch's first autograd
    pass is the slow one), so that the first students wait for neither."""
    from .judge import devices, judging, scoring  # noqa: F401
    from .judge.plan import build_plan
    from .sandbox.launch import start_warm_workers

    start_warm_workers()
    lesson = lessons.load(lesson_folder)
    try:
        build_plan(lesson, 0, solutions=lesson.reference())
    except Exception:  # noqa: BLE001 - a head start only: each student's grading says what failed
        pass


def grade_submission(nb: dict, lesson: str | LessonBundle, points: dict[str, float],
                     seed: int | None = None, warm: bool = True,
                     source: dict | None = None) -> Report:
    """Grade one (sanitized) submission from plain, picklable arguments.

    What a batch ships to a worker: `nb` a notebook as JSON data; `lesson` the lesson's folder
    (local threads: the course's copy, read where it is) or its files as data (a `LessonBundle`:
    a Dask worker that shares no disk with the grader, which writes it once into a private
    folder of its own); either way its reference, where the course has one, is compared with
    too. `points` per target from the gradebook, `source` the lesson's source notebook as JSON
    data (None: the lesson's own, from its folder or bundle).
    A batch's students' processes fork from warm parents (`warm`), each worker keeping its own.
    Raises `NotebookError` (one line) when `nb` is not a version-4 notebook.
    """
    notebook.validate(nb)
    if isinstance(lesson, LessonBundle):
        loaded, own_source = unpack(lesson)
    else:
        loaded = lessons.load(lesson)
        own_source = source_notebook(loaded) if source is None else None
    report = grade_notebook(nb, loaded, points=points, seed=seed, warm=warm,
                            source=source if source is not None else own_source)
    from .present import picture  # (torch: not before a student's process starts, in `check`)

    picture.draw_for_feedback(report)  # here, in the worker, not in the grader's process
    return report
