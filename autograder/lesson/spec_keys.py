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
          "flags", "inputs", "derived", "forward", "summaries")
#: A check: in a target's `checks = [...]`, or a `[[checkset.NAME]]`.
CHECK = ("name", "weight", "kind", "summary", "cases", "requires")
#: A case's own keys; any other key of a case is a size, by the name its target's shapes use.
CASE = ("n", "dtype", "device", "stand_in", "flags")
#: A target's `forward = { ... }`.
FORWARD = ("name", "of", "upstream")
#: One of a target's `derived = { out = { ... } }`.
DERIVED = ("forward", "of")
#: An input given as a table: `{ shape = [...], draw = "classes", classes = "n_out" }`.
INPUT = ("shape", "draw", "classes", "scale")
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


def sizes_given(target: str, inputs: dict, checks) -> None:
    """Every size a function target's input shapes name (`["n", "n_out"]`, a draw's `classes`)
    is given by every case of its checks; `ValueError` naming the size, the input, the check
    and the sizes the case gives, where one is not (else each call fails as it is drawn)."""
    named = []
    for name, spec in inputs.items():
        table = spec if isinstance(spec, dict) else {"shape": spec}
        if isinstance(table, dict):
            only(table, INPUT, f"input {name!r} of target {target}", ("shape",))
        shape = table.get("shape")
        if not isinstance(shape, list):
            raise ValueError(f"input {name!r} of target {target}: its shape is not a list of "
                             "sizes (names of a case's sizes, or numbers)")
        for size in [*shape, table.get("classes", 0)]:
            if isinstance(size, bool) or not isinstance(size, (str, int)):
                raise ValueError(f"input {name!r} of target {target}: its size {size!r} is "
                                 "neither a size's name nor a number")
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
