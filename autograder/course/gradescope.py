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


def find_submission(folder: Path, chosen: list | None = None) -> Path | None:
    """A lesson's notebook (`backward.ipynb`...; of the `chosen` lessons, default all) in
    Gradescope's submission folder, else its only notebook."""
    for lesson in chosen or lessons.available().values():
        named = sorted(folder.rglob(lesson.notebook))
        if named:
            return named[0]
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return found[0] if len(found) == 1 else None


def main(argv: list[str] | None = None) -> int:
    from ..engine import check_notebook
    from ..notebook import NotebookError

    argv = sys.argv[1:] if argv is None else argv
    folder, dest = Path(argv[0] if argv else "/autograder/submission"), \
        Path(argv[1] if len(argv) > 1 else "/autograder/results/results.json")
    start = time.monotonic()
    lesson = lessons.find(argv[2]) if len(argv) > 2 and argv[2] else None
    known = [lesson] if lesson else list(lessons.available().values())
    path = find_submission(folder, known)
    if path is None:
        names = " or ".join(known_lesson.notebook for known_lesson in known)
        data = results(None, f"no {names} in the submission: upload your notebook",
                       max((sum(k.default_points().values()) for k in known), default=0.0))
    else:
        try:
            report = check_notebook(path, lesson=lesson)
        except (NotebookError, lessons.LessonError) as exc:
            data = results(None, str(exc).replace(str(path), path.name))
        except Exception as exc:  # noqa: BLE001 - the grader's own failure: one line, no traceback
            data = results(None, f"the grader failed: {type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())[:300]}: tell your instructor")
        else:
            data = results(report)
    data["execution_time"] = round(time.monotonic() - start, 3)
    write(dest, data)
    print(f"score: {data['score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
