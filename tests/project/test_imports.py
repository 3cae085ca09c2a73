"""The package's modules import one another without a circle, counting every import the code
runs: at the top of a module and inside its functions, relative and absolute. Imports that only
the type checker reads (under `if TYPE_CHECKING:`) are left out: they never run.

A circle means no module of it can be read, changed or tested without the others; the ones that
hide inside functions are the ones nobody sees, so this test reads every module's tree with
`ast` rather than importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "autograder"
NAME = "autograder"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name: its __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = (NAME, *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under `if TYPE_CHECKING:` (or `if typing.TYPE_CHECKING:`)."""
    hidden = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = (test.id if isinstance(test, ast.Name)
                    else test.attr if isinstance(test, ast.Attribute) else None)
            if name == "TYPE_CHECKING":
                for inner in node.body:
                    hidden.update(id(n) for n in ast.walk(inner))
    return hidden


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name a (possibly relative) `from ... import` starts from."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _deps(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's own modules that `module` imports, anywhere in its code that runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    hidden = _type_checking_only(tree)
    is_package = path.name == "__init__.py"

    def owner(name: str) -> str | None:
        # `import a.b.c` needs a.b.c (and its parents, which are not edges of interest here).
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == NAME or alias.name.startswith(NAME + "."):
                    found.add(owner(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            if not (base == NAME or base.startswith(NAME + ".")):
                continue
            for alias in node.names:
                # `from . import x` names a module where x is one; otherwise a name in `base`.
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else owner(base))
    found.discard(None)
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _deps(name, path, modules) for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (its modules in order, the first repeated at the end), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(edges):
        if colour[start] == WHITE:
            found = visit(start)
            if found:
                return found
    return None


def test_the_walk_sees_imports_inside_functions_and_relative_ones():
    edges = graph()
    # kinds imports problems only inside a method, and selfcheck imports engine pieces lazily:
    # a walk that missed them would pass for the wrong reason.
    assert "autograder.wire" in edges["autograder.judge.kinds"]
    assert "autograder.judge.problems" in edges["autograder.judge.plan"]
    assert "autograder.lesson.model" in edges["autograder.judge.problems"]
    assert len(edges) > 30


def test_the_package_has_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_finder_reports_a_circle():
    # The finder itself can fail: a circle hidden two steps away is found and printed in order.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_at_most_twelve_modules_at_the_top():
    # The folders show the pipeline (lesson/, answer/, judge/, present/, sandbox/, untrusted/,
    # course/): what stays at the top is the entry points, the boundary and the public names.
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


def test_the_names_lessons_and_notebooks_import_still_work():
    # A course's own copy of a lesson written before the move imports these (docs/contract.md).
    from autograder import diagnose as old_diagnose
    from autograder.judge import diagnose
    from autograder.lesson_api import LessonCode, Verdict
    from autograder.report import Verdict as OldVerdict
    from autograder.selfcheck import self_check

    assert OldVerdict is Verdict and old_diagnose.off_by is diagnose.off_by
    assert callable(self_check) and LessonCode().__class__.__name__ == "LessonCode"
