"""Gradescope: a report as Gradescope's `results.json`, and the entry point of `run_autograder`.

Gradescope's autograder spec: top-level `score`, `execution_time`, `output`, `visibility`,
`stdout_visibility` and `tests`, each test with `name`, `score`, `max_score`, `status`,
`output` and `visibility`. One test per target (`mse_grad`, ...), its checks inside: a line per
distinct mistake, as the self-check says it, every line within the self-check's 88 columns. The
outputs are "text", which Gradescope shows as preformatted text (student text in them needs no
escaping of ours). With several notebooks uploaded, the output says
which was graded and why each other was not. Needs no nbgrader: on Gradescope only torch and
this package are installed.

    python -m autograder.course.gradescope SUBMISSION_DIR RESULTS_JSON [ASSIGNMENT]

ASSIGNMENT (`run_autograder` passes its `ASSIGNMENT`) is the lesson this Gradescope assignment
grades: set by the instructor, never taken from the student's notebook. Without it, the
notebook's lesson is found from its answer cells (`lesson.for_notebook`).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..answer import notebook
from ..lesson import model as lessons
from ..present.report import WIDTH, Report, for_students, wrapped


def results(report: Report | None, reason: str | None = None, max_score: float | None = None,
            execution_time: float | None = None, graded: str | None = None,
            ignored: list[tuple[str, str]] = ()) -> dict:
    """Gradescope's results for one submission; `reason` when it could not be graded. `graded`:
    the file graded, where the submission had several; `ignored`: each other, and why."""
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
    targets = list(dict.fromkeys(c.target for c in report.checks))
    tests = []
    for number, target in enumerate(targets, 1):
        got, out_of = report.target_score(target)
        mine = [c for c in report.checks if c.target == target]
        tests.append({"name": target, "number": str(number), "score": float(got),
                      "max_score": float(out_of),
                      "status": "passed" if all(c.passed for c in mine) else "failed",
                      "output": target_output(report, target), "visibility": "visible"})
    said = [f"graded: {graded}"] if graded else []
    said += [f"not graded: {name}: {why}" for name, why in ignored]
    said += [f"note: {n}" for n in report.notes if for_students(n)]  # the jail's: not for them
    out.update(score=float(report.score), tests=tests, output="\n".join(
        line for one in said for line in wrapped(one, WIDTH, first="", rest="    ")))
    return out


def target_output(report: Report, target: str) -> str:
    """One target's checks as its Gradescope test says them, in the self-check's words
    (`Report.student_text`): a line per distinct mistake, the checks it fails named, its codes
    on a line of their own; the checks that wait for another; then the checks that pass."""
    mine = [c for c in report.checks if c.target == target]
    failed, passing = report.grouped(target)
    if not failed and not report.waiting(target):
        return "\n".join(wrapped(f"all {len(mine)} checks pass: {', '.join(passing)}", WIDTH,
                                  first="", rest="    "))
    head = report.head(target).split(": ", 1)[1]
    lines = report.student_text(target, width=WIDTH + 2).splitlines()[1:]  # less its indent
    return "\n".join([head] + [line[2:] for line in lines])


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write_all(course: Path, outcomes: list) -> None:
    """`DIR/gradescope/<student>/<assignment>/results.json` for each student of a graded class."""
    for o in outcomes:
        write(course / "gradescope" / o.student / o.assignment / "results.json",
              results(o.report, o.reason, o.max_score))


def renamed(expected: str, notebooks: list[str]) -> str:
    """The one rule of a renamed notebook, in both routes (`autograder grade` and `serve`
    through nbgrader, and Gradescope): a hand-in is graded from the notebook named as its
    lesson's (`backward.ipynb`); one that holds only notebooks of other names (Jupyter's
    `backward-Copy1.ipynb`, a `mine.ipynb`) gets 0, and the student reads this one line."""
    shown = (" and ".join(notebooks) if len(notebooks) <= 2
             else f"{notebooks[0]}, {notebooks[1]} and {len(notebooks) - 2} more")
    which = "it" if len(notebooks) == 1 else "the one with your answers"
    return (f"no {expected} in your hand-in, only {shown}: rename {which} back to {expected} "
            "and submit it again")


#: Names looked at in a submission folder, at most (a folder of a million files is walked no
#: further).
MAX_ENTRIES = 10_000
#: Notebooks read from one submission, at most: the lesson's own names first.
MAX_NOTEBOOKS = 8


def find_submission(folder: Path, chosen: list | None = None
                    ) -> tuple[list[tuple[str, ...]], str]:
    """The notebooks in Gradescope's submission folder, as the parts of a path under `folder`:
    those named as a lesson's (`backward.ipynb`...; of the `chosen` lessons, default all) first,
    then the others, at most `MAX_NOTEBOOKS`; or none and the reason there is none. One walk,
    never into a link, at most `MAX_ENTRIES` names. What it names may still be a link, a FIFO or
    too large: `files.read_under` says."""
    chosen = chosen or list(lessons.available().values())
    names = [lesson.notebook for lesson in chosen]
    found, links, seen = [], [], 0
    for rel, entries in files.walk(folder, MAX_ENTRIES):
        if rel is None:
            break
        for entry in entries:
            seen += 1
            parts = (*rel, entry.name)
            if entry.is_symlink():
                links.append(parts)
            if entry.name in names or (entry.name.endswith(".ipynb")
                                       and ".ipynb_checkpoints" not in parts):
                found.append(parts)
    if found:
        def order(parts):
            return (parts[-1] not in names, len(parts), parts)

        return sorted(found, key=order)[:MAX_NOTEBOOKS], ""
    reason = f"no {' or '.join(names)} in the submission"
    if links:
        reason += (f" ({'/'.join(min(links))} is a link: links in a submission are not "
                   "followed)")
    elif seen >= MAX_ENTRIES:
        reason += f" (only its first {MAX_ENTRIES} files were looked at)"
    return [], reason + ": upload your notebook"


@dataclass(eq=False)
class Upload:
    """One notebook of a submission, as the grader sees it before grading."""

    name: str  # its path in the submission
    nb: dict | None = None  # parsed, where it is the only one (`look_at`)
    problem: str = ""  # why it cannot be graded at all
    lesson: str | None = None  # the lesson whose answer cells it has the most of
    answered: int = 0  # the assignment's answer cells that are not the released stub
    cells: int = 0  # the assignment's answer cells it has


STUB = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$",
                  re.M | re.S)


def _normal(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def stubs(lesson) -> dict[str, list[str]]:
    """Each answer cell as nbgrader releases it (the solution replaced by its stub), normalised:
    an answer cell that still reads so holds no answer."""
    from ..engine import source_notebook

    source = source_notebook(lesson)
    if source is None:
        return {}
    return {t: _normal(STUB.sub(r"\1# YOUR CODE HERE\n\1raise NotImplementedError()", cell.source))
            for t, cell in notebook.answer_cells(notebook.code_cells(source), lesson.names).items()}


def look_at(folder: Path, parts: tuple[str, ...], lesson, stub: dict, keep: bool = False
            ) -> Upload:
    """What `folder/parts` is: readable or why not, whose lesson, how many answers written (of
    `lesson`'s answer cells, else of its own lesson's). `stub`: each lesson's `stubs`, by id,
    filled as needed. The parsed notebook is kept (`Upload.nb`) with `keep` only: of several
    notebooks, one at a time is in memory, and the one graded is read again (`read`)."""
    up = Upload("/".join(parts))
    nb = read(folder, parts, up)
    if nb is None:
        return up
    try:
        own = lessons.for_notebook(nb)
        up.lesson = own.id
    except lessons.LessonError:
        own = None
    counted = lesson or own
    if counted is not None:
        if counted.id not in stub:
            stub[counted.id] = stubs(counted)
        mine = notebook.answer_cells(notebook.code_cells(nb), counted.names)
        up.cells = len(mine)
        up.answered = sum(_normal(cell.source) != stub[counted.id].get(t)
                          for t, cell in mine.items())
    up.nb = nb if keep else None
    return up


def read(folder: Path, parts: tuple[str, ...], up: Upload) -> dict | None:
    """The notebook at `folder/parts`, parsed (`notebook.parse_notebook`: its shape checked
    before it is built); None, and `up.problem` says why, where it cannot be graded."""
    try:
        raw = files.read_under(folder, parts, notebook.MAX_NOTEBOOK_BYTES)
        if raw is None:
            up.problem = f"{up.name} is gone: upload your notebook"
            return None
        return notebook.parse_notebook(raw, parts[-1])
    except (files.Refused, notebook.NotebookError) as exc:
        up.problem = one_line(exc)
        return None


def choose(uploads: list[Upload], lesson, names: list[str]
           ) -> tuple[Upload | None, list[tuple[str, str]], str]:
    """Of a submission's notebooks, the one to grade as `lesson` (None: any lesson), the others
    with why each is not graded, or the reason none is. None where no notebook is named as a
    lesson's (`renamed`). The assignment's own notebook with the most answers written; of those
    as full, the one named as the lesson's, then the first."""
    readable = [u for u in uploads if not u.problem]
    if not any(u.name.rsplit("/", 1)[-1] in names for u in uploads):
        # none named as a lesson's: renamed (`renamed`), unless only another lesson's is here
        theirs = {u.lesson for u in readable if u.lesson}
        if lesson is None or not theirs or lesson.id in theirs:
            own = lesson or lessons.available().get(min(theirs, default=""))
            expected = own.notebook if own else " or ".join(names)
            return None, [], renamed(expected, [u.name for u in uploads])
    if lesson is None:
        mine = [u for u in readable if u.lesson is not None] or readable
    else:
        mine = [u for u in readable if u.cells and u.lesson in (lesson.id, None)] or \
               [u for u in readable if u.cells]
    if not mine:
        if lesson is not None:
            other = next((u for u in readable if u.lesson not in (None, lesson.id)), None)
            if other is not None:
                return None, [], (f"{other.name} is the notebook of lesson {other.lesson}, and "
                                  f"this assignment is lesson {lesson.id}: upload your "
                                  f"{lesson.notebook}")
        if len(uploads) == 1 or not readable:
            first = uploads[0]
            if first.problem:
                return None, [], first.problem
            mine = [first]  # graded as it is: the report says what it lacks
        else:
            return None, [], (f"none of {', '.join(u.name for u in uploads)} has the answer "
                              f"cells of lesson {lesson.id}: upload your {lesson.notebook}")
    best = max(mine, key=lambda u: (u.answered, u.name.rsplit("/", 1)[-1] in names,
                                    -uploads.index(u)))
    why = []
    for u in uploads:
        if u is best:
            continue
        if u.problem:
            why.append((u.name, u.problem))
        elif lesson is not None and u.lesson not in (None, lesson.id) and all(
                u is not m for m in mine):
            why.append((u.name, f"the notebook of lesson {u.lesson}"))
        elif not u.cells:
            why.append((u.name, "none of the lesson's answer cells"))
        elif u.answered == best.answered:
            why.append((u.name, f"as many answers as {best.name}: one is graded, upload only it"))
        else:
            why.append((u.name, f"{u.answered} of {u.cells} answers written, fewer than "
                                f"{best.name}'s {best.answered}"))
        u.nb = None
    return best, why, ""


