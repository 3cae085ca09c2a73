"""Compiling an answer (and the lesson's code it uses) so that the answer language is enforced
where each object is known, at run time (`guards.py`).

RestrictedPython rewrites the code: `a.b` becomes `_getattr_(a, "b")`, `a[k]` `_getitem_(a, k)`,
a loop `_getiter_(...)`, a write `_write_(a).b = ...`, a class statement
`class C(..., metaclass=__metaclass__)`. It refuses, when it compiles, frame, code, generator
and traceback internals (`gi_frame`, `f_globals`, `tb_frame`, ...) and `async`.

Its default policy refuses more than an answer in ordinary Python writes, so `AnswerPolicy`
changes it where the run-time guards decide instead:

- a class may define the special methods of `language.DUNDER_METHODS` (`__init__`, `__call__`,
  `__repr__`, operators), and code may read `self.__class__.__name__` or call
  `super().__init__()`: the guards decide each read by the object's type;
- `self._cache` and a variable `_x` are ordinary Python: only the names that could stand for a
  guard or a special name are refused (`_getattr_`, `__builtins__`, `__x`);
- `x.g += ...` and `dx[i] -= 1` are kept (through `_aug_attr_` and `_aug_item_`, reads and writes
  both guarded), so is `nonlocal`, and so are annotated assignments;
- `print` is Python's own (what it prints is the student's output).

Runs on the trusted side, to say what will not compile (`rules.py`) and to compile a job's cells
once (`compiled_cells`: a batch's worker compiles the lesson's own cells once, not once per
student), and where the student's code runs, before any of it does, where the job brought no
code (another Python compiled it). Standard library and RestrictedPython only.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import marshal
import threading
from dataclasses import dataclass

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, IOPERATOR_TO_STR, copy_locations

from .. import language as lang

#: One conversion between Python's syntax trees and its compiler's at a time, in this process:
#: CPython 3.11 keeps the recursion depth of that conversion per interpreter, not per thread, and
#: two threads at it at once (a batch's workers, `serve`'s) can fail with "SystemError: AST
#: constructor recursion depth mismatch" (python/cpython#106905). `reading.py` parses under it too.
AST_LOCK = threading.RLock()


@dataclass(frozen=True)
class Refusal:
    """A construct the compiler refuses, and its line."""

    line: int
    what: str


#: RestrictedPython's own refusals, as a student would name what they wrote.
_WORDS = {"Exec calls are not allowed.": "exec()", "Eval calls are not allowed.": "eval()",
          '"*" imports are not allowed.': "import *",
          'The keyword argument "metaclass" is not allowed.': "metaclass=",
          "TryStar statements are not allowed.": "try ... except*"}


def _guard_like(name: str) -> bool:
    """A name that could stand for a guard (`_getattr_`) or a special name (`__builtins__`)."""
    return name.startswith("__") or (name.startswith("_") and name.endswith("_") and name != "_")


class AnswerPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer, with the changes of the module's doc."""

    def __init__(self, errors=None, warnings=None, used_names=None) -> None:
        super().__init__(errors, warnings, used_names)
        self.refusals: list[Refusal] = []
        self._class_depth = 0

    def error(self, node: ast.AST, info: str) -> None:
        line = getattr(node, "lineno", 0)
        self.refusals.append(Refusal(line, _WORDS.get(info, info.removesuffix(
            " statements are not allowed."))))
        super().error(node, info)

    # --- names ---

    def check_name(self, node, name, allow_magic_methods=False) -> None:
        if name is None:
            return
        if allow_magic_methods and name in lang.DUNDER_METHODS:
            return
        if _guard_like(name):
            self.error(node, name)
        elif name.endswith("__roles__"):
            self.error(node, name)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node = self.node_contents_visit(node)
        if isinstance(node.ctx, ast.Load):
            self.used_names[node.id] = True
        self.check_name(node, node.id)
        return node

    # --- attributes: the guards decide, but for the internals no policy opens ---

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if node.attr in INSPECT_ATTRIBUTES or node.attr.endswith("__roles__"):
            self.error(node, f".{node.attr}")
            return node
        if isinstance(node.ctx, ast.Load):
            node = self.node_contents_visit(node)
            new = ast.Call(func=ast.Name("_getattr_", ast.Load()),
                           args=[node.value, ast.Constant(node.attr)], keywords=[])
            copy_locations(new, node)
            return new
        node = self.node_contents_visit(node)
        new_value = ast.Call(func=ast.Name("_write_", ast.Load()), args=[node.value], keywords=[])
        copy_locations(new_value, node.value)
        node.value = new_value
        return node

    # --- statements RestrictedPython refuses that ordinary answers write ---

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        target = node.target
        if isinstance(target, ast.Name):
            return super().visit_AugAssign(node)
        op = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        value = self.visit(node.value)
        if isinstance(target, ast.Attribute):
            if target.attr in INSPECT_ATTRIBUTES:
                self.error(node, f".{target.attr}")
                return node
            call = ast.Call(func=ast.Name("_aug_attr_", ast.Load()),
                            args=[self.visit(target.value), ast.Constant(target.attr), op, value],
                            keywords=[])
        else:
            call = ast.Call(func=ast.Name("_aug_item_", ast.Load()),
                            args=[self.visit(target.value), self.visit(target.slice), op, value],
                            keywords=[])
        new = ast.Expr(call)
        copy_locations(new, node)
        ast.fix_missing_locations(new)
        return new

    def visit_Import(self, node: ast.Import) -> list[ast.AST]:
        """The import, after `_check_import_` has asked the policy: a library's own imports, at
        run time, use Python's `__import__` (numpy imports its parts as it runs)."""
        node = super().visit_Import(node)
        return [self._asked(node, alias.name, (), 0) for alias in node.names] + [node]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> list[ast.AST]:
        node = super().visit_ImportFrom(node)
        names = tuple(alias.name for alias in node.names)
        return [self._asked(node, node.module or "", names, node.level), node]

    @staticmethod
    def _asked(node: ast.AST, module: str, names: tuple[str, ...], level: int) -> ast.AST:
        call = ast.Expr(ast.Call(func=ast.Name("_check_import_", ast.Load()),
                                 args=[ast.Constant(module), ast.Constant(names),
                                       ast.Constant(level)], keywords=[]))
        copy_locations(call, node)
        ast.fix_missing_locations(call)
        return call

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        return self.node_contents_visit(node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> ast.AST:
        return self.node_contents_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        if node.name.startswith("__") and node.name not in lang.DUNDER_METHODS:
            self.error(node, f"def {node.name}")
        else:
            self.check_name(node, node.name, allow_magic_methods=True)
        self.check_function_argument_names(node)
        return self.node_contents_visit(node)


def refusals(source: str | ast.Module, filename: str = "<answer>") -> list[Refusal]:
    """What `compile_answer` would refuse in `source`, by line (none: it compiles)."""
    return compile_answer(source, filename)[1]


def compile_answer(source: str | ast.Module, filename: str = "<answer>"):
    """`source` compiled for the guards of `guards.globals_for`: (code, []) or (None, refusals).
    A syntax error is a refusal too, with its line."""
    found: list[Refusal] = []

    class Policy(AnswerPolicy):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.refusals = found

    try:
        if isinstance(source, ast.AST):
            import copy

            source = copy.deepcopy(source)  # the transformer rewrites the tree it is given
        with AST_LOCK:
            result = compile_restricted_exec(source, filename, policy=Policy)
    except RecursionError:  # Python parses deeper than a transformer can follow
        return None, [Refusal(1, "code nested deeper than the grader reads")]
    if result.code is None and not found:
        for error in result.errors:  # a syntax error: 'Line 3: SyntaxError: ... at statement'
            line = error.split(":", 1)[0].removeprefix("Line ").strip()
            found.append(Refusal(int(line) if line.isdigit() else 0, error))
    return result.code, found


def compile_cell(source: str, name: str):
    """One cell compiled for the guards: its code, or, where it does not compile, the error its
    run reports (a dict, as `calls.describe_exception` gives one)."""
    code, refused = compile_answer(source, f"<{name}>")
    if code is None:
        try:  # Python's own syntax error is said as Python says it, not as a refusal
            with AST_LOCK:
                ast.parse(source)
        except SyntaxError as exc:
            return {"type": "SyntaxError", "message": exc.msg, "where": f"{name}, line {exc.lineno}"}
        except (ValueError, RecursionError, MemoryError):
            pass
        first = refused[0] if refused else Refusal(0, "it does not compile")
        return {"type": "NotAllowed", "where": f"{name}, line {first.line}",
                "message": f"{first.what} is not in the answer language"}
    return code


#: Which Python compiled a job's cells: the runner loads them only where it is the same.
MAGIC = importlib.util.MAGIC_NUMBER.hex()


@functools.lru_cache(maxsize=512)
def _compiled(source: str, name: str) -> bytes:
    return marshal.dumps(compile_cell(source, name))


def compiled_cells(cells: list[dict]) -> bytes:
    """`cells` (dicts with `index`, `source`, `name`) compiled on the grader's side, as marshal
    data (`loaded_cells` reads it back): each distinct cell is compiled once per process, so a
    batch compiles the lesson's own cells once, not once per student."""
    return marshal.dumps({c["index"]: _compiled(c["source"], c["name"]) for c in cells})


def loaded_cells(data: bytes) -> dict[int, object]:
    """What `compiled_cells` made, in the student's process: {index: code or error}."""
    return {index: marshal.loads(one) for index, one in marshal.loads(data).items()}
