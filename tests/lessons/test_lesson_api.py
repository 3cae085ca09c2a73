"""`autograder.lesson_api` is the one module a lesson imports from, and docs/lessons.md is its
reference: the bundled lessons import nothing else of the package, every name the API exports
exists and says what it is, and the reference page names each one, and every key lesson.toml
takes."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from autograder import lesson_api

REPO = Path(__file__).resolve().parents[2]
LESSONS = sorted((REPO / "assignments").glob("*/lesson.py"))
REFERENCE = REPO / "docs" / "lessons.md"


def _package_imports(path: Path) -> list[str]:
    """Every module of the package that `path` imports, anywhere in its code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "autograder":  # `from autograder import diagnose`
                found += [f"autograder.{alias.name}" for alias in node.names]
            elif node.module.startswith("autograder."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "autograder"]
    return found


def test_there_are_lessons_to_read():
    assert len(LESSONS) >= 2, LESSONS


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.parent.name)
def test_a_bundled_lesson_imports_from_lesson_api_alone(path):
    imports = _package_imports(path)
    assert imports, f"{path} imports nothing from autograder"
    others = sorted(set(imports) - {"autograder.lesson_api"})
    assert not others, f"{path.relative_to(REPO)} imports {', '.join(others)}: import from " \
                       "autograder.lesson_api, the one module a lesson imports from"


def test_the_names_a_lesson_uses_are_all_exported():
    # What a lesson imports from lesson_api is public API (in __all__), not a name that happens
    # to be there (a module lesson_api itself imports).
    for path in LESSONS:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "autograder.lesson_api":
                missing = {a.name for a in node.names} - set(lesson_api.__all__)
                assert not missing, f"{path.relative_to(REPO)} imports {sorted(missing)}, " \
                                    "which lesson_api.__all__ does not export"


def _commented(name: str) -> bool:
    """A data name (a type alias such as `Hint`) says what it is in a `#:` comment above it."""
    source = inspect.getsource(lesson_api).splitlines()
    for i, line in enumerate(source):
        if re.match(rf"^{re.escape(name)}\s*[:=]", line):
            return i > 0 and source[i - 1].startswith("#:") and len(source[i - 1]) > 10
    return False


@pytest.mark.parametrize("name", lesson_api.__all__)
def test_each_exported_name_exists_and_says_what_it_is(name):
    assert hasattr(lesson_api, name), f"lesson_api.__all__ names {name}, which it lacks"
    value = getattr(lesson_api, name)
    if inspect.isfunction(value) or inspect.isclass(value):
        # Its own docstring, not one inherited (a class's from object).
        doc = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
        assert doc and doc.strip(), f"lesson_api.{name} has no docstring"
    else:
        assert _commented(name), f"lesson_api.{name} has no `#:` comment saying what it is"


def test_the_old_paths_still_give_the_same_names():
    # A course's copy of a lesson written before lesson_api exported the toolkit imports these.
    from autograder import diagnose as old_diagnose
    from autograder.judge import diagnose
    from autograder.report import Verdict

    for name in ("off_by", "shape_text", "mask_errors", "combined_factors", "is_transpose",
                 "kept_batch", "square_broadcast"):
        assert getattr(diagnose, name) is getattr(lesson_api, name)
        assert getattr(old_diagnose, name) is getattr(lesson_api, name)
    assert Verdict is lesson_api.Verdict


# --- docs/lessons.md, the reference ---------------------------------------------------------------

def _reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def _named(name: str, text: str) -> bool:
    """`name` appears as code in the page: `name`, `name(...)`, `[name]`, `name =`."""
    return re.search(rf"`\[*{re.escape(name)}\]*(\(|`| =|\.)", text) is not None


@pytest.mark.parametrize("name", lesson_api.__all__)
def test_the_reference_names_each_exported_name(name):
    assert _named(name, _reference()), f"docs/lessons.md does not name lesson_api.{name}"


@pytest.mark.parametrize("hook", lesson_api.HOOKS)
def test_the_reference_names_each_hook(hook):
    assert _named(hook, _reference()), f"docs/lessons.md does not name the hook {hook}"


# The keys lesson.toml takes, where the parser reads them (autograder/lesson/model.py `_lesson`,
# `_target`, `_case`, `_credit`; judge/problems.py `_draw`; language.py `extended`). The parser
# holds no set of them to read here (it reads each with data.get(...)), so the list is kept here:
# a key added to the parser is added here and to the reference.
TOP = ("id", "title", "notebook", "self_check_seed", "tolerances", "mistakes", "language",
       "target", "checkset", "training")
TARGET = ("name", "entry", "kind", "points", "args", "grads", "collect", "credit", "checks",
          "inputs", "derived", "forward", "flags", "summaries", "methods")
METHODS = ("call", "forward", "bwd", "backward")
FORWARD = ("name", "of", "upstream")
DERIVED = ("forward", "of")
CHECK = ("name", "kind", "weight", "cases", "summary", "requires")
CASE = ("n", "dtype", "device", "stand_in", "flags")
INPUT_TABLE = ("type", "shape", "draw", "classes", "scale", "value")
LANGUAGE = ("modules", "attributes", "builtins")
TRAINING = ("losses",)  # read by tests/lessons/test_lessons_run.py, not by the engine
KEYS = {"top": TOP, "target": TARGET, "forward": FORWARD, "derived": DERIVED, "check": CHECK,
        "case": CASE, "input": INPUT_TABLE, "language": LANGUAGE, "methods": METHODS,
        "training": TRAINING}


def test_the_language_keys_are_the_ones_the_parser_takes():
    # The one table whose keys the code lists: refused beyond these.
    from autograder.language import DEFAULT

    with pytest.raises(ValueError, match="modules, attributes, builtins"):
        DEFAULT.extended({"nope": []})
    for key in LANGUAGE:
        DEFAULT.extended({key: []})


def test_every_key_of_the_bundled_lessons_is_in_the_list():
    # The list above is the parser's: the bundled lessons and the standard checks use no key
    # that it lacks (a key read nowhere would be a misspelling the list hides).
    import tomllib

    known = set().union(*KEYS.values())
    files = [*(REPO / "assignments").glob("*/lesson.toml"),
             REPO / "autograder" / "lesson" / "checks.toml"]
    sizes = re.compile(r"^n_\w+$")  # a case's sizes are the lesson's own names

    def walk(value, where):
        if isinstance(value, dict):
            for key, inner in value.items():
                if where in ("tables", "mistakes", "sets"):
                    walk(inner, "any")
                    continue
                if where != "any":
                    assert key in known or sizes.match(key), f"{where}: key {key!r} is not listed"
                walk(inner, "tables" if key in ("inputs", "grads", "credit", "derived",
                                                 "summaries", "tolerances", "mistakes")
                     else "sets" if key == "checkset" else "keys")
        elif isinstance(value, list):
            for inner in value:
                walk(inner, where)

    for path in files:
        data = tomllib.loads(path.read_text())
        walk({k: v for k, v in data.items() if k != "checkset"}, "keys")
        for checks in data.get("checkset", {}).values():
            walk(checks, "keys")


@pytest.mark.parametrize("group,key", [(g, k) for g, keys in KEYS.items() for k in keys])
def test_the_reference_names_every_key_lesson_toml_takes(group, key):
    assert _named(key, _reference()), f"docs/lessons.md does not name the {group} key {key}"