def grade(folder: Path, assignment: str | None) -> dict:
    """Gradescope's results for the submission in `folder`, graded as `assignment` (else as the
    lesson its notebook is). The notebook is read as `autograder grade` reads one: never through
    a link (at any step), a plain file only, at most `notebook.MAX_NOTEBOOK_BYTES`, its shape
    checked before it is parsed. Of several notebooks (one in memory at a time), the
    assignment's with the most answers written is graded, and the results say which, and why
    each other is not."""
    from ..engine import check_parsed

    lesson = lessons.find(assignment) if assignment else None
    known = [lesson] if lesson else list(lessons.available().values())
    out_of = max((sum(k.default_points().values()) for k in known), default=0.0)
    found, reason = find_submission(folder, known)
    if not found:
        return results(None, reason, out_of)
    stub: dict = {}
    uploads = [look_at(folder, parts, lesson, stub, keep=len(found) == 1) for parts in found]
    best, ignored, reason = choose(uploads, lesson, [k.notebook for k in known])
    if best is None:
        return results(None, reason, out_of)
    nb = best.nb or read(folder, found[uploads.index(best)], best)
    if nb is None:
        return results(None, best.problem, out_of)
    best.nb = None
    try:
        report = check_parsed(nb, lesson=lesson)
    except (notebook.NotebookError, lessons.LessonError) as exc:
        return results(None, one_line(exc), out_of)
    return results(report, graded=best.name if len(uploads) > 1 else None, ignored=ignored)


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
