"""Reading a notebook's code without running it (trusted side): statements, what each defines and
what it uses, with Python's own scoping (`symtable`), so that the grader knows which code a
graded function can reach.

Used by `rules.py` (the exercise's rule, on all code a graded function reaches) and `program.py`
(what the graded process runs: the lesson's code the answers need, then the answers). Standard
library only; nothing is imported or executed.
"""

from __future__ import annotations

import ast
import re
import symtable
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

#: IPython's line magics, cell magics and shell escapes, at the start of a line.
#: One parse at a time: CPython 3.11's parser keeps its recursion depth per interpreter, not
#: per thread, and two threads parsing at once (a batch's workers) can fail with "SystemError:
#: AST constructor recursion depth mismatch" (python/cpython#106905).
_PARSING = threading.Lock()
MAGIC = re.compile(r"^(\s*)(%%?|!)", re.MULTILINE)


@dataclass
class Statement:
    """One top-level statement of a cell."""

    cell: int  # the cell's index in the notebook it comes from
    node: ast.stmt
    defines: frozenset[str]  # module-level names it binds
    uses: frozenset[str]  # module-level names it reads, at once or when a function of it runs
    first: int  # its first and last line in the cell (decorators included)
    last: int
    changes: frozenset[str] = frozenset()  # names whose contents it may change, or aliases


def first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


def cell_label(source: str, target: str | None = None) -> str:
    """A cell as a student finds it: `the lin_grad cell`, or `the cell "def forward_and..."`
    by its first line (Jupyter shows no cell numbers)."""
    if target is not None:
        return f"the {target} cell"
    first = first_line(source)
    return f'the cell "{first if len(first) <= 40 else first[:37] + "..."}"'


@dataclass
class Cell:
    """A code cell, read: its statements, or why it could not be read.

    `index` orders cells as they run (the lesson's order); `name` is how a student finds the
    cell ("the mse_grad cell", "cell 5 of the lesson").
    """

    index: int
    source: str
    tree: ast.Module | None
    statements: list[Statement] = field(default_factory=list)
    magics: list[tuple[int, str]] = field(default_factory=list)  # (line, the magic's first word)
    name: str = ""
    too_long: bool = False  # longer than `limit`: not read at all


def magic_lines(source: str) -> list[tuple[int, str]]:
    """(line, '%time' or '!pip' ...) for each line IPython would treat as a magic or a shell escape,
    strings left out: only lines that start a statement count."""
    found = []
    lines = source.splitlines()
    for number, line in enumerate(lines, 1):
        match = MAGIC.match(line)
        if match is None:
            continue
        before = "\n".join(lines[: number - 1])
        if _open_string(before):
            continue
        word = line.strip().split()[0] if line.strip() else line.strip()
        found.append((number, word[:40]))
    return found


def _open_string(text: str) -> bool:
    """Whether `text` ends inside a triple-quoted string (where a `%` line is not a magic)."""
    import io
    import tokenize

    try:
        for _ in tokenize.generate_tokens(io.StringIO(text + "\n").readline):
            pass
    except tokenize.TokenError as exc:
        return "string" in str(exc)
    except (SyntaxError, IndentationError):
        return False
    return False


