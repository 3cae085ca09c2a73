"""The exercise's rule, read from the code grading runs (trusted side): what the answers say.

What an answer may reach is decided where each object is known, at run time, by the answer
language's policy per kind of object (`untrusted/guards.py`, on code compiled by
`compiler.py`). This reading says, before anything runs, what it can say well: the
line, the name and what to write instead. Two kinds of finding:

- **autograd** (`T.uses_autograd`): `.backward()`, `.grad`, `requires_grad`, `torch.autograd`,
  `torch.func`, forward-mode AD, ... The lesson is to write gradients by hand. (At run time the
  guards refuse autograd too, and the graded process has no engine left: `calls.py`.) A
  `.backward()` of the student's own is none: on `self`, or on what the code made from one of
  its own classes (`self.layer = Scale()`, `own_instances`).
- **not allowed** (`T.not_allowed`): what the compiler refuses (a name that could stand for a
  guard, `__x`, a frame's or a generator's internals, `async`, `match`, `except*`), an import of
  a module the language does not list, a special method it does not list (`__getattr__`), a
  class built on a library's, magics and shell escapes. An answer cell with such a finding is
  not run in the graded process at all (`program.py`).

Everything else an answer writes in ordinary Python (`hasattr`, `try`, `with`, generators,
`str.format`, a tensor's `.type(dtype)`) is read as it is, and run under the guards.

A statement that is only a `print(...)` call, and debugger calls (`breakpoint()`,
`pdb.set_trace()`, their imports), are `inert`: the graded program leaves them out
(`program.py`), so they are not read either: a debugging print may read anything.

What a target is judged on: the statements (in any answer cell, or in the lesson's own cells)
that define the name it is called by or a name that code reads, transitively, or that change
what such a name holds (`reading.reachable`); what its own cell runs besides definitions; and, for
code outside the language, all of its own cell (which then does not run). Only `ast`, `symtable`
and RestrictedPython's compiler read the code: nothing is imported or executed.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from .. import language as lang
from . import compiler, reading

AUTOGRAD, HIDDEN = "autograd", "hidden"

_STATEMENTS = (ast.FunctionDef, ast.ClassDef, ast.Return, ast.Delete, ast.Assign,
               ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If, ast.Raise, ast.Assert,
               ast.Import, ast.ImportFrom, ast.Nonlocal, ast.Global, ast.Expr, ast.Pass,
               ast.Break, ast.Continue, ast.Try, ast.With)
_EXPRESSIONS = (ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp,
                ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
                ast.Compare, ast.Call, ast.FormattedValue, ast.JoinedStr, ast.Constant,
                ast.Attribute, ast.Subscript, ast.Starred, ast.Name, ast.List, ast.Tuple,
                ast.Slice, ast.Yield, ast.YieldFrom)
_PARTS = (ast.Module, ast.arguments, ast.arg, ast.keyword, ast.alias, ast.comprehension, ast.withitem,
          ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop, ast.ExceptHandler)

#: What the language has no place for, as a student would name it (RestrictedPython compiles
#: none of them: `compiler.py`).
_CONSTRUCTS = {
    ast.Await: "await", ast.AsyncFunctionDef: "async def", ast.AsyncFor: "async for",
    ast.AsyncWith: "async with", ast.Match: "match",
}
if hasattr(ast, "TryStar"):
    _CONSTRUCTS[ast.TryStar] = "try ... except*"

#: Debuggers: a call of one, or its import, does nothing in grading.
_DEBUGGER_MODULES = {"pdb", "ipdb", "IPython.core.debugger", "IPython"}
_DEBUGGER_CALLS = {"set_trace", "breakpoint", "post_mortem", "embed"}


@dataclass(frozen=True)
class Finding:
    """One construct the rule does not allow, as the student wrote it, and where: `where` is
    empty for the target's own cell, else the other cell's name."""

    kind: str  # AUTOGRAD or HIDDEN
    what: str
    line: int
    where: str = ""
    instead: str = ""  # what to write instead, where there is a plain way

    @property
    def code(self) -> str:
        return "uses_autograd" if self.kind == AUTOGRAD else "not_allowed"

    def place(self, target: str) -> str:
        """'on line 3 of the mse_grad cell', 'on line 2 of the relu_grad cell'."""
        return f"on line {self.line} of {self.where or f'the {target} cell'}"


def inert(node: ast.stmt) -> bool:
    """A statement grading leaves out: only a `print(...)` call, or a debugger's call or import."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        if isinstance(func, ast.Name):
            return func.id == "print" or func.id in _DEBUGGER_CALLS
        parts = _chain(func)
        return bool(parts) and parts[0] in ("pdb", "ipdb") and parts[-1] in _DEBUGGER_CALLS
    if isinstance(node, ast.Import):
        return all(a.name in _DEBUGGER_MODULES for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and node.module in _DEBUGGER_MODULES and \
            all(a.name in _DEBUGGER_CALLS for a in node.names)
    return False


def _chain(node: ast.expr) -> list[str] | None:
    """`torch.nn.functional` as ['torch', 'nn', 'functional']; None if it is not a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def _guard_like(name: str) -> bool:
    """What `compiler.py` refuses as a name: a guard's (`_getattr_`) or `__x`."""
    return name.startswith("__") or (name.startswith("_") and name.endswith("_") and name != "_")


def _shown(node: ast.expr, attr: str) -> str:
    parts = _chain(node)
    return ".".join([*parts, attr]) if parts and len(parts) <= 4 else f".{attr}"


class _Read(ast.NodeVisitor):
    """Every finding in one tree, against `language`; `modules` maps the names bound to modules
    or library objects to what they stand for; `defined` is every attribute name the code being
    graded sets or defines (`self.out = ...`, a method `bwd`)."""

    def __init__(self, language: lang.Language, modules: dict[str, str],
                 defined: frozenset[str], instances: frozenset[str] = frozenset()) -> None:
        self.language, self.modules, self.defined = language, modules, defined
        self.instances = instances  # what holds an object of the code's own classes
        self.found: dict[tuple[int, str], Finding] = {}
        self.roles: dict[int, str] = {}  # id of a node -> "base" or "called"

    def add(self, kind: str, what: str, node: ast.AST, instead: str = "") -> None:
        line = getattr(node, "lineno", 0)
        self.found.setdefault((line, what), Finding(kind, what, line, instead=instead))

    def refuse(self, what: str, node: ast.AST, key: str = "") -> None:
        self.add(HIDDEN, what, node, lang.INSTEAD.get(key, ""))

    # --- the walk: statements and expressions the language has --------------------------------

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt) and inert(node):
            return
        if type(node) in _CONSTRUCTS:
            word = _CONSTRUCTS[type(node)]
            self.refuse(word, node, word)
            self.generic_visit(node)  # what it holds is read too: autograd in it is named
            return
        if not isinstance(node, _STATEMENTS + _EXPRESSIONS + _PARTS):
            self.refuse(type(node).__name__, node)
            return
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            self.generic_visit(node)
        else:
            method(node)

    def module_of(self, parts: list[str] | None) -> str | None:
        """The library a dotted name starts in (`np.linalg` -> 'numpy'), or None. `torch` is
        torch even where the code does not import it: every lesson does."""
        if not parts:
            return None
        return self.modules.get(parts[0], "torch" if parts[0] == "torch" else None)

    # --- names ---

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if _guard_like(name):  # `__builtins__`, `_getattr_`: the names of the guards
            self.refuse(name + ("()" if self.roles.get(id(node)) == "called" else ""), node, name)
        elif name in lang.IPYTHON and name not in self.language.builtins:
            self.refuse(f"{name}, which only IPython defines", node)

    # --- attributes ---

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.roles[id(node.value)] = "base"
        self.attribute(node.attr, node, node.value, isinstance(node.ctx, ast.Store | ast.Del),
                       self.roles.get(id(node)))
        self.visit(node.value)

    def attribute(self, attr: str, node: ast.AST, base: ast.expr, store: bool,
                  role: str | None) -> None:
        """Autograd, by the names code reaches it with. Every other attribute is decided where
        the object is known, at run time (`untrusted/guards.py`)."""
        parts = _chain(base)
        module = self.module_of(parts)
        own = isinstance(base, ast.Name) and base.id in ("self", "cls")
        if attr in lang.AUTOGRAD and not (store and attr == "grad"):
            if attr not in lang.AUTOGRAD_GENERIC or module is not None or \
                    attr not in self.defined:
                self.add(AUTOGRAD, lang.AUTOGRAD[attr], node, lang.INSTEAD.get(attr, ""))
                return
        if attr == "backward" and not store:
            super_call = isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and \
                base.func.id == "super"
            # `self.backward()` is the student's Module's, and so is `self.layer.backward()`
            # where the code made `self.layer` from a class of its own (`held_by`)
            if not (own or super_call or _held_by(base) & self.instances):
                self.add(AUTOGRAD, ".backward()" if role == "called" else ".backward", node)

    # --- calls ---

    def visit_Call(self, node: ast.Call) -> None:
        self.roles[id(node.func)] = "called"
        for keyword in node.keywords:
            if keyword.arg == "requires_grad":
                self.add(AUTOGRAD, "requires_grad=", node)
            elif keyword.arg is None:
                self.double_star(keyword.value, node)
        self.generic_visit(node)

    def double_star(self, value: ast.expr, node: ast.Call) -> None:
        """`**{"requires_grad": True}`: autograd a reader sees (one it cannot see is refused at
        run time: grad mode stays off in the graded process)."""
        if isinstance(value, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "requires_grad" for k in value.keys):
            self.add(AUTOGRAD, "requires_grad=", node)

    # --- definitions and imports ---

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if _dunder(node.name) and node.name not in lang.DUNDER_METHODS:
            self.refuse(f"def {node.name}", node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for keyword in node.keywords:
            self.refuse(f"class {node.name}({keyword.arg or '**'}=...)", node)
        for base in node.bases:
            self.roles.setdefault(id(base), "base")
            parts = _chain(base)
            dotted = ".".join([self.modules.get(parts[0], parts[0]), *parts[1:]]) if parts \
                else ""
            if self.module_of(parts) is not None and dotted != "abc.ABC":  # the library's methods
                self.refuse(f"class {node.name}({'.'.join(parts)}), a class built on a "
                            "library's", node)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if node.is_async:
            self.refuse("async for", node.iter)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imported(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.refuse(f"from {'.' * node.level}{module} import ...", node)
            return
        for alias in node.names:
            dotted = f"{module}.{alias.name}"
            if _autograd_module(dotted) and alias.name != "*":
                self.add(AUTOGRAD, f"import {dotted}", node)
            elif alias.name in lang.AUTOGRAD and alias.name not in lang.AUTOGRAD_GENERIC:
                self.add(AUTOGRAD, lang.AUTOGRAD[alias.name], node)
        if self.imported(module, node, whole=False):
            for alias in node.names:  # which members: decided at run time, by the module's list
                if alias.name == "*":
                    self.refuse(f"from {module} import *", node)
                elif alias.name.startswith("_"):
                    self.refuse(f"from {module} import {alias.name}", node)

    def imported(self, dotted: str, node: ast.AST, whole: bool = True) -> bool:
        """Whether `dotted` may be imported; a finding where not."""
        parts = dotted.split(".")
        if _autograd_module(dotted):
            if whole:
                self.add(AUTOGRAD, f"import {dotted}", node)
            return False
        if dotted not in self.language.modules:
            what = f"import {dotted}" if parts[0] != "autograder" else \
                "an import of the grader's own code"
            self.add(HIDDEN, what, node, "an answer imports only "
                     + ", ".join(sorted(self.language.modules)))
            return False
        return True


def _autograd_module(dotted: str) -> bool:
    parts = dotted.split(".")
    return bool({"autograd", "functorch", "forward_ad"} & set(parts)) or \
        parts[:2] == ["torch", "func"]


def module_names(trees: Iterable[ast.AST]) -> dict[str, str]:
    """The names that stand for a library's module or one of its objects: bound by an import
    (`np` -> 'numpy', `Tensor` -> 'torch.Tensor'), or assigned one (`F = torch.nn.functional`)."""
    found: dict[str, str] = {}
    trees = list(trees)
    assigns = []
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
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                assigns.append(node)
    for _ in range(3):  # aliases of aliases
        for node in assigns:
            parts = _chain(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if parts and parts[0] in found:
                for t in targets:
                    if isinstance(t, ast.Name) and t.id not in found:
                        found[t.id] = ".".join([found[parts[0]], *parts[1:]])
    return found


def defined_attributes(trees: Iterable[ast.AST]) -> frozenset[str]:
    """Every attribute name the code sets (`x.name = ...`) or a class of it defines."""
    found = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                found.add(node.attr)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        found.add(item.name)
                    elif isinstance(item, ast.Assign):
                        found.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return frozenset(n for n in found if not _dunder(n))


def _held_by(node: ast.expr) -> set[str]:
    """What `node` names as a holder of objects: `layer` for a name, `.layer` for `self.layer`
    (`cls.layer`); nothing for anything else."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
            node.value.id in ("self", "cls"):
        return {f".{node.attr}"}
    return set()


def own_instances(trees: Iterable[ast.AST]) -> frozenset[str]:
    """What holds an object of one of the code's own classes (`_held_by`'s words): a name or
    an attribute of `self` assigned such an object (`self.layer = Scale()`) or a list or tuple
    of them (`self.layers = [Lin(w, b), Relu()]`), and the loop variable that goes through such
    a list (`for layer in reversed(self.layers)`). By name, as the code is read: what such a
    name holds at run time is the guards' to judge (a tensor's `.backward` is refused there)."""
    trees = list(trees)
    classes = {n.name for tree in trees for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}

    def made_here(value: ast.expr) -> bool:
        return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
            value.func.id in classes

    single, many = set(), set()
    loops = []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                value = node.value
                into = single if made_here(value) else many if isinstance(
                    value, ast.List | ast.Tuple) and value.elts and all(
                    made_here(e) for e in value.elts) else None
                if into is not None:
                    for target in node.targets:
                        into.update(_held_by(target))
            elif isinstance(node, ast.For):
                loops.append(node)
    for loop in loops:
        over = loop.iter
        if isinstance(over, ast.Call) and isinstance(over.func, ast.Name) and \
                over.func.id == "reversed" and len(over.args) == 1:
            over = over.args[0]
        if _held_by(over) & many:
            single.update(_held_by(loop.target))
    return frozenset(single)


def scan(tree: ast.AST, modules: dict[str, str] | None = None,
         language: lang.Language = lang.DEFAULT,
         defined: frozenset[str] | None = None,
         instances: frozenset[str] | None = None) -> list[Finding]:
    """Every finding in `tree`, by line."""
    reader = _Read(language, module_names([tree]) if modules is None else modules,
                   defined_attributes([tree]) if defined is None else defined,
                   own_instances([tree]) if instances is None else instances)
    for node in tree.body if isinstance(tree, ast.Module) else [tree]:
        try:
            reader.visit(node)
        except RecursionError:  # Python parses deeper than a reader can follow
            reader.refuse("code nested deeper than the grader reads", node)
    return sorted(reader.found.values(), key=lambda f: (f.line, f.what))


#: An answer longer than this is not read (nor run): reading is linear, but an answer of
#: megabytes would still cost the grader seconds for a lesson's few lines.
MAX_ANSWER_BYTES = 64 << 10


def scan_cell(cell: reading.Cell, modules: dict[str, str] | None = None,
              language: lang.Language = lang.DEFAULT,
              defined: frozenset[str] | None = None, compiled: bool = True,
              instances: frozenset[str] | None = None) -> list[Finding]:
    """Findings in an answer cell, its magics and shell escapes included; with `compiled`, what
    the compiler refuses too (the lesson's own cells, which are the instructor's, go without)."""
    if cell.too_long:
        return [Finding(HIDDEN, f"an answer longer than {MAX_ANSWER_BYTES >> 10} KB, more than "
                                "the grader reads", 1)]
    found = [Finding(HIDDEN, f"a shell escape ({word})" if word.startswith("!") else
                     f"a magic ({word})", line) for line, word in cell.magics]
    if cell.tree is not None:
        read = scan(cell.tree, modules, language, defined, instances)
        lines = {f.line for f in read}
        found += read + [Finding(HIDDEN, r.what, r.line) for r in (
            compiler.refusals(cell.tree) if compiled else ()) if r.line not in lines]
    return sorted(found, key=lambda f: (f.line, f.what))


def findings_in(source: str, language: lang.Language = lang.DEFAULT) -> list[Finding]:
    """Every finding in one piece of source (a function the self-check read), magics included."""
    return grad_alone(scan_cell(reading.read_cell(0, source, magics=False), language=language))


#: What a `.grad` read alone is told: the lesson's convention, not autograd.
GRAD_CONVENTION = ("the lesson's convention is .g: the upstream gradient is in out.g, and the one "
                   "you compute goes in inp.g (the grader reads .g)")


def grad_alone(findings: list[Finding]) -> list[Finding]:
    """A `.grad` read where the code shows no other autograd (no `.backward()`, no
    `requires_grad`) is not autograd: nothing there fills `.grad`. It is the lesson's convention
    mixed up (`out.grad` for `out.g`), not in the answer language, and said so."""
    autograd = [f for f in findings if f.kind == AUTOGRAD]
    if not autograd or any(f.what != lang.AUTOGRAD["grad"] for f in autograd):
        return findings
    return [Finding(HIDDEN, ".grad", f.line, f.where,
                    GRAD_CONVENTION) if f.kind == AUTOGRAD else f for f in findings]


def judge(answers: dict[str, reading.Cell], given: list[reading.Cell],
          entries: dict[str, str], trusted_given: bool = True,
          language: lang.Language = lang.DEFAULT) -> dict[str, list[Finding]]:
    """Per target, the findings in the code it reaches (see the module's doc), its own cell's
    first. `answers` maps each target to its answer cell (read without treating magics as
    comments), `given` the lesson's other code cells, `entries` a target's function or class
    name. With `trusted_given`, the lesson's cells' magics are theirs to write (`%matplotlib
    inline`); their code is read against the same language as the answers'."""
    cells = sorted([*answers.values(), *given], key=lambda c: c.index)
    trees = [c.tree for c in cells if c.tree is not None]
    modules, defined = module_names(trees), defined_attributes(trees)
    instances = own_instances(trees)
    answer_ids = {id(c) for c in answers.values()}
    per_cell = {}
    for c in cells:
        given = trusted_given and id(c) not in answer_ids
        found = scan_cell(c, modules, language, defined, compiled=not given,
                          instances=instances)
        if given:
            found = [f for f in found if not f.what.startswith(("a magic", "a shell escape"))]
        per_cell[c.index] = (c, found, [f.line for f in found])
    statements = [s for c in cells for s in c.statements]
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    out = {}
    for target, cell in answers.items():
        # Code outside the language keeps its whole cell out of the graded run.
        found: dict[Finding, None] = dict.fromkeys(
            f for f in per_cell[cell.index][1] if f.kind == HIDDEN)
        # The target's cell runs as a whole: what it runs besides its definitions counts too,
        # and so does what that code calls (a helper its top-level code runs).
        top = [s for s in cell.statements if not isinstance(s.node, definitions)]
        start = {entries[target]} | {n.func.id for s in top for n in ast.walk(s.node)
                                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        reached = reading.reachable(start, statements,
                                    touching=[c.index for c in answers.values()])
        seen = {id(s) for s in reached}
        reached += [s for s in top if id(s) not in seen]
        for s in sorted(reached, key=lambda s: (s.cell != cell.index, s.cell, s.first)):
            home, in_it, lines = per_cell[s.cell]
            where = "" if s.cell == cell.index else home.name if id(home) in answer_ids else (
                home.label() + (" of the lesson" if trusted_given else ""))
            for f in in_it[bisect.bisect_left(lines, s.first):bisect.bisect_right(lines, s.last)]:
                found[Finding(f.kind, f.what, f.line, where, f.instead)] = None
        out[target] = grad_alone(list(found))
    return out
