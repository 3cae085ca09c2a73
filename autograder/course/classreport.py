"""`autograder report --course DIR`: what a class did not understand, seen in a minute.

    the gradebook (who handed in, each grade cell's score, manual ones included)
  + each student's report from the last `autograder grade` (`keep`, read back by `read_kept`)
  -> DIR/reports/<assignment>/index.html (tables, matplotlib figures inline as PNG),
     DIR/reports/<assignment>/mistakes.csv (a row per student and target), a terminal summary.

The kept reports are written by the grader's trusted side, but a course folder is only files:
each is read without following a link, at most `MAX_KEPT_BYTES`, and checked field by field
before anything of it is used. One that is not right is named, in one line, on the page.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .. import files
from ..lesson import Target
from ..report import REFERENCE_NOTE, Report, reference_notes

FORMAT = 1  # of a kept report
MAX_KEPT_BYTES = 4 << 20
MAX_CHECKS = 1000
MAX_TEXT = 4000  # characters of a message, a reason or a note
MAX_CODES = 50  # mistake codes on one check
MAX_NOTES = 100
#: A mistake code or a target, as the catalogue writes them: plain names, dots and dashes.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
TOP_MISTAKES = 10  # in the figure and the terminal summary (the page lists them all)
NOT_GRADED = "Not graded: "  # how record.py's comment in the gradebook starts


class ReportError(RuntimeError):
    """No class report can be made; the message says why, in one line."""


class Unreadable(ValueError):
    """A kept report that is not one; the message says why, in one line."""


def folder(course: Path, assignment: str) -> Path:
    return Path(course) / "reports" / assignment


def _kept_parts(assignment: str, student: str) -> tuple[str, ...] | None:
    if not student or "/" in student or student in (".", "..") or "/" in assignment:
        return None
    return ("reports", assignment, "students", f"{student}.json")


# --- kept by `autograder grade` ------------------------------------------------------------------

def keep(course: Path, assignment: str, student: str, report: Report | None,
         reason: str | None) -> None:
    """Keep what grading found for `student`: `reports/<assignment>/students/<student>.json`, the
    report as `autograder check --json` gives it (every note: the instructor's log, the sandbox's
    layers too), or the reason it could not be graded. Replaces the last one in one step; where it
    cannot be written, the class report says so for this student, and grading goes on."""
    parts = _kept_parts(assignment, student)
    if parts is None:
        return
    path = Path(course).joinpath(*parts)
    data = {"format": FORMAT, "student": student, "assignment": assignment, "reason": reason,
            "report": report.to_dict() if report is not None else None}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True)
class Check:
    """What the class report uses of one check."""

    target: str
    passed: bool
    points: float
    max_points: float
    message: str
    mistakes: tuple[str, ...]


@dataclass
class Kept:
    reason: str | None
    checks: list[Check]
    reference: list[str] = field(default_factory=list)  # its notes on the lesson's reference


def read_kept(course: Path, assignment: str, student: str) -> Kept | None:
    """`student`'s kept report, checked; None where there is none. Raises `Unreadable`."""
    parts = _kept_parts(assignment, student)
    if parts is None:
        return None
    try:
        raw = files.read_under(Path(course), parts, MAX_KEPT_BYTES)
    except files.Refused as exc:  # its reason speaks of submissions: keep what it says of the file
        raise Unreadable(str(exc).split(":")[0]) from None
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Unreadable(f"{'/'.join(parts)} is not JSON") from None
    try:
        return parse_kept(data, assignment, student)
    except Unreadable as exc:
        raise Unreadable(f"{'/'.join(parts)} is not a report of `autograder grade`: {exc}") from None


