"""`grades.csv`: nbgrader's own CSV export (the columns of `nbgrader export`), plus `note`.

The first eleven columns are exactly what stock `nbgrader export` writes; the last, `note`, says
why a submission could not be graded (empty otherwise).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from nbgrader.plugins import CsvExportPlugin
from traitlets.config import Config


def grades_csv(course: Path, cfg: Config, notes: dict[tuple[str, str], str]) -> Path:
    """nbgrader's export, with `notes` by (assignment, student)."""
    dest = course / "grades.csv"
    with Gradebook(cfg.CourseDirectory.db_url, CourseDirectory(config=cfg).course_id) as gb:
        CsvExportPlugin(to=str(dest), config=cfg).export(gb)
    lines = dest.read_text().splitlines()
    out = [lines[0] + ",note"]
    for line in lines[1:]:
        # assignment, duedate, timestamp and student_id come first and hold no commas
        assignment, _, _, student = line.split(",", 4)[:4]
        out.append(line + "," + quote(notes.get((assignment, student), "")))
    dest.write_text("\n".join(out) + "\n")
    return dest


def quote(text: str) -> str:
    if not text:
        return ""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([text])
    return buffer.getvalue()