def read_cell(index: int, source: str, *, magics: bool = True, name: str = "",
              limit: int | None = None) -> Cell:
    """Parse a cell. With `magics`, lines IPython would run as magics are read as comments (the
    lesson's own cells: `%matplotlib inline`); either way they are listed in `Cell.magics`. A
    cell longer than `limit` characters is not read (`Cell.too_long`)."""
    if limit is not None and len(source) > limit:
        return Cell(index, source, None, name=name or f"cell {index}", too_long=True)
    found = magic_lines(source)
    text = MAGIC.sub(r"\1# \2", source) if magics else source
    name = name or f"cell {index}"
    try:
        with _PARSING:
            tree = ast.parse(text)
            table = symtable.symtable(text, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Cell(index, source, None, magics=found, name=name)
    return Cell(index, source, tree, _statements(index, tree, table), found, name)


def _statements(index: int, tree: ast.Module, table: symtable.SymbolTable) -> list[Statement]:
    """The cell's top-level statements, each with the names it binds and reads at module level,
    and those that the functions, classes and comprehensions it makes read or bind as globals
    (one symbol table for the cell: a cell of many statements costs one pass)."""
    spans = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans.append((first, getattr(node, "end_lineno", node.lineno), node))
    inner: dict[int, tuple[set[str], set[str]]] = {}
    for child in table.get_children():
        line = child.get_lineno()
        at = next((i for i, (first, last, _) in enumerate(spans) if first <= line <= last), None)
        if at is not None:
            reads, writes = _globals_in(child)
            have = inner.setdefault(at, (set(), set()))
            have[0].update(reads)
            have[1].update(writes)
    out = []
    for i, (first, last, node) in enumerate(spans):
        defines, uses = module_names(node)
        reads, writes = inner.get(i, (set(), set()))
        out.append(Statement(index, node, frozenset(defines | writes), frozenset(uses | reads),
                             first, last, frozenset(changed(node))))
    return out


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


def module_names(node: ast.stmt) -> tuple[set[str], set[str]]:
    """(names `node` binds, names it reads) in the module's own scope: what runs inside a
    function, class or comprehension it makes is counted from the symbol table instead."""
    defines, uses = set(), set()
    stack: list[ast.AST] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, _SCOPES):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defines.add(n.name)
                stack.extend(n.decorator_list)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                stack.extend([*n.args.defaults, *(d for d in n.args.kw_defaults if d)])
            elif isinstance(n, ast.ClassDef):
                stack.extend([*n.bases, *n.keywords])
            else:  # a comprehension: its first iterable is read here
                stack.append(n.generators[0].iter)
            continue
        if isinstance(n, ast.Name):
            (uses if isinstance(n.ctx, ast.Load) else defines).add(n.id)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            for alias in n.names:
                if alias.name != "*":
                    defines.add(alias.asname or alias.name.split(".")[0])
        stack.extend(ast.iter_child_nodes(n))
    return defines, uses


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def changed(node: ast.AST) -> set[str]:
    """Names whose objects `node` may change or hand on: stored into (`h[k] = f`, `m.f = g`),
    a method called on (`h.update(...)`), or assigned as they are to another name (`a = h`)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute | ast.Subscript) and isinstance(sub.ctx, ast.Store | ast.Del):
            found.add(_root(sub.value))
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            found.add(_root(sub.func.value))
        elif isinstance(sub, ast.Assign | ast.AnnAssign | ast.NamedExpr) and \
                isinstance(sub.value, ast.Name | ast.Attribute | ast.Subscript):
            found.add(_root(sub.value))
    found.discard(None)
    return found


def _globals_in(table: symtable.SymbolTable) -> tuple[set[str], set[str]]:
    reads = {sym.get_name() for sym in table.get_symbols() if sym.is_referenced() and sym.is_global()}
    writes = {sym.get_name() for sym in table.get_symbols()
              if sym.is_declared_global() and sym.is_assigned()}
    for child in table.get_children():
        more_reads, more_writes = _globals_in(child)
        reads |= more_reads
        writes |= more_writes
    return reads, writes


def imported(statements: Iterable[Statement]) -> set[str]:
    """The names that import statements bind: modules, and what was taken from them."""
    return {name for s in statements if isinstance(s.node, ast.Import | ast.ImportFrom)
            for name in s.defines}


def reachable(start: Iterable[str], statements: list[Statement], *,
              touching: Iterable[int] = ()) -> list[Statement]:
    """The statements that define `start` or any name those statements read, transitively, in
    their order: the code that can run when a function named in `start` is called.

    In the cells listed in `touching`, also each statement that may change what such a name
    holds (`hooks[k] = f`, `Module.backward = f`, `h = hooks`), modules aside: the reading for
    the rules, on the student's cells.
    """
    touching = set(touching)
    modules = imported(statements) if touching else set()
    wanted, seen, found = set(start), set(), []
    while True:
        more = [s for s in statements if id(s) not in seen and (
            s.defines & wanted or (s.cell in touching and s.changes & (wanted - modules)))]
        if not more:
            break
        for s in more:
            seen.add(id(s))
            found.append(s)
            wanted |= s.uses | (s.defines if touching else set())
    order = {id(s): i for i, s in enumerate(statements)}
    return sorted(found, key=lambda s: order[id(s)])


def keep_lines(source: str, statements: list[Statement]) -> str:
    """`source` with only the lines of `statements` kept, the others blank: line numbers stay
    those of the cell."""
    lines = source.splitlines()
    keep = set()
    for s in statements:
        keep.update(range(s.first, s.last + 1))
    return "\n".join(line if n in keep else "" for n, line in enumerate(lines, 1)) + "\n"
