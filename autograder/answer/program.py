"""What the graded process runs: the lesson's own code that the answers need, then the answers.

The student's notebook as a whole never runs in grading. The graded process (`untrusted/`)
runs, in the lesson's order, each answer cell the rules allow (`rules.py`: a cell with code
that hides what it runs is left out, and its target scores 0) and, from the lesson's other
cells, only the statements that define what those answers read (`reading.reachable`): imports,
helpers, data they refer to. The lesson's cells come from the trusted source notebook where
this install has it, so that a changed or added cell of the student's never runs; where it does
not (a student's install), the student's own other cells stand in for them, and the report
says so. So what the rules read is exactly what runs, and nothing else of the student's does:
not their experiments, not a cell that rewrites the harness. The lesson's training loop and
plots do not run either: grading needs none of it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .. import language as lang
from . import notebook, reading, rules


@dataclass
class Program:
    """The graded run's code, and what the rules found on the way."""

    cells: list[dict]  # in run order: {"index", "source", "name", "first_line", "label"}
    answers: dict[str, reading.Cell]  # target -> its answer cell, read (index: in run order)
    findings: dict[str, list[rules.Finding]] = field(default_factory=dict)
    not_run: dict[str, rules.Finding] = field(default_factory=dict)  # target -> why it did not
    lesson_cells: bool = True  # the lesson's cells came from its source, not the notebook
    own_names: dict[str, str] = field(default_factory=dict)  # defined in the student's own cells


    def refuse_autograd(self) -> set[str]:
        """The targets whose code the rules read no autograd in: at run time, any is refused."""
        return {t for t, found in self.findings.items()
                if not any(f.kind == rules.AUTOGRAD for f in found)}


def given_cells(cells: list[notebook.CodeCell], answer_ids: set[int]) -> list[notebook.CodeCell]:
    """The code cells that are neither answers nor tests."""
    return [c for c in cells if c.index not in answer_ids and not c.test and not c.solution]


def build(nb: dict, source: dict | None, entries: dict[str, str],
          language: lang.Language = lang.DEFAULT) -> Program:
    """The program for the student's notebook `nb`; `source` is the lesson's trusted source
    notebook (None where this install lacks it); `entries` a target's function or class name;
    `language` the answer language of the lesson. Each cell is read once (`reading.read_cell`),
    and what the rules, the run and the messages need comes from that reading."""
    theirs = notebook.code_cells(nb)
    mine = notebook.answer_cells(theirs, tuple(entries))
    if source is not None:
        trusted = notebook.code_cells(source)
        positions = {t: c.index for t, c in notebook.answer_cells(trusted, tuple(entries)).items()}
        given = given_cells(trusted, set(positions.values()))
        label = "cell {} of the lesson"
    else:
        positions = {t: c.index for t, c in mine.items()}
        given = given_cells(theirs, set(positions.values()))
        label = "cell {}"
    last = max([c.index for c in given] + list(positions.values()) + [0])
    answers: dict[str, reading.Cell] = {}
    for target, cell in mine.items():
        at = positions.get(target, last + 1 + cell.index)
        answers[target] = reading.read_cell(at, cell.source, magics=False,
                                            name=f"the {target} cell", limit=rules.MAX_ANSWER_BYTES)
    lesson = [reading.read_cell(c.index, c.source, name=label.format(c.index)) for c in given]
    findings = rules.judge(answers, lesson, {t: entries[t] for t in answers},
                           trusted_given=source is not None, language=language)
    runnable = {t: _runnable(c.source, c.tree) for t, c in answers.items()}
    for target, text in runnable.items():
        if text is None:  # what would run is not what was read: it does not run
            findings[target].insert(0, rules.Finding(
                rules.HIDDEN, "code the grader cannot take apart statement by statement", 1))
    not_run = {t: next(f for f in found if f.kind == rules.HIDDEN and not f.where)
               for t, found in findings.items()
               if any(f.kind == rules.HIDDEN and not f.where for f in found)}
    running = [c for t, c in answers.items() if t not in not_run]
    statements = [s for c in sorted([*running, *lesson], key=lambda c: c.index)
                  for s in c.statements]
    wanted = set().union(*(s.uses for c in running for s in c.statements))
    needed = [s for s in reading.reachable(wanted, statements)
              if s.cell not in {c.index for c in running}]
    needed_in: dict[int, list[reading.Statement]] = {}
    for s in needed:
        needed_in.setdefault(s.cell, []).append(s)
    cells = []
    for cell in sorted([*running, *lesson], key=lambda c: c.index):
        target = next((t for t, c in answers.items() if c is cell), None)
        if target is not None:
            cells.append({"index": cell.index, "source": runnable[target],
                          "name": f"cell {mine[target].index}", "first_line": cell.first_line,
                          "label": cell.label(target)})
            continue
        kept = needed_in.get(cell.index)
        if kept:
            text = reading.keep_lines(cell.source, kept)
            text = _runnable(text, reading.parse(text, magics=True))
            if text is None:
                continue
            cells.append({"index": cell.index, "source": text,
                          "name": cell.name.replace(" of the lesson", ""),
                          "first_line": cell.first_line, "label": cell.label()})
    own = _own_names(given_cells(theirs, {c.index for c in mine.values()}), lesson) \
        if source is not None else {}
    return Program(cells, answers, findings, not_run, source is not None, own)


