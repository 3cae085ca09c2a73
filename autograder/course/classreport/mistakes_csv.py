"""`mistakes.csv`: a row per student and target, for a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path

from .model import ClassReport

CSV_COLUMNS = ["student_id", "target", "score", "max_score", "mistakes", "note"]


def write_csv(report: ClassReport, path: Path) -> Path:
    """A row per student and target: the gradebook's score, the mistake codes (space between),
    and, in `note`, why it was not graded or why its mistakes are not known."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in report.rows:
            for target in report.targets:
                got, out_of = row.scores.get(target, (0.0, report.out_of(target)))
                note = f"not graded: {row.reason}" if row.reason else (row.problem or "")
                writer.writerow([row.student, target, f"{got:g}", f"{out_of:g}",
                                 " ".join(row.mistakes(target)), note])
    return path
