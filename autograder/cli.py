"""The `autograder` command: check a notebook; release, grade and report on a class (see docs/contract.md)."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Autograder for the backward-pass lesson: isolated, nbgrader-compatible.")
err = Console(stderr=True)


def fail(message: str, code: int = 2, json_file: Path | None = None) -> None:
    """One line on stderr, no traceback, then exit. With `json_file` (`check --json`), stdout
    also holds the error as one JSON object, `{"error": message, "file": json_file}`."""
    from .present.terminal import visible

    if json_file is not None:
        import json

        sys.stdout.write(json.dumps({"error": message, "file": str(json_file)}) + "\n")
    err.print(f"autograder: {visible(message, lines=False)}", markup=False, highlight=False,
              soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def check(
    notebook: Annotated[Path, typer.Argument(help="The notebook to check (the .ipynb file).")],
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else (an "
                                                      "unusable file: {\"error\", \"file\"}).")] = False,
    seed: Annotated[int | None, typer.Option(help="Repeat a run's inputs (default: fresh).")] = None,
    show_output: Annotated[bool, typer.Option("--show-output",
                                              help="Also print what the notebook's code printed.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also say which devices ran and how the sandbox isolated the "
                                "notebook's code.")] = False,
    device: Annotated[str, typer.Option(
        "--device", metavar="all|cpu|cuda",
        help="cpu: never use a GPU; cuda: also on the GPU (exit 2 without one); all: on the GPU "
             "where there is one. The gpu-ready checks (stand-in CUDA tensors, no GPU needed) "
             "run in each.")] = "all",
    require_isolation: Annotated[bool, typer.Option(
        "--require-isolation", help="Refuse to check (exit 2) where the sandbox's namespaces "
                                    "are not available.")] = False,
) -> None:
    """Check one notebook: exit 0 if every check passes, 1 if any fails, 2 if it is unusable."""
    from .answer.notebook import NotebookError, read_notebook
    from .engine import check_parsed  # no torch yet: the student's process starts first
    from .lesson.model import LessonError, available, for_notebook
    from .sandbox.layers import IsolationMissing
    from .sandbox.layers import require_isolation as must_isolate
    from .sandbox.process import PlatformMissing, require_platform
    from .settings import DEVICE_CHOICES, DeviceUnavailable

    said = notebook if json else None  # --json: every unusable input is a JSON object too
    try:  # Windows: nothing of the check could run, so nothing is tried
        require_platform()
    except PlatformMissing as exc:
        fail(str(exc), json_file=said)
    if device not in DEVICE_CHOICES:
        fail(f"--device {device}: choose one of {', '.join(DEVICE_CHOICES)}", json_file=said)
    if require_isolation:
        try:
            must_isolate()
        except IsolationMissing as exc:
            fail(str(exc), json_file=said)
    try:
        nb = read_notebook(notebook)
        known = available()
        try:
            lesson = for_notebook(nb)
        except LessonError:  # the lessons here load (above): none has this notebook's cells
            fail(f"{notebook} is a notebook of no lesson this install knows (it knows "
                 f"{', '.join(known) or 'none'}): it has none of their answer cells",
                 json_file=said)
        # AUTOGRADER_WARM=1: a process that runs many checks (a test suite, a service) starts
        # each student's process from a warm parent; one check alone starts it cold, sooner.
        report = check_parsed(nb, seed=seed, device=device, lesson=lesson,
                              warm=os.environ.get("AUTOGRADER_WARM") == "1")
    except typer.Exit:
        raise
    except (NotebookError, LessonError, DeviceUnavailable, PlatformMissing) as exc:
        fail(str(exc), json_file=said)
    except Exception as exc:  # noqa: BLE001 - the grader's own failure: one line, never a traceback
        fail(f"the grader failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
             json_file=said)
    if json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        from .present.terminal import student_console, visible

        print_report(report, student_console(), verbose=verbose)
        if show_output and report.output.strip():
            student_console().rule("what the notebook printed")
            print(visible(report.output))
    raise typer.Exit(0 if report.passed else 1)


def print_report(report, console: Console, verbose: bool = False) -> None:
    """A row per target: its points, and what to fix (each distinct mistake once,
    `Report.grouped`). Then the notes that say something about this notebook: the devices' line
    in a student's words (`devices.describe`), the sandbox's layers only where `verbose`."""
    from .judge.devices import describe

    table = Table(title="autograder check")
    table.add_column("target")
    table.add_column("points", justify="right")
    table.add_column("what the checks say", overflow="fold")  # a long word whole, on two lines
    for target in dict.fromkeys(c.target for c in report.checks):
        got, out_of = report.target_score(target)
        failing, passing = report.grouped(target)
        if not failing:
            said = f"[green]all {len(passing)} checks pass[/]"
        else:
            said = "\n".join(f"[red]FAIL[/] {escape(', '.join(names))}: {escape(message)} "
                             f"[dim]({escape(', '.join(codes))})[/]"
                             for names, message, codes in failing)
            said += "".join(f"\n[yellow]waiting for {escape(words)}:[/] {escape(', '.join(names))}"
                            for words, names in report.waiting(target))
        table.add_row(escape(target), f"{got:g} / {out_of:g}", said)
    console.print(table)
    console.print(f"[bold]score: {report.score:g} / {report.max_score:g}[/]")
    devices = describe(report.devices) if report.devices else None
    for note in report.notes:
        if note == devices:  # the engine's device line: here as `--verbose` asks
            line = describe(report.devices, verbose=verbose)
            if line:
                console.print(f"devices: {escape(line)}", highlight=False)
        elif note.startswith("sandbox:"):
            if verbose:
                console.print(escape(note), highlight=False)
        else:
            console.print(f"note: {escape(note)}", highlight=False)


def escape(text: str) -> str:
    """Student text for a rich table or line: control characters visible, markup escaped."""
    from .present.terminal import shown

    return shown(text)


ASSIGNMENT_HELP = "One lesson (its nbgrader assignment id), not all of the course's."


@app.command()
def release(
    course: Annotated[Path, typer.Option(help="The nbgrader course directory to create or update.")],
    course_id: Annotated[str | None, typer.Option(
        help="nbgrader's course id, for a new course (default: the course folder's name and a "
             "digest of its path, which no other course on this machine's exchange has).")] = None,
    assignment: Annotated[str | None, typer.Option(help=ASSIGNMENT_HELP)] = None,
    exchange: Annotated[Path | None, typer.Option(
        help="nbgrader's exchange root, where students fetch and hand in (default: the one in "
             "the course's nbgrader_config.py, else /usr/local/share/nbgrader/exchange).")] = None,
    no_exchange: Annotated[bool, typer.Option(
        "--no-exchange", help="Release into the course folder only (no exchange).")] = False,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="URL",
        help="The gradebook's database, kept in the course's nbgrader_config.py: a SQLAlchemy "
             "URL such as postgresql://USER@HOST/DATABASE (pip install "
             "'backprop-autograder\\[postgres]'). Default: the one configured there, else "
             "sqlite:///gradebook.db in the course.")] = None,
) -> None:
    """Make COURSE an nbgrader course and release its lessons with nbgrader (into its exchange)."""
    from .course.release import EXCHANGE_CONFIGURED, ReleaseError, release_lessons
    from .lesson.model import LessonError

    if no_exchange and exchange is not None:
        fail("--exchange and --no-exchange: choose one")
    where = None if no_exchange else (exchange or EXCHANGE_CONFIGURED)
    try:
        released = release_lessons(course, course_id, assignment, exchange=where, db=db)
    except (ReleaseError, LessonError) as exc:
        fail(str(exc))
    for path, changed in released:
        Console().print(f"{'released' if changed else 'unchanged'}: {path}", highlight=False)


@app.command()
def grade(
    course: Annotated[Path, typer.Option(help="The nbgrader course directory (made by `release`).")],
    assignment: Annotated[str | None, typer.Option(help=ASSIGNMENT_HELP)] = None,
    workers: Annotated[int | None, typer.Option(help="Submissions checked at once (default: "
                                                "the number of cores).", min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="A dask.distributed scheduler (tcp://HOST:PORT) whose workers grade (they need "
             "only this package); the gradebook is written here.")] = None,
    require_isolation: Annotated[bool, typer.Option(
        "--require-isolation", help="Refuse to grade (exit 2) where the sandbox's namespaces "
                                    "are not available (also: c.IsolatedCheck.require_isolation "
                                    "= True in nbgrader_config.py).")] = False,
    gradescope: Annotated[bool, typer.Option(
        "--gradescope", help="Also write Gradescope's results.json of each submission: "
                             "COURSE/gradescope/<student>/<assignment>/results.json.")] = False,
) -> None:
    """Grade every submitted/<student>/<assignment>/<notebook> into nbgrader's gradebook."""
    if scheduler is None:  # the warm workers import torch while this process imports nbgrader
        from .sandbox.launch import start_warm_workers

        start_warm_workers()
    from .course.grade import GradeError, grade_course
    from .course.show import print_class, progress_bar
    from .lesson.model import LessonError

    console = Console()
    try:
        with progress_bar(console) as on_progress:
            outcomes = grade_course(course, workers=workers, on_progress=on_progress,
                                    scheduler=scheduler, require_isolation=require_isolation,
                                    assignment=assignment, gradescope=gradescope)
    except (GradeError, LessonError) as exc:
        fail(str(exc))
    print_class(outcomes, course.resolve(), console)
    for graded in dict.fromkeys(o.assignment for o in outcomes):
        console.print(f"the class report: autograder report --course {course} --assignment "
                      f"{graded}", highlight=False, soft_wrap=True)


