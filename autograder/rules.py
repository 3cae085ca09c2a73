"""The exercise's rule, read from the code a graded function can reach (trusted side).

Two kinds of finding, each naming the construct and its line:

- **autograd** (`T.uses_autograd`): `.backward()`, `.grad`, `requires_grad`, `torch.autograd`,
  `enable_grad`, `set_grad_enabled`, `nn.Parameter`, `torch.func`, ... The lesson is to write
  gradients by hand.
- **hidden** (`T.not_allowed`): code that hides what it runs from a reader, or that changes what
  other code runs: `exec`/`eval`/`compile`, `getattr`/`setattr` with a computed name,
  `__import__`/`importlib`, `sys.modules`, frames, `gc`, `inspect`, `ctypes`, pickled code,
  magics and shell escapes, other programs, a changed library (`torch.allclose = ...`),
  `__torch_function__`, torch's private parts. An answer cell with such a finding is not run in
  the graded process at all (`program.py`): whatever it would have done there, it cannot.

What a target is judged on: the statements (in any answer cell, or in the lesson's own cells)
that define the name it is called by or a name that code reads, transitively, or that change
what such a name holds (`code.reachable`); what its own cell runs besides definitions; and, for
hidden code, all of its own cell (which then does not run). Only `ast` and `symtable` read the code: nothing is
imported or executed. Strings and comments do not count; assigning to `.grad` (a mix-up with
`.g`) does not either, reading it does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from . import code as reading

AUTOGRAD, HIDDEN = "autograd", "hidden"

#: Attribute names that switch autograd on or use it, wherever they appear.
_AUTOGRAD_NAMES = {
    "autograd": "torch.autograd", "requires_grad": "requires_grad",
    "requires_grad_": "requires_grad_()", "enable_grad": "torch.enable_grad",
    "set_grad_enabled": "torch.set_grad_enabled", "functorch": "functorch",
    "Parameter": "nn.Parameter", "register_hook": "register_hook()",
    "retain_grad": "retain_grad()", "grad_fn": ".grad_fn", "forward_ad": "forward_ad",
    "make_dual": "forward_ad", "unpack_dual": "forward_ad", "dual_level": "forward_ad",
}

#: Modules an answer may not import: they reach the running program itself, run code that no
#: reader sees, or start other programs.
_MODULES = {"importlib", "ctypes", "_ctypes", "cffi", "gc", "inspect", "builtins", "code",
            "codeop", "runpy", "imp", "pkgutil", "zipimport", "pickle", "_pickle", "marshal",
            "shelve", "dill", "cloudpickle", "copyreg", "subprocess", "multiprocessing", "pty",
            "autograder"}

#: Modules whose code runs at times no reader can tell: beside the graded calls, or when the
#: process ends or an object is collected.
_LATER = {"threading", "_thread", "concurrent", "asyncio", "sched", "atexit", "weakref"}

#: Parts of torch that change what torch runs for every caller, or load code.
_TORCH_PARTS = {"library", "overrides", "jit", "compile", "hub", "package", "load",
                "multiprocessing", "fx", "export"}

#: Attributes that reach frames, code objects, namespaces or the import system.
_INTROSPECTION = {
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next",
    "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "_getframe",
    "_current_frames", "settrace", "setprofile", "meta_path", "path_hooks",
    "path_importer_cache", "addaudithook", "attrgetter", "methodcaller",
}

#: Functions that start other programs.
_PROGRAMS = {"system", "popen", "fork", "forkpty", "execv", "execve", "execl", "execle",
             "execlp", "execlpe", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp",
             "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
             "posix_spawnp", "startfile"}

#: Names that start with an underscore and are public all the same.
_PUBLIC = {"_exit", "_asdict", "_replace", "_fields", "_make"}

#: Builtins that run or reach code by name.
_BUILTINS = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars",
             "get_ipython", "__builtins__"}

#: Dunder attributes that read as plain code: a dunder not listed here is not allowed.
_PLAIN_DUNDERS = {
    "__init__", "__call__", "__name__", "__qualname__", "__class__", "__doc__", "__len__",
    "__repr__", "__str__", "__iter__", "__next__", "__getitem__", "__setitem__", "__delitem__",
    "__contains__", "__enter__", "__exit__", "__annotations__", "__module__", "__version__",
    "__bool__", "__hash__", "__format__", "__array__",
} | {f"__{op}__" for base in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod",
                                 "pow", "and", "or", "xor", "lshift", "rshift")
     for op in (base, f"r{base}", f"i{base}")} | {
    f"__{op}__" for op in ("eq", "ne", "lt", "le", "gt", "ge", "neg", "pos", "abs", "invert")}


@dataclass(frozen=True)
class Finding:
    """One construct the rule does not allow, as the student wrote it, and where: `where` is
    empty for the target's own cell, else the other cell's name."""

    kind: str  # AUTOGRAD or HIDDEN
    what: str
    line: int
    where: str = ""

    @property
    def code(self) -> str:
        return "uses_autograd" if self.kind == AUTOGRAD else "not_allowed"

    def place(self) -> str:
        """'on line 3 of its cell', 'on line 2 of the relu_grad cell'."""
        return f"on line {self.line} of {self.where or 'its cell'}"


def _chain(node: ast.expr) -> list[str] | None:
    """`torch.Tensor.__eq__` as ['torch', 'Tensor', '__eq__']; None if it is not a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _constant_name(node: ast.Call) -> str | None:
    """The attribute name of `getattr(x, "name")`, where it is a literal."""
    if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and \
            isinstance(node.args[1].value, str):
        return node.args[1].value
    return None


