"""The class report on the terminal: per-target scores, the commonest mistakes, who could not be
graded, who handed in late, and where the page is."""

from __future__ import annotations

from .model import TOP_MISTAKES, ClassReport


def print_summary(report: ClassReport, console) -> None:
    """A short summary on the terminal: per-target scores, the commonest mistakes, who could not
    be graded, who handed in late (`late: N`, then each in their feedback page's words), and
    where the page is."""
    from rich.table import Table

    from ...present.terminal import shown as escape

    table = Table(title=f"class report: {escape(report.assignment)}, {len(report.graded)} graded "
                        f"of {len(report.rows)} handed in")
    for name, justify in (("target", "left"), ("mean", "right"), ("full marks", "right"),
                          ("zero", "right"), ("points: students", "left")):
        table.add_column(name, justify=justify)
    for s in report.per_target:
        table.add_row(escape(s.target), f"{s.mean:.3g} / {s.out_of:g}",
                      f"{s.full_marks} of {s.graded}", f"{s.zero} of {s.graded}", s.spread)
    console.print(table)
    if report.mistakes:
        table = Table(title="most common mistakes")
        table.add_column("mistake")
        table.add_column("students", justify="right")
        table.add_column("what the checks said")
        table.add_column("who")
        for m in report.mistakes[:TOP_MISTAKES]:
            who = ", ".join(m.students[:6]) + (f" and {len(m.students) - 6} more"
                                               if len(m.students) > 6 else "")
            table.add_row(escape(m.code), str(len(m.students)), escape(m.message), escape(who))
        console.print(table)
    for note, students in report.reference_notes().items():
        console.print(f"[yellow]for the instructor[/] ({len(students)} of {len(report.rows)} "
                      f"submissions): {escape(note)}", highlight=False, soft_wrap=True)
    for r in report.not_graded:
        console.print(f"[red]not graded[/]: {escape(r.student)}: {escape(r.reason or '')}",
                      highlight=False, soft_wrap=True)
    if report.late:  # in the words of each student's feedback page
        console.print(f"[yellow]late[/]: {len(report.late)} of {len(report.rows)} handed in",
                      highlight=False)
        for r in report.late:
            console.print(f"  {escape(r.student)}: {escape(r.late)}", highlight=False,
                          soft_wrap=True)
    for r in report.rows:
        if r.problem:
            console.print(f"[yellow]note[/]: {escape(r.student)}: {escape(r.problem)}",
                          highlight=False, soft_wrap=True)
    if report.page is not None:
        console.print(f"class report: {report.page} (and {report.csv.name} beside it)",
                      highlight=False, soft_wrap=True)
