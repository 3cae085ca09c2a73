"""`autograder report --course DIR`: what a class did not understand, seen in a minute.

    the gradebook (who handed in, each grade cell's score, manual ones included)    gradebook.py
  + each student's report from the last `autograder grade` (`keep`, read back)      kept.py
  -> the class, its mistakes ranked and each target's statistics, computed once     model.py
  -> DIR/reports/<assignment>/index.html (tables, matplotlib figures inline)       page.py, figures.py
     DIR/reports/<assignment>/mistakes.csv (a row per student and target)          mistakes_csv.py
     a terminal summary                                                            summary.py
`write_reports`: each lesson of the course that someone handed in, its own folder each.
"""

from __future__ import annotations

from pathlib import Path

from .figures import figures
from .gradebook import ReportError, assignments, collect
from .kept import MAX_KEPT_BYTES, Kept, KeptCheck, Unreadable, folder, keep, parse_kept, read_kept
from .mistakes_csv import CSV_COLUMNS, write_csv
from .model import ClassReport, Mistake, Row, TargetStats
from .page import page
from .summary import print_summary

__all__ = ["CSV_COLUMNS", "MAX_KEPT_BYTES", "ClassReport", "Kept", "KeptCheck", "Mistake",
           "ReportError", "Row", "TargetStats", "Unreadable", "assignments", "collect", "figures",
           "folder", "keep", "page", "parse_kept", "print_summary", "read_kept", "write_csv",
           "write_report", "write_reports"]


def write_report(course: str | Path, assignment: str | None = None) -> ClassReport:
    """Collect the class, then write its page and CSV under `reports/<assignment>/`."""
    report = collect(course, assignment)
    dest = folder(report.course, report.assignment)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        report.csv = write_csv(report, dest / "mistakes.csv")
        report.page = dest / "index.html"
        report.page.write_text(page(report), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the class report in {dest}: {exc.strerror}") from None
    return report


def write_reports(course: str | Path, assignment: str | None = None) -> list[ClassReport]:
    """`assignment`'s class report, or, without one, each lesson's that someone handed in, each
    under its own `reports/<assignment>/` (one lesson's files never overwrite another's)."""
    if assignment is not None:
        return [write_report(course, assignment)]
    return [write_report(course, name) for name in assignments(course)]
