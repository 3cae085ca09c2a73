"""Find autograd in a student's solution cell by reading its syntax tree (trusted side).

The lesson is to write gradients by hand, so a cell that calls autograd scores 0 on its target.
Only `ast.parse` reads the source: nothing is imported or executed. Strings and comments do not
count; assigning to `.grad` (a mix-up with `.g`) does not either, reading it does.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

_MAGIC = re.compile(r"^(\s*)([%!])", re.MULTILINE)

#: Names that switch autograd on or use it, wherever they appear as an attribute or import.
_AUTOGRAD_NAMES = {
    "autograd": "torch.autograd",
    "requires_grad": "requires_grad",
    "requires_grad_": "requires_grad_()",
    "enable_grad": "torch.enable_grad",
    "set_grad_enabled": "torch.set_grad_enabled",
    "functorch": "functorch",
}


@dataclass(frozen=True)
class Finding:
    """One use of autograd: what it is (as a student wrote it) and its line in the cell."""

    what: str
    line: int


def _is_own_method(receiver: ast.expr) -> bool:
    # `self.backward()` or `super().backward()` calls the student's own Module.backward.
    return (isinstance(receiver, ast.Name) and receiver.id == "self") or (
        isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name)
        and receiver.func.id == "super")


def _visit(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "backward" and not _is_own_method(node.func.value):
            return ".backward()"
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg == "requires_grad":
                return "requires_grad="
    if isinstance(node, ast.Attribute):
        if node.attr == "grad" and not isinstance(node.ctx, ast.Store):
            return ".grad"
        if node.attr == "func" and isinstance(node.value, ast.Name) and node.value.id == "torch":
            return "torch.func"
        if node.attr in _AUTOGRAD_NAMES:
            return _AUTOGRAD_NAMES[node.attr]
    if isinstance(node, ast.Name) and node.id in ("enable_grad", "set_grad_enabled"):
        return _AUTOGRAD_NAMES[node.id]
    if isinstance(node, ast.Import | ast.ImportFrom):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
            f"{node.module or ''}.{a.name}" for a in node.names]
        for module in modules:
            parts = module.split(".")
            if "autograd" in parts or "functorch" in parts or parts[:2] == ["torch", "func"]:
                return "import " + module.strip(".")
            for part in parts:
                if part in ("enable_grad", "set_grad_enabled"):
                    return _AUTOGRAD_NAMES[part]
    return None


def find_autograd(source: str) -> list[Finding]:
    """Every use of autograd in `source`, by line; [] when there is none or it does not parse.

    A cell that does not parse fails its checks anyway (its function is not defined).
    """
    text = _MAGIC.sub(r"\1# \2", textwrap.dedent(source))  # `%time` and `!pip` become comments
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    found = {}
    for node in ast.walk(tree):
        what = _visit(node)
        if what is not None:
            found.setdefault((getattr(node, "lineno", 0), what), Finding(what, node.lineno))
    return sorted(found.values(), key=lambda f: (f.line, f.what))
