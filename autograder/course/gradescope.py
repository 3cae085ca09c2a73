"""Gradescope: a report as Gradescope's `results.json`, and the entry point of `run_autograder`.

Gradescope's autograder spec: top-level `score`, `execution_time`, `output`, `visibility`,
`stdout_visibility` and `tests`, each test with `name`, `score`, `max_score`, `status`,
`output` and `visibility`. One test per check (`mse_grad/values-float64`, ...). Needs no
nbgrader: on Gradescope only torch and this package are installed.

    python -m autograder.course.gradescope SUBMISSION_DIR RESULTS_JSON [ASSIGNMENT]

ASSIGNMENT (`run_autograder` passes its `ASSIGNMENT`) is the lesson this Gradescope assignment
grades: set by the instructor, never taken from the student's notebook. Without it, the
notebook's lesson is found from its answer cells (`lesson.for_notebook`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .. import files, notebook
from .. import lesson as lessons
from ..report import Report, for_students


def results(report: Report | None, reason: str | None = None, max_score: float | None = None,
            execution_time: float | None = None) -> dict:
    """Gradescope's results for one submission; `reason` when it could not be graded."""
    out: dict = {"visibility": "visible", "stdout_visibility": "hidden", "output_format": "text",
                 "test_output_format": "text"}
    if execution_time is not None:
        out["execution_time"] = round(float(execution_time), 3)
    if report is None:
        total = float(max_score or 0.0)
        out.update(score=0.0, output=f"Not graded: {reason}", tests=[
            {"name": "the notebook can be graded", "score": 0.0, "max_score": total,
             "status": "failed", "output": reason or "", "visibility": "visible"}])
        return out
    tests = []
    for number, c in enumerate(report.checks, 1):
        codes = f"\n[{', '.join(c.mistakes)}]" if c.mistakes else ""
        tests.append({"name": c.id, "number": str(number), "score": float(c.points),
                      "max_score": float(c.max_points), "status": "passed" if c.passed else "failed",
                      "output": c.message + codes, "tags": [c.target], "visibility": "visible"})
    summary = [f"{t}: {report.target_score(t)[0]:g} / {report.target_score(t)[1]:g}"
               for t in dict.fromkeys(c.target for c in report.checks)]
    notes = [f"note: {n}" for n in report.notes if for_students(n)]  # the jail's: not for them
    out.update(score=float(report.score), output="\n".join(summary + notes),
               tests=tests)
    return out


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write_all(course: Path, outcomes: list) -> None:
    """`DIR/gradescope/<student>/<assignment>/results.json` for each student of a graded class."""
    for o in outcomes:
        write(course / "gradescope" / o.student / o.assignment / "results.json",
              results(o.report, o.reason, o.max_score))


#: Names looked at in a submission folder, at most (a folder of a million files is walked no
#: further).
MAX_ENTRIES = 10_000


def find_submission(folder: Path, chosen: list | None = None
                    ) -> tuple[tuple[str, ...] | None, str]:
    """Where a lesson's notebook (`backward.ipynb`...; of the `chosen` lessons, default all) is in
    Gradescope's submission folder, else its only notebook, as the parts of a path under `folder`;
    or None and the reason there is none. One walk, never into a link, at most `MAX_ENTRIES`
    names. What it names may still be a link, a FIFO or too large: `files.read_under` says."""
    chosen = chosen or list(lessons.available().values())
    named: dict[str, list[tuple[str, ...]]] = {lesson.notebook: [] for lesson in chosen}
    others, links, seen = [], [], 0
    for rel, entries in files.walk(folder, MAX_ENTRIES):
        if rel is None:
            break
        for entry in entries:
            seen += 1
            parts = (*rel, entry.name)
            if entry.is_symlink():
                links.append(parts)
            if entry.name in named:
                named[entry.name].append(parts)
            elif entry.name.endswith(".ipynb") and ".ipynb_checkpoints" not in parts:
                others.append(parts)
    for lesson in chosen:
        if named[lesson.notebook]:
            return min(named[lesson.notebook]), ""
    if len(others) == 1:
        return others[0], ""
    reason = f"no {' or '.join(lesson.notebook for lesson in chosen)} in the submission"
    if links:
        reason += (f" ({'/'.join(min(links))} is a link: links in a submission are not "
                   "followed)")
    elif seen >= MAX_ENTRIES:
        reason += f" (only its first {MAX_ENTRIES} files were looked at)"
    return None, reason + ": upload your notebook"


def grade(folder: Path, assignment: str | None) -> dict:
    """Gradescope's results for the submission in `folder`, graded as `assignment` (else as the
    lesson its notebook is). The notebook is read as `autograder grade` reads one: never through
    a link (at any step), a plain file only, at most `notebook.MAX_NOTEBOOK_BYTES`."""
    from ..engine import check_parsed

    lesson = lessons.find(assignment) if assignment else None
    known = [lesson] if lesson else list(lessons.available().values())
    out_of = max((sum(k.default_points().values()) for k in known), default=0.0)
    parts, reason = find_submission(folder, known)
    if parts is None:
        return results(None, reason, out_of)
    try:
        raw = files.read_under(folder, parts, notebook.MAX_NOTEBOOK_BYTES)
        if raw is None:
            return results(None, f"{'/'.join(parts)} is gone: upload your notebook", out_of)
        nb = notebook.parse_notebook(raw, parts[-1])
        return results(check_parsed(nb, lesson=lesson))
    except (files.Refused, notebook.NotebookError, lessons.LessonError) as exc:
        return results(None, one_line(exc), out_of)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def main(argv: list[str] | None = None) -> int:
    """Always writes `results.json`: a submission that cannot be graded, or a grader that fails,
    is 0 with the reason in one line."""
    argv = sys.argv[1:] if argv is None else argv
    folder, dest = Path(argv[0] if argv else "/autograder/submission"), \
        Path(argv[1] if len(argv) > 1 else "/autograder/results/results.json")
    start = time.monotonic()
    try:
        data = grade(folder, argv[2] if len(argv) > 2 and argv[2] else None)
    except Exception as exc:  # noqa: BLE001 - the grader's own failure: one line, no traceback
        data = results(None, f"the grader failed: {type(exc).__name__}: {one_line(exc)}: "
                             "tell your instructor")
    data["execution_time"] = round(time.monotonic() - start, 3)
    write(dest, data)
    print(f"score: {data['score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