@app.command()
def report(
    course: Annotated[Path, typer.Option(help="The nbgrader course directory (graded by `grade`).")],
    assignment: Annotated[str | None, typer.Option(
        help="One lesson (default: each lesson of the course that someone handed in).")] = None,
) -> None:
    """The class report of the last `grade`, per lesson: DIR/reports/<assignment>/index.html and
    mistakes.csv."""
    from .course.classreport import ReportError, print_summary, write_reports

    try:
        made = write_reports(course, assignment)
    except ReportError as exc:
        fail(str(exc))
    console = Console()
    for one in made:
        if len(made) > 1:
            console.rule(f"lesson {escape(one.assignment)}")
        print_summary(one, console)
    if len(made) > 1:
        console.print(f"\n{len(made)} class reports:", highlight=False)
        for one in made:
            console.print(f"  {escape(one.assignment)}: {one.page}", highlight=False,
                          soft_wrap=True)


@app.command()
def serve(
    course: Annotated[Path, typer.Option(help="The nbgrader course directory (released into "
                                              "its exchange by `release`).")],
    burst: Annotated[int, typer.Option(help="Results each student gets at once (the rate "
                                            "limit's bucket).", min=1)] = 3,
    every: Annotated[float, typer.Option(help="Then one result per EVERY minutes per student "
                                              "(0: no limit).", min=0)] = 0.0,
    workers: Annotated[int | None, typer.Option(help="Submissions checked at once (default: "
                                                "the number of cores).", min=1)] = None,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the exchange.",
                                        min=0.05)] = 0.5,
    batch: Annotated[int | None, typer.Option(help="At most BATCH submissions a round (default: "
                                              "four per worker, at least 8).", min=1)] = None,
    once: Annotated[bool, typer.Option("--once", help="Grade what is waiting, then stop.")] = False,
    scheduler: Annotated[str | None, typer.Option(
        help="A dask.distributed scheduler (tcp://HOST:PORT) whose workers grade (they need "
             "only this package); the gradebook and pages are written here.")] = None,
) -> None:
    """Grade each submission as it lands in the exchange and release its feedback at once."""
    if scheduler is None:  # the warm workers import torch while this process imports nbgrader
        from .sandbox.launch import start_warm_workers

        start_warm_workers()
    import signal

    from .course.serve import ServeError, Server

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(True))
    try:
        server = Server(course, burst=burst, every_minutes=every, workers=workers, poll=poll,
                        batch=batch, log=lambda line: print(line, flush=True),
                        scheduler=scheduler)
    except ServeError as exc:
        fail(str(exc))
    print(f"serving {server.course} from {server.inbound} (Ctrl-C stops)", flush=True)
    try:
        if once:
            while server.round():
                pass
        else:
            server.serve(until=lambda: bool(stop))
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@app.command("new-lesson")
def new_lesson(
    lesson_id: Annotated[str, typer.Argument(metavar="ID", help="The lesson's id: its folder, "
                                             "notebook and nbgrader assignment name.")],
    into: Annotated[Path, typer.Option(
        help="The folder of lessons to write it in (its solutions go beside it, in "
             "INTO/../solutions/ID).")] = Path("assignments"),
) -> None:
    """Write a working lesson to start from: INTO/ID (lesson.toml, lesson.py, ID.ipynb) and
    INTO/../solutions/ID (reference.py, samples.py)."""
    from .lesson import model
    from .lesson.skeleton import SkeletonError, write

    try:
        lesson, solutions = write(lesson_id, into)
    except SkeletonError as exc:
        fail(str(exc))
    console = Console(highlight=False, markup=False, soft_wrap=True)
    console.print(f"wrote: {lesson} (lesson.toml, lesson.py, {lesson_id}.ipynb)")
    console.print(f"wrote: {solutions} (reference.py, samples.py)")
    on_path = "" if lesson.parent == model.BUNDLED.resolve() else \
        f"AUTOGRADER_LESSONS={lesson.parent} "
    console.print(f"next: make it yours (docs/lessons.md, \"Start a new lesson\"), then "
                  f"{on_path}autograder release --course COURSE --assignment {lesson_id}")