def _runnable(text: str, tree: ast.Module | None) -> str | None:
    """What grading runs of a cell: its text, with the statements the rules leave unread
    (`rules.inert`: prints, debugger calls) replaced by `pass`; None where the text that would
    run does not parse to exactly the statements the rules read (the proof is a second parse)."""
    if tree is None:
        return text
    inert = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and rules.inert(n)]
    if not inert:
        return text
    out = reading.without(text, inert)
    again = reading.parse(out)
    return out if again is not None and \
        ast.dump(again) == ast.dump(_with_passes(tree, {id(n) for n in inert})) else None


def _with_passes(tree: ast.Module, inert: set[int]) -> ast.Module:
    """`tree` with each statement in `inert` (by id) a `pass`: what `_runnable` must give."""
    import copy

    clone = copy.deepcopy(tree)
    replace = {id(c) for o, c in zip(ast.walk(tree), ast.walk(clone), strict=True)
               if id(o) in inert}
    for node in ast.walk(clone):
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, name, [ast.Pass() if id(v) in replace else v for v in value])
    return clone


#: The student's own cells are read for hints up to this many characters in all, in the
#: notebook's order (a notebook may hold hundreds of cells of thousands of lines: reading them
#: all would hold the grader for minutes, for hints alone). A student's experiments are far less.
MAX_OWN_CHARS = 4 * rules.MAX_ANSWER_BYTES


def _own_names(cells: list[notebook.CodeCell], lesson: list[reading.Cell]) -> dict[str, str]:
    """What the student's own `cells` (neither answers nor tests, and not the lesson's) define:
    name -> the cell, as a student finds it (`the cell "first line..."`: Jupyter shows no cell
    numbers). Each cell is read once, one longer than an answer may be not at all, and none
    once those read hold `MAX_OWN_CHARS`."""
    theirs = {c.source for c in lesson}
    found: dict[str, str] = {}
    budget = MAX_OWN_CHARS
    for cell in cells:
        # Read for hints only, and bounded as an answer is: a cell of megabytes would hold
        # the grader (its parse takes seconds and gigabytes, and parses take turns).
        if cell.source in theirs or len(cell.source) > rules.MAX_ANSWER_BYTES:
            continue
        budget -= len(cell.source)
        if budget < 0:
            break
        read = reading.read_cell(cell.index, cell.source)
        label = read.label()  # once a cell: a cell may define thousands of names
        for name in read.defines:
            found.setdefault(name, label)
    return found