class _Scan(ast.NodeVisitor):
    """Every finding in one tree; `modules` maps names bound to modules to the modules."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = modules
        self.found: dict[tuple[int, str], Finding] = {}
        self.called: set[int] = set()  # ids of Name nodes that are a call's function
        self.bases: set[int] = set()  # ids of Name nodes that an attribute is read from

    def add(self, kind: str, what: str, node: ast.AST) -> None:
        line = getattr(node, "lineno", 0)
        self.found.setdefault((line, what), Finding(kind, what, line))

    def module_of(self, parts: list[str] | None) -> str | None:
        """The library a dotted name starts in (`np.linalg` -> 'numpy'), or None. `torch` is
        torch even where the cell does not import it: every lesson does."""
        if not parts:
            return None
        return self.modules.get(parts[0], "torch" if parts[0] == "torch" else None)

    # --- names and attributes ---

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and id(node) not in self.bases and \
                node.id in self.modules and "." not in self.modules[node.id].strip(".") and \
                id(node) not in self.called:
            # `f(torch)`, `m = np`: a module handed around reaches what no dotted name shows.
            self.add(HIDDEN, f"the module {node.id} used as a value", node)
        if node.id in ("__torch_function__", "__torch_dispatch__"):
            self.add(HIDDEN, f"{node.id}, which changes what torch runs for every caller", node)
        elif node.id in _BUILTINS:
            self.add(HIDDEN, f"{node.id}" + ("()" if id(node) in self.called else ""), node)
        elif node.id in ("getattr", "setattr", "delattr") and id(node) not in self.called:
            self.add(HIDDEN, f"{node.id} used as a value", node)
        elif node.id in ("enable_grad", "set_grad_enabled", "Parameter", "functorch"):
            self.add(AUTOGRAD, _AUTOGRAD_NAMES[node.id], node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            self.bases.add(id(node.value))
        self.attribute(node.attr, node, node.value, isinstance(node.ctx, ast.Store | ast.Del))
        self.generic_visit(node)

    def attribute(self, attr: str, node: ast.AST, base: ast.expr, store: bool) -> None:
        parts = _chain(base)
        module = self.module_of(parts)
        dotted = ".".join([*(parts or ["..."]), attr])
        if attr == "grad" and not store:
            self.add(AUTOGRAD, ".grad", node)
        elif attr == "backward" and not store:
            pass  # a call is judged in visit_Call: `self.backward()` is the student's own
        elif attr in _AUTOGRAD_NAMES:
            self.add(AUTOGRAD, _AUTOGRAD_NAMES[attr], node)
        elif attr == "func" and module == "torch" and parts == [parts[0]]:
            self.add(AUTOGRAD, "torch.func", node)
        if attr.startswith("__") and attr.endswith("__") and attr not in _PLAIN_DUNDERS:
            self.add(HIDDEN, f".{attr}", node)
        elif attr in _INTROSPECTION or (attr == "modules" and parts and parts[-1] == "sys"):
            self.add(HIDDEN, dotted if parts else f".{attr}", node)
        elif module is not None:
            if store:
                self.add(HIDDEN, f"a change to {dotted}, part of a library", node)
            elif attr.startswith("_") and not attr.startswith("__") and attr not in _PUBLIC:
                self.add(HIDDEN, f"{dotted}, a private part of {module}", node)
            elif attr in _PROGRAMS:
                self.add(HIDDEN, f"{dotted}, which starts another program", node)
            elif attr in _MODULES:
                self.add(HIDDEN, dotted, node)
            elif module.split(".")[0] == "torch" and attr in _TORCH_PARTS and \
                    (parts or [""])[-1] in ("torch", "nn", "utils"):
                self.add(HIDDEN, dotted, node)
            elif module.split(".")[0] == "numpy" and attr == "load":
                self.add(HIDDEN, dotted, node)

    # --- calls ---

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("isinstance", "issubclass", "type") and \
                node.args:
            for arg in node.args[1:]:  # `isinstance(m, types.ModuleType)` reads, it hands nothing on
                if isinstance(arg, ast.Name):
                    self.bases.add(id(arg))
        if isinstance(func, ast.Name):
            self.called.add(id(func))
            if func.id in ("getattr", "setattr", "delattr", "hasattr"):
                name = _constant_name(node)
                if name is None:
                    if func.id != "hasattr":
                        self.add(HIDDEN, f"{func.id}() with a computed name", node)
                elif node.args:
                    self.attribute(name, node, node.args[0], func.id != "getattr")
            elif func.id == "type" and len(node.args) == 3:
                self.add(HIDDEN, "type() with three arguments", node)
        if isinstance(func, ast.Attribute) and func.attr == "backward":
            receiver = func.value
            own = (isinstance(receiver, ast.Name) and receiver.id == "self") or (
                isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super")
            if not own:  # `self.backward()` or `super().backward()` is the student's Module's
                self.add(AUTOGRAD, ".backward()", node)
        for keyword in node.keywords:
            if keyword.arg == "requires_grad":
                self.add(AUTOGRAD, "requires_grad=", node)
            elif keyword.arg is None:  # `**options`: which keywords, a reader cannot tell...
                keys = keyword.value.keys if isinstance(keyword.value, ast.Dict) else [None]
                if any(not (isinstance(k, ast.Constant) and isinstance(k.value, str)) for k in keys):
                    self.add(HIDDEN, "** with keywords a reader cannot see", node)
                elif any(k.value == "requires_grad" for k in keys):  # ...unless it is spelled out
                    self.add(AUTOGRAD, "requires_grad=", node)
        chain = _chain(func)
        if chain and self.module_of(chain) and chain[-1] == "signal" and len(node.args) > 1:
            handler = _chain(node.args[1])
            if not (handler and handler[-1] in ("SIG_IGN", "SIG_DFL")):
                self.add(HIDDEN, "a signal handler, which runs at times no reader can tell", node)
        self.generic_visit(node)

    # --- definitions and imports ---

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in ("__torch_function__", "__torch_dispatch__"):
            self.add(HIDDEN, f"{node.name}, which changes what torch runs for every caller", node)
        elif node.name == "__del__":
            self.add(HIDDEN, "__del__, which runs whenever the object happens to be collected",
                     node)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imported(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = ("." * node.level) + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self.add(HIDDEN, f"from {module} import *", node)
                continue
            self.imported(f"{module}.{alias.name}", node, taken=alias.name)

    def imported(self, dotted: str, node: ast.AST, taken: str | None = None) -> None:
        parts = dotted.strip(".").split(".")
        if "autograd" in parts or "functorch" in parts or parts[:2] == ["torch", "func"]:
            self.add(AUTOGRAD, "import " + dotted.strip("."), node)
        elif any(p in ("enable_grad", "set_grad_enabled", "Parameter") for p in parts):
            self.add(AUTOGRAD, _AUTOGRAD_NAMES[next(p for p in parts if p in _AUTOGRAD_NAMES)],
                     node)
        head = parts[0]
        if head in _LATER:
            self.add(HIDDEN, f"import {dotted.strip('.')}, which runs code at times no reader "
                             "can tell", node)
        elif head in _MODULES:
            self.add(HIDDEN, f"import {dotted.strip('.')}" if head != "autograder"
                     else "an import of the grader's own code", node)
        elif head == "os" and taken in _PROGRAMS:
            self.add(HIDDEN, f"os.{taken}, which starts another program", node)
        elif head == "sys" and taken in ("modules", *_INTROSPECTION):
            self.add(HIDDEN, f"sys.{taken}", node)
        elif head == "torch" and (len(parts) > 1 and (parts[1] in _TORCH_PARTS
                                                      or parts[1].startswith("_"))):
            self.add(HIDDEN, f"import {dotted.strip('.')}", node)
        elif any(p.startswith("_") and not p.startswith("__") for p in parts):
            self.add(HIDDEN, f"import {dotted.strip('.')}, a private module", node)


def module_names(trees: Iterable[ast.AST]) -> dict[str, str]:
    """The names that stand for a library's module or one of its objects: bound by an import
    (`np` -> 'numpy', `Tensor` -> 'torch.Tensor'), or assigned one (`T = torch.Tensor`)."""
    found: dict[str, str] = {}
    trees = list(trees)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for _ in range(3):  # aliases of aliases
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    parts = _chain(node.value)
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if parts and parts[0] in found:
                        for t in targets:
                            if isinstance(t, ast.Name) and t.id not in found:
                                found[t.id] = ".".join([found[parts[0]], *parts[1:]])
    return found


def scan(tree: ast.AST, modules: dict[str, str] | None = None) -> list[Finding]:
    """Every finding in `tree`, by line."""
    visitor = _Scan(module_names([tree]) if modules is None else modules)
    visitor.visit(tree)
    return sorted(visitor.found.values(), key=lambda f: (f.line, f.what))


#: An answer longer than this is not read (nor run): reading is linear, but an answer of
#: megabytes would still cost the grader seconds for a lesson's few lines.
MAX_ANSWER_BYTES = 64 << 10


def scan_cell(cell: reading.Cell, modules: dict[str, str] | None = None) -> list[Finding]:
    """Findings in an answer cell, its magics and shell escapes included."""
    if cell.too_long:
        return [Finding(HIDDEN, f"an answer longer than {MAX_ANSWER_BYTES >> 10} KB, more than "
                                "the grader reads", 1)]
    found = [Finding(HIDDEN, f"a shell escape ({word})" if word.startswith("!") else
                     f"a magic ({word})", line) for line, word in cell.magics]
    if cell.tree is not None:
        found += scan(cell.tree, modules)
    return sorted(found, key=lambda f: (f.line, f.what))


def find_autograd(source: str) -> list[Finding]:
    """Every use of autograd in `source`, by line; [] when there is none or it does not parse.

    A cell that does not parse fails its checks anyway (its function is not defined).
    """
    cell = reading.read_cell(0, source)
    return [f for f in scan_cell(cell) if f.kind == AUTOGRAD] if cell.tree else []


def findings_in(source: str) -> list[Finding]:
    """Every finding in one piece of source (a function the self-check read), magics included."""
    return scan_cell(reading.read_cell(0, source, magics=False))


def judge(answers: dict[str, reading.Cell], given: list[reading.Cell],
          entries: dict[str, str], trusted_given: bool = True) -> dict[str, list[Finding]]:
    """Per target, the findings in the code it reaches (see the module's doc), its own cell's
    first. `answers` maps each target to its answer cell (read without treating magics as
    comments), `given` the lesson's other code cells, `entries` a target's function or class
    name. With `trusted_given`, the lesson's cells can only bring autograd findings (they are
    the instructor's: `%matplotlib inline` is theirs to write)."""
    cells = sorted([*answers.values(), *given], key=lambda c: c.index)
    modules = module_names(c.tree for c in cells if c.tree is not None)
    answer_ids = {id(c) for c in answers.values()}
    per_cell = {}
    for c in cells:
        found = scan_cell(c, modules)
        if trusted_given and id(c) not in answer_ids:
            found = [f for f in found if f.kind == AUTOGRAD]
        per_cell[c.index] = (c, found)
    statements = [s for c in cells for s in c.statements]
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    out = {}
    for target, cell in answers.items():
        # Code that hides what it runs keeps its whole cell out of the graded run.
        found: dict[Finding, None] = dict.fromkeys(
            f for f in per_cell[cell.index][1] if f.kind == HIDDEN)
        reached = reading.reachable([entries[target]], statements,
                                    touching=[c.index for c in answers.values()])
        # The target's cell runs as a whole: what it runs besides its definitions counts too.
        reached += [s for s in cell.statements
                    if not isinstance(s.node, definitions) and s not in reached]
        for s in sorted(reached, key=lambda s: (s.cell != cell.index, s.cell, s.first)):
            home, in_it = per_cell[s.cell]
            where = "" if s.cell == cell.index else home.name if id(home) in answer_ids else (
                reading.cell_label(home.source) + (" of the lesson" if trusted_given else ""))
            for f in in_it:
                if s.first <= f.line <= s.last:
                    found[Finding(f.kind, f.what, f.line, where)] = None
        out[target] = list(found)
    return out
