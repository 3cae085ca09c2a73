"""`benchmarks/` and `scripts/` import the tests' helpers from `tests/support/` alone, never a test
module or conftest: a test can then be moved, renamed or deleted without breaking a benchmark, and
the helpers they share have one home. Read with `ast`, so that an import inside a function (the
benchmarks import theirs where they need them) counts too."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imports_of_tests(path: Path) -> list[tuple[int, str]]:
    """Each import of `tests` or `tests.*` in one file: its line and the module named."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        found += [(node.lineno, n) for n in names if n == "tests" or n.startswith("tests.")]
    return found


def outside_support(path: Path) -> list[str]:
    return [f"{path.relative_to(REPO)}:{line}: {name}" for line, name in imports_of_tests(path)
            if not (name == "tests.support" or name.startswith("tests.support."))]


def test_benchmarks_and_scripts_import_only_tests_support():
    files = sorted([*REPO.glob("benchmarks/**/*.py"), *REPO.glob("scripts/**/*.py")])
    assert files, "no benchmarks or scripts found: the walk looks in the wrong place"
    wrong = [line for path in files for line in outside_support(path)]
    assert not wrong, "import tests.support instead: " + "; ".join(wrong)


def test_support_imports_no_test_module():
    # What benchmarks import must not drag a test module or conftest in (unchecked: the tests'
    # own helper, run as `python -m tests.support.unchecked`, may).
    support = REPO / "tests" / "support"
    wrong = [line for path in sorted(support.glob("*.py")) if path.stem != "unchecked"
             for line in outside_support(path)]
    assert not wrong, wrong


def test_the_check_sees_an_import_of_a_test_module(tmp_path):
    # The check itself can fail: a benchmark that imports a test module (as bench_serve did,
    # `from tests.courseusers import ...`), inside a function too, is reported.
    bench = tmp_path / "bench.py"
    bench.write_text("def f():\n    from tests.courseusers import submit_as\n"
                     "import tests.conftest\nfrom tests.support.userenv import why_not\n")
    assert sorted(name for _, name in imports_of_tests(bench)) == [
        "tests.conftest", "tests.courseusers", "tests.support.userenv"]
