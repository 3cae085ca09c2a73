"""What a person sees while a class is graded: a progress bar with ETA, then the class table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..present.terminal import shown as escape
from . import feedback


@contextmanager
def progress_bar(console: Console) -> Iterator:
    """Yields `on_progress(total, outcome)` for `grade_course`."""
    with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("[dim]{task.fields[last]}"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("grading", total=None, last="")

        def on_progress(total: int, outcome) -> None:
            if outcome is None:
                bar.update(task, total=total)
            else:
                bar.update(task, advance=1, last=escape(outcome.student, lines=False))

        yield on_progress


def print_class(outcomes: list, course: Path, console: Console) -> None:
    several = len({o.assignment for o in outcomes}) > 1
    table = Table(title=f"{len(outcomes)} submissions graded")
    if several:
        table.add_column("assignment")
    table.add_column("student")
    table.add_column("score", justify="right")
    table.add_column("mistakes, or why it was not graded")
    for o in outcomes:
        late = f" [yellow](late: -{o.late_penalty:g})[/]" if o.late_penalty else (
            " [yellow](late)[/]" if o.seconds_late > 0 else "")
        if o.reason:
            said = f"[red]not graded:[/] {escape(o.reason)}"
        else:
            said = escape(", ".join(o.mistakes)) if o.mistakes else "[green]none[/]"
        row = [escape(o.student), f"{o.score:g} / {o.max_score:g}{late}", said]
        table.add_row(*([escape(o.assignment)] if several else []), *row)
    console.print(table)
    from ..present.report import reference_notes

    wrong = reference_notes((o.student, o.report.notes) for o in outcomes if o.report)
    for note, students in wrong.items():  # the instructor's bug, said once for the class
        console.print(f"[yellow]for the instructor[/] ({len(students)} submission(s)): "
                      f"{escape(note)}", highlight=False, soft_wrap=True)
    if outcomes:
        from ..lesson import model as lessons

        first = outcomes[0]
        example = feedback.page(course, first.student, lessons.find(first.assignment, course))
        console.print(f"feedback pages: {course / 'feedback'}/<student>/<assignment>/"
                      f"<notebook>.html, e.g. {escape(str(example), lines=False)}",
                      highlight=False, soft_wrap=True)
    from .config import where_gradebook

    console.print(f"gradebook: {escape(where_gradebook(course), lines=False)} (formgrader in "
                  f"JupyterLab shows it); grades: {course / 'grades.csv'}", highlight=False, soft_wrap=True)