def parse_kept(data, assignment: str, student: str) -> Kept:
    """A kept report from its JSON data, each field checked (type, size, form)."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise Unreadable(what)

    def text(value, what: str) -> str:
        need(isinstance(value, str) and len(value) <= MAX_TEXT, f"{what} is not a short text")
        return value

    def number(value, what: str) -> float:
        need(isinstance(value, (int, float)) and not isinstance(value, bool)
             and math.isfinite(value), f"{what} is not a number")
        return float(value)

    need(isinstance(data, dict), "not an object")
    need(data.get("format") == FORMAT, f"format is not {FORMAT}")
    need(data.get("student") == student, "it is another student's")
    need(data.get("assignment") == assignment, "it is another assignment's")
    reason = data.get("reason")
    if reason is not None:
        reason = text(reason, "reason")
    report = data.get("report")
    need(report is None or isinstance(report, dict), "report is not an object")
    need((report is None) != (reason is None), "it holds neither a report nor a reason, or both")
    if report is None:
        return Kept(reason, [])
    raw_checks = report.get("checks")
    need(isinstance(raw_checks, list) and len(raw_checks) <= MAX_CHECKS,
         f"checks is not a list of at most {MAX_CHECKS}")
    notes = report.get("notes", [])
    need(isinstance(notes, list) and len(notes) <= MAX_NOTES, "notes is not a short list")
    for note in notes:
        text(note, "a note")
    said = [n for n in notes if n.startswith(REFERENCE_NOTE)]
    checks = []
    for i, c in enumerate(raw_checks):
        need(isinstance(c, dict), f"check {i} is not an object")
        target = text(c.get("target"), f"check {i}'s target")
        need(bool(NAME.fullmatch(target)), f"check {i}'s target is not a name")
        need(isinstance(c.get("passed"), bool), f"check {i}'s passed is not true or false")
        codes = c.get("mistakes")
        need(isinstance(codes, list) and len(codes) <= MAX_CODES
             and all(isinstance(m, str) and NAME.fullmatch(m) for m in codes),
             f"check {i}'s mistakes are not a short list of codes")
        points, out_of = number(c.get("points"), f"check {i}'s points"), number(
            c.get("max_points"), f"check {i}'s max_points")
        need(0 <= points <= out_of, f"check {i}'s points are not between 0 and max_points")
        checks.append(Check(target, c["passed"], points, out_of,
                            text(c.get("message"), f"check {i}'s message"), tuple(codes)))
    return Kept(None, checks, said)


# --- the class, from the gradebook and the kept reports -------------------------------------------

@dataclass
class Row:
    """One student who handed the assignment in."""

    student: str
    score: float  # the gradebook's, late penalty taken off
    max_score: float
    scores: dict[str, tuple[float, float]]  # target -> (score, max score), manual scores win
    checks: list[Check] = field(default_factory=list)
    reason: str | None = None  # why it could not be graded
    problem: str | None = None  # why its kept report is missing or not used as it is
    reference: list[str] = field(default_factory=list)  # what its grading found of the reference

    def mistakes(self, target: str) -> list[str]:
        codes = [m for c in self.checks if c.target == target and not c.passed for m in c.mistakes]
        return list(dict.fromkeys(codes))

    def named(self, target: str) -> list[str]:
        """What the ranking counts: the specific codes where the checks name one (the general
        kind that comes with them, `lin_grad.wrong_values`, says nothing more), else the
        general ones."""
        from ..diagnose import GENERAL

        codes = self.mistakes(target)
        return [c for c in codes if c.split(".", 1)[-1] not in GENERAL] or codes


@dataclass
class Mistake:
    code: str
    target: str
    students: list[str]
    message: str  # what its students' first check with it said, the most common of those


@dataclass
class ClassReport:
    course: Path
    assignment: str
    targets: list[str]
    rows: list[Row]
    made: str = ""
    page: Path | None = None
    csv: Path | None = None

    @property
    def graded(self) -> list[Row]:
        return [r for r in self.rows if r.reason is None]

    @property
    def not_graded(self) -> list[Row]:
        return [r for r in self.rows if r.reason is not None]

    def mistakes(self) -> list[Mistake]:
        """Each mistake code of the graded, most students first."""
        who: dict[str, list[str]] = {}
        target_of: dict[str, str] = {}
        said: dict[str, Counter] = {}
        for row in self.graded:
            for target in self.targets:
                for code in row.named(target):
                    who.setdefault(code, []).append(row.student)
                    target_of.setdefault(code, target)
            first: dict[str, str] = {}  # a target's first failing check says most (no-autograd's)
            for c in row.checks:
                if not c.passed:
                    for code in c.mistakes:
                        first.setdefault(code, c.message)
            for code, message in first.items():
                said.setdefault(code, Counter())[message] += 1
        found = [Mistake(code, target_of[code], students, said[code].most_common(1)[0][0])
                 for code, students in who.items()]
        order = {t: i for i, t in enumerate(self.targets)}
        return sorted(found, key=lambda m: (-len(m.students), order.get(m.target, 0), m.code))

    def reference_notes(self) -> dict[str, list[str]]:
        """Each note on the lesson's reference (it disagrees with autograd), with the students
        whose grading met it: the instructor's bug, said once."""
        return reference_notes((r.student, r.reference) for r in self.rows)

    def distribution(self, target: str) -> Counter:
        """Score -> how many graded students have it, for one target."""
        return Counter(r.scores[target][0] for r in self.graded if target in r.scores)

    def out_of(self, target: str) -> float:
        return max((r.scores[target][1] for r in self.rows if target in r.scores), default=0.0)


