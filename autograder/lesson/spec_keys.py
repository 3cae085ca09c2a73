"""The keys lesson.toml may give, table by table, and the check that refuses any other: a
misspelt key (`weigth`) is one line naming it, its table and the nearest valid key, never a
late error somewhere else. Plain data and the standard library: reading a lesson knows nothing
of judging. A table whose keys are the author's own (`[mistakes]`, a case's sizes, `[training]`)
is not listed here.
"""

from __future__ import annotations

import difflib

#: The top level of lesson.toml.
TOP = ("id", "title", "notebook", "self_check_seed", "training", "tolerances", "target",
       "checkset", "mistakes", "language")
#: A `[[target]]`.
TARGET = ("name", "entry", "kind", "points", "checks", "args", "grads", "collect", "credit",
          "flags", "inputs", "derived", "forward", "summaries", "methods")
#: A probe target's `methods = { ... }`: the methods of the class the probe calls or stands in
#: for, by their part in the protocol; each defaults to its own name (`call`: `__call__`).
METHODS = ("call", "forward", "bwd", "backward")
#: A check: in a target's `checks = [...]`, or a `[[checkset.NAME]]`.
CHECK = ("name", "weight", "kind", "summary", "cases", "requires")
#: A case's own keys; any other key of a case is a size, by the name its target's shapes use.
CASE = ("n", "dtype", "device", "stand_in", "flags")
#: A target's `forward = { ... }`.
FORWARD = ("name", "of", "upstream")
#: One of a target's `derived = { out = { ... } }`.
DERIVED = ("forward", "of")
#: An input given as a table: `{ shape = [...], draw = "classes", classes = "n_out" }`, or a
#: number handed to the answer as Python's: `{ type = "float", value = 1e-5 }`.
INPUT = ("type", "shape", "draw", "classes", "scale", "value")
#: What an input is (`type`): a tensor (the default), or a Python number.
INPUT_TYPES = ("tensor", "float", "int")
#: How a tensor input is drawn (`draw`).
DRAWS = ("normal", "classes")
#: `[tolerances]`: by dtype.
TOLERANCES = ("float64", "float32")

#: The keys each table must give.
REQUIRED = {"the top level": ("id", "target")}
REQUIRED_TARGET = ("name", "points", "checks")
REQUIRED_CHECK = ("name", "weight", "kind")


def nearest(word: str, choices) -> str:
    """' (did you mean 'weight'?)' where one of `choices` is close to `word`, else ''."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def only(table: object, allowed, where: str, required=()) -> dict:
    """`table` itself, where it is a table of `allowed` keys giving each `required` one;
    `ValueError` (one line: the key, where it is, the nearest valid key) where it is not."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} is not a table")
    for key in table:
        if key not in allowed:
            raise ValueError(f"unknown key {key!r} in {where}{nearest(key, allowed)}: the keys "
                             f"are {', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise ValueError(f"{where} has no {key!r}")
    return table


def input_type(spec: object) -> str:
    """What an input of lesson.toml is: "tensor" (a shape, or a table without `type`), "float"
    or "int" (a number, handed to the answer as Python's)."""
    return str(spec.get("type", "tensor")) if isinstance(spec, dict) else "tensor"


def number(name: str, target: str, table: dict) -> None:
    """A number input (`{ type = "float", value = 1e-5 }`): its value, of its type, and nothing
    a tensor has; `ValueError` (one line) where it is not."""
    kind, value = table["type"], table.get("value")
    where, article = f"input {name!r} of target {target}", "an" if kind == "int" else "a"
    extra = sorted(set(table) - {"type", "value"})
    if extra:
        raise ValueError(f"{where} is {article} {kind}, a number: it has a value, not "
                         f"{', '.join(extra)}")
    if "value" not in table:
        raise ValueError(f"{where} is {article} {kind} with no value "
                         f"({{ type = {kind!r}, value = ... }})")
    if isinstance(value, bool) or not isinstance(value, int if kind == "int" else (int, float)) \
            or value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: its value {value!r} is not a{'n' if kind == 'int' else ''} "
                         f"{kind}{' (a whole number)' if kind == 'int' else ' (a finite number)'}")