@app.command()
def status(
    course: Annotated[str | None, typer.Option(help="The course id (default: your nbgrader "
                                                    "configuration's, else every course you "
                                                    "handed in to).")] = None,
) -> None:
    """Where each of your hand-ins stands: waiting (its place), graded, superseded, or held by
    the rate limit (until when), as `autograder serve` says it in nbgrader's exchange."""
    from .present.terminal import visible

    try:
        from nbgrader.apps.baseapp import NbGrader
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.exchange.default import Exchange
    except ImportError:
        fail("`autograder status` reads nbgrader's exchange, and nbgrader is not installed here")
    from .course.serve.status import lines_for_student

    nbgrader = NbGrader()  # your nbgrader_config.py, read as every nbgrader command reads it
    nbgrader.log.setLevel("ERROR")
    nbgrader.initialize([])
    config = nbgrader.config
    exchange = Exchange(coursedir=CourseDirectory(config=config), config=config,
                        authenticator=Authenticator(config=config))
    course = course or config.CourseDirectory.get("course_id") or None
    cache = Path(exchange.cache)
    said = 0
    for line in lines_for_student(cache, Path(exchange.root), course):
        print(visible(line, lines=False))
        said += 1
    if not said:
        print(f"no hand-ins{' to ' + course if course else ''} from this account yet "
              f"(nbgrader's cache {cache} holds none)")


@app.command()
def demo(
    course: Annotated[Path, typer.Argument(help="Where to make the demo course.")] = Path("demo-course"),
) -> None:
    """Release the lessons into a course, grade a sample class of each, print the table."""
    from .course.demo import demo as run_demo
    from .course.grade import GradeError
    from .course.release import ReleaseError
    from .lesson.model import LessonError

    try:
        code = run_demo(course, Console())
    except (ReleaseError, GradeError, LessonError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


def main() -> None:
    # Last at exit: the interpreter's final collection would walk every object that torch and
    # nbgrader made (about 0.8 s); frozen, they are freed with the process.
    atexit.register(gc.freeze)
    try:
        app()
    except ImportError as exc:  # the course tools refuse another nbgrader: its one line alone
        if exc.name != "autograder.course.nbgrader_parts":
            raise
        err.print(f"autograder: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