def target_of(grade_cell: str) -> str:
    prefix = Target("", "", "", 0.0, ()).grade_cell  # "check_": a grade cell is named after its target
    return grade_cell.removeprefix(prefix) if grade_cell.startswith(prefix) else grade_cell


def collect(course: str | Path, assignment: str | None = None) -> ClassReport:
    """The class as the gradebook and the kept reports hold it. Raises `ReportError`."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    from .grade import course_config

    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ReportError(f"{course} is not a course: run `autograder release --course {course}` "
                          "first")
    cfg = course_config(course)
    db_url = cfg.CourseDirectory.db_url
    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"{course} has no gradebook: run `autograder release --course {course}` "
                          "and `autograder grade` first")
    with Gradebook(db_url, CourseDirectory(config=cfg).course_id) as gb:
        names = sorted(a.name for a in gb.assignments)
        if assignment is None:
            if len(names) != 1:
                raise ReportError(f"the gradebook has {len(names)} assignments"
                                  + (f" ({', '.join(names)}): choose one with --assignment ID"
                                     if names else f": run `autograder release --course {course}`"))
            assignment = names[0]
        elif assignment not in names:
            raise ReportError(f"the gradebook has no assignment {assignment!r}"
                              + (f" (it has: {', '.join(names)})" if names else ""))
        found = gb.find_assignment(assignment)
        cells = sorted({target_of(c.name) for nb in found.notebooks for c in nb.grade_cells})
        rows = [_row(course, assignment, sub) for sub in found.submissions]
    if not rows:
        raise ReportError(f"nobody has handed in {assignment!r} in the gradebook: run "
                          f"`autograder grade --course {course}` first")
    rows.sort(key=lambda r: r.student)
    # The lesson's order, as the checks come; grade cells no report names, after them.
    seen = [c.target for r in rows for c in r.checks]
    targets = [t for t in dict.fromkeys(seen) if t in cells] + [t for t in cells if t not in seen]
    return ClassReport(course, assignment, targets, rows,
                       made=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))


def _row(course: Path, assignment: str, sub) -> Row:
    student = sub.student.id
    grades = [g for nb in sub.notebooks for g in nb.grades]
    penalty = float(sub.late_submission_penalty or 0.0)
    row = Row(student, max(0.0, float(sub.score) - penalty), float(sub.max_score),
              {target_of(g.name): (float(g.score), float(g.max_score)) for g in grades})
    try:
        kept = read_kept(course, assignment, student)
    except Unreadable as exc:
        kept, row.problem = None, str(exc)
    comments = [c.auto_comment for nb in sub.notebooks for c in nb.comments
                if (c.auto_comment or "").startswith(NOT_GRADED)]
    if kept is None:  # the gradebook's comment still says why it was not graded
        row.reason = comments[0].removeprefix(NOT_GRADED) if comments else None
        if row.reason is None and row.problem is None:
            row.problem = ("no report of `autograder grade` is kept for this student (graded by "
                           "stock `nbgrader autograde`?): its mistakes are not counted; grade "
                           "with `autograder grade` to count them")
        return row
    row.reason, row.checks, row.reference = kept.reason, kept.checks, kept.reference
    # A kept report from an earlier grading than the gradebook's scores: say so.
    auto = {target_of(g.name): float(g.auto_score or 0.0) for g in grades}
    expected = Counter()
    for c in kept.checks:
        expected[c.target] += c.points
    if any(abs(expected.get(t, 0.0) - score) > 1e-6 for t, score in auto.items()):
        row.problem = ("its kept report does not give the gradebook's automatic scores (graded "
                       "again since by stock `nbgrader autograde`?): grade with `autograder grade` "
                       "to bring them together")
    return row


# --- the outputs -----------------------------------------------------------------------------------

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


def figures(report: ClassReport) -> dict[str, str]:
    """The page's figures as base64 PNG: per-target scores, the totals, the common mistakes."""
    from matplotlib.figure import Figure  # no pyplot: no backend or global state is chosen

    def png(fig) -> str:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    out = {}
    graded = report.graded
    if report.targets and graded:
        fig = Figure(figsize=(3.2 * len(report.targets), 2.6))
        for i, target in enumerate(report.targets):
            ax = fig.add_subplot(1, len(report.targets), i + 1)
            counts = report.distribution(target)
            values = sorted(counts)
            ax.bar([f"{v:g}" for v in values], [counts[v] for v in values], color="#4878a8")
            ax.set_title(f"{target} (of {report.out_of(target):g})", parse_math=False)
            ax.set_xlabel("points")
            if i == 0:
                ax.set_ylabel("students")
            ax.yaxis.get_major_locator().set_params(integer=True)
        out["targets"] = png(fig)
        fig = Figure(figsize=(6, 2.6))
        ax = fig.add_subplot()
        totals = Counter(r.score for r in graded)
        ax.bar([f"{v:g}" for v in sorted(totals)], [totals[v] for v in sorted(totals)],
               color="#4878a8")
        ax.set_xlabel(f"score (of {max(r.max_score for r in graded):g})")
        ax.set_ylabel("students")
        ax.yaxis.get_major_locator().set_params(integer=True)
        out["totals"] = png(fig)
    mistakes = report.mistakes()[:TOP_MISTAKES]
    if mistakes:
        fig = Figure(figsize=(7, 0.45 * len(mistakes) + 0.8))
        ax = fig.add_subplot()
        ax.barh(range(len(mistakes)), [len(m.students) for m in mistakes], color="#c0504d")
        ax.set_yticks(range(len(mistakes)), [m.code for m in mistakes])
        for label in ax.get_yticklabels():
            label.set_parse_math(False)
        ax.invert_yaxis()
        ax.set_xlabel(f"students (of {len(graded)} graded)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        out["mistakes"] = png(fig)
    return out


def _img(data: str | None, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">' if data else ""


def page(report: ClassReport) -> str:
    """The whole page, self-contained: every text from the files escaped, figures inline."""
    e = html.escape
    figs = figures(report)
    graded, not_graded = report.graded, report.not_graded
    mean = sum(r.score for r in graded) / len(graded) if graded else 0.0
    out_of = max((r.max_score for r in report.rows), default=0.0)
    parts = [f"<h1>Class report: {e(report.assignment)}</h1>",
             f"<p>{e(str(report.course))}, made {e(report.made)}. {len(report.rows)} handed in: "
             f"{len(graded)} graded (mean score {mean:.3g} / {out_of:g}), {len(not_graded)} could "
             "not be graded.</p>"]
    for note, students in report.reference_notes().items():  # the instructor's, above the class's
        parts.append(f"<p><strong>For the instructor</strong> ({len(students)} of "
                     f"{len(report.rows)} submissions): {e(note)}</p>")

    mistakes = report.mistakes()
    parts.append("<h2>What the class got wrong</h2>")
    if mistakes:
        parts.append(_img(figs.get("mistakes"), "students per mistake"))
        parts.append("<table><tr><th>mistake</th><th>students</th><th>what the checks said</th>"
                     "<th>who</th></tr>")
        for m in mistakes:
            parts.append(f"<tr><td><code>{e(m.code)}</code></td><td>{len(m.students)} of "
                         f"{len(graded)}</td><td>{e(m.message)}</td>"
                         f"<td>{e(', '.join(m.students))}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No mistakes in the graded submissions.</p>")

    parts.append("<h2>Scores per target</h2>")
    parts.append(_img(figs.get("targets"), "students per score, for each target"))
    parts.append("<table><tr><th>target</th><th>mean</th><th>full marks</th><th>zero</th>"
                 "<th>points: students</th></tr>")
    for target in report.targets:
        counts, top = report.distribution(target), report.out_of(target)
        n = sum(counts.values())
        avg = sum(v * k for v, k in counts.items()) / n if n else 0.0
        spread = ", ".join(f"{v:g}: {counts[v]}" for v in sorted(counts))
        parts.append(f"<tr><td>{e(target)}</td><td>{avg:.3g} / {top:g}</td>"
                     f"<td>{counts.get(top, 0)} of {n}</td><td>{counts.get(0.0, 0)} of {n}</td>"
                     f"<td>{e(spread)}</td></tr>")
    parts.append("</table>")
    parts.append(_img(figs.get("totals"), "students per total score"))

    parts.append("<h2>Could not be graded</h2>")
    if not_graded:
        parts.append("<table><tr><th>student</th><th>why</th></tr>")
        parts += [f"<tr><td>{e(r.student)}</td><td>{e(r.reason or '')}</td></tr>"
                  for r in not_graded]
        parts.append("</table>")
    else:
        parts.append("<p>Every submission was graded.</p>")

    parts.append("<h2>Every student</h2><table><tr><th>student</th><th>score</th>"
                 + "".join(f"<th>{e(t)}</th>" for t in report.targets) + "<th>mistakes</th></tr>")
    for r in report.rows:
        cells = "".join(f"<td>{r.scores[t][0]:g}</td>" if t in r.scores else "<td></td>"
                        for t in report.targets)
        said = (f"not graded: {r.reason}" if r.reason else
                " ".join(m for t in report.targets for m in r.mistakes(t)))
        parts.append(f"<tr><td>{e(r.student)}</td><td>{r.score:g} / {r.max_score:g}</td>{cells}"
                     f"<td>{e(said)}</td></tr>")
    parts.append("</table>")
    problems = [r for r in report.rows if r.problem]
    if problems:
        parts.append("<h2>Reports not counted</h2><ul>")
        parts += [f"<li>{e(r.student)}: {e(r.problem or '')}</li>" for r in problems]
        parts.append("</ul>")
    parts.append("<p>A row per student and target: <a href=\"mistakes.csv\">mistakes.csv</a>."
                 "</p>")
    style = ("body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:0.5em 0}"
             "td,th{border:1px solid #ccc;padding:0.2em 0.5em;text-align:left;vertical-align:top}"
             "img{max-width:100%;display:block;margin:0.5em 0}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>Class report: {e(report.assignment)}</title><style>{style}</style></head>\n"
            "<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def print_summary(report: ClassReport, console) -> None:
    """A short summary on the terminal: per-target scores, the commonest mistakes, who could not
    be graded, and where the page is."""
    from rich.table import Table

    from ..terminal import shown as escape

    graded = report.graded
    table = Table(title=f"class report: {escape(report.assignment)}, {len(graded)} graded of "
                        f"{len(report.rows)} handed in")
    for name, justify in (("target", "left"), ("mean", "right"), ("full marks", "right"),
                          ("zero", "right"), ("points: students", "left")):
        table.add_column(name, justify=justify)
    for target in report.targets:
        counts, top = report.distribution(target), report.out_of(target)
        n = sum(counts.values())
        avg = sum(v * k for v, k in counts.items()) / n if n else 0.0
        table.add_row(escape(target), f"{avg:.3g} / {top:g}", f"{counts.get(top, 0)} of {n}",
                      f"{counts.get(0.0, 0)} of {n}",
                      ", ".join(f"{v:g}: {counts[v]}" for v in sorted(counts)))
    console.print(table)
    mistakes = report.mistakes()
    if mistakes:
        table = Table(title="most common mistakes")
        table.add_column("mistake")
        table.add_column("students", justify="right")
        table.add_column("what the checks said")
        table.add_column("who")
        for m in mistakes[:TOP_MISTAKES]:
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
    for r in report.rows:
        if r.problem:
            console.print(f"[yellow]note[/]: {escape(r.student)}: {escape(r.problem)}",
                          highlight=False, soft_wrap=True)
    if report.page is not None:
        console.print(f"class report: {report.page} (and {report.csv.name} beside it)",
                      highlight=False, soft_wrap=True)