def sizes_given(target: str, inputs: dict, checks) -> None:
    """Every input is a tensor whose shape is a list of at least one size, drawn as the engine
    draws, or a number of a type the engine hands (`number`); every size a function target's
    input shapes name (`["n", "n_out"]`, a draw's `classes`) is given by every case of its
    checks. `ValueError` naming the input and what is wrong, or the size, the check and the
    sizes the case gives, where one is not (else each call fails as it is drawn)."""
    named = []
    for name, spec in inputs.items():
        table = spec if isinstance(spec, dict) else {"shape": spec}
        where = f"input {name!r} of target {target}"
        only(table, INPUT, where)
        kind = input_type(table)
        if kind not in INPUT_TYPES:
            raise ValueError(f"{where}: its type {kind!r} is none the engine hands"
                             f"{nearest(kind, INPUT_TYPES)}: one of {', '.join(INPUT_TYPES)}")
        if kind != "tensor":
            number(name, target, table)
            continue
        only(table, INPUT, where, ("shape",))
        shape = table.get("shape")
        if not isinstance(shape, list):
            raise ValueError(f"{where}: its shape is not a list of sizes (names of a case's "
                             "sizes, or numbers)")
        if not shape:
            raise ValueError(f"{where}: its shape [] has no size (a 0-d tensor): a number is "
                             "{ type = \"float\", value = ... } (or \"int\")")
        if table.get("draw", "normal") not in DRAWS:
            raise ValueError(f"{where}: its draw {table.get('draw')!r} is none the engine "
                             f"makes{nearest(str(table.get('draw')), DRAWS)}: one of "
                             f"{', '.join(DRAWS)}")
        if table.get("draw") == "classes" and "classes" not in table:
            raise ValueError(f"{where} is drawn as classes and says not how many (classes = "
                             "a size's name or a number)")
        scale = table.get("scale", 1)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"{where}: its scale {scale!r} is not a number")
        for size in [*shape, table.get("classes", 1)]:
            if isinstance(size, bool) or not isinstance(size, (str, int)):
                raise ValueError(f"{where}: its size {size!r} is neither a size's name nor a "
                                 "number")
            if isinstance(size, int) and size < 1:
                raise ValueError(f"{where}: its size {size} is not a whole number of at least 1")
            if isinstance(size, str):
                named.append((name, size))
    for check in checks:
        for case in check.cases:
            given = ("n", *(k for k, _ in case.dims))
            for name, size in named:
                if size not in given:
                    raise ValueError(
                        f"input {name!r} of target {target} names size {size!r}, which a case "
                        f"of its check {check.name!r} does not give{nearest(size, given)}: it "
                        f"gives {', '.join(given)}")


def methods(target: str, kind: str, table: object) -> tuple[tuple[str, str], ...]:
    """A probe target's `methods = { forward = "fwd", ... }`: (part, method name) for each of
    `METHODS`, the defaults filled in. `ValueError` (one line) where the target is no probe, a
    name is not a method's (an identifier, no special name but `call`'s `__call__`), or two
    parts share one."""
    if table is None:
        table = {}
    elif kind != "probe":
        raise ValueError(f"target {target} is a {kind}: methods are a probe target's")
    only(table, METHODS, f"the methods of target {target}")
    names = {part: table.get(part, "__call__" if part == "call" else part) for part in METHODS}
    for part, name in names.items():
        if not isinstance(name, str) or not name.isidentifier() or \
                (name.startswith("__") and not (part == "call" and name == "__call__")):
            raise ValueError(f"the methods of target {target}: {part} = {name!r} is not a "
                             "method's name")
    if len(set(names.values())) != len(names):
        raise ValueError(f"the methods of target {target} name one method for two parts: "
                         + ", ".join(f"{p} = {n!r}" for p, n in names.items()))
    return tuple(names.items())
