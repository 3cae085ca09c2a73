"""The answer language: the one list of what grading runs may use (an allowlist).

Everything an answer (and the lesson's code that the answers use) may name is listed here:
plain Python's statements (`rules.py` knows which), a short list of builtins, the modules an
answer may import, and the attribute names it may read, whatever object it reads them from.
Anything else is refused, with a message that names it (`rules.py`). A lesson's `lesson.toml`
may extend the list in a `[language]` table (`modules`, `attributes`, `builtins`), for what its
own cells need; it can never allow what `NEVER` holds.

The table in docs/students.md is printed from this module (`python -m autograder.language`), and a test
holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Python's builtins an answer may use. Any other builtin name (`exec`, `getattr`, `open`,
#: `type`, `vars`, `globals`, `__import__`, ...) is refused, bound by the student or not.
BUILTINS = frozenset({
    "abs", "all", "any", "bool", "breakpoint", "callable", "classmethod", "dict", "divmod",
    "enumerate", "filter", "float", "int", "isinstance", "issubclass", "iter", "len", "list",
    "map", "max", "min", "next", "object", "pow", "print", "property", "range", "repr",
    "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum", "super",
    "tuple", "zip",
    "ArithmeticError", "AssertionError", "Exception", "IndexError", "KeyError",
    "NotImplementedError", "RuntimeError", "TypeError", "ValueError", "ZeroDivisionError",
    "NotImplemented", "Ellipsis",
})


#: Attribute names that are modules: used only to reach what they hold (`torch.nn.functional.relu`,
#: `F = torch.nn.functional`), or called as a method of the same name (`x.cuda()`), never handed
#: around as values.
MODULE_ATTRIBUTES = frozenset({"nn", "functional", "cuda"})

#: torch's public tensor API: creation, elementwise math, reductions, products, shapes and views,
#: indexing, dtypes and devices.
TORCH = frozenset({
    # creation
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "eye", "arange",
    "linspace", "rand", "randn", "randint", "zeros_like", "ones_like", "full_like", "empty_like",
    "rand_like", "randn_like", "randint_like", "new_tensor", "new_zeros", "new_ones", "new_full",
    "new_empty", "clone", "detach", "manual_seed", "no_grad",
    # elementwise math
    "abs", "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sqrt",
    "rsqrt", "square", "sign", "sgn", "heaviside", "relu", "sigmoid", "tanh", "clamp",
    "clamp_min", "clamp_max", "clip", "maximum", "minimum", "floor", "ceil", "round", "trunc",
    "reciprocal", "where", "masked_fill", "logical_and", "logical_or", "logical_not",
    "isfinite", "isnan", "isinf", "nan_to_num", "eq", "ne", "lt", "le", "gt", "ge",
    "add_", "sub_", "mul_", "div_", "neg_", "pow_", "exp_", "log_", "sqrt_", "clamp_",
    "clamp_min_", "clamp_max_", "masked_fill_", "fill_", "zero_", "copy_", "abs_",
    # reductions and products
    "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "std", "var",
    "norm", "logsumexp", "softmax", "log_softmax", "cumsum", "all", "any", "matmul", "mm",
    "bmm", "mv", "dot", "outer", "einsum", "addmm", "allclose", "isclose", "equal",
    "count_nonzero",
    # shapes, views, indexing
    "T", "mT", "t", "t_", "transpose", "permute", "reshape", "reshape_as", "view", "view_as",
    "squeeze", "unsqueeze", "squeeze_", "unsqueeze_", "flatten", "expand", "expand_as",
    "broadcast_to", "repeat", "contiguous", "cat", "stack", "split", "chunk", "gather",
    "scatter", "scatter_", "scatter_add", "scatter_add_", "index_select", "index_add",
    "index_add_", "index_fill_", "diag", "diag_embed", "diagonal", "tril", "triu", "sort",
    "argsort", "topk", "flip", "roll", "nonzero",
    # what a tensor is, and moves between dtypes and devices
    "shape", "size", "dim", "ndim", "numel", "dtype", "device", "is_cuda", "data", "item",
    "tolist", "numpy", "to", "cpu", "type_as", "float", "double", "half", "long", "int",
    "bool", "float16", "float32", "float64", "bfloat16", "int32", "int64", "uint8",
    "Tensor", "Size", "finfo", "eps", "is_available", "is_floating_point",
})

#: `torch.nn.functional`'s forward functions (a forward is no gradient).
FUNCTIONAL = frozenset({
    "relu", "softmax", "log_softmax", "one_hot", "mse_loss", "nll_loss", "cross_entropy",
    "linear", "sigmoid", "tanh", "pad", "normalize",
})

#: The `math` module.
MATH = frozenset({
    "sqrt", "exp", "log", "log2", "log10", "pi", "e", "inf", "nan", "isclose", "isfinite",
    "isnan", "prod", "fsum", "floor", "ceil", "tanh",
})

#: numpy's array math.
NUMPY = frozenset({
    "array", "asarray", "zeros", "ones", "arange", "dot", "matmul", "exp", "log", "sum",
    "mean", "maximum", "minimum", "where", "float32", "float64", "allclose", "isclose",
    "reshape", "astype", "ndarray", "newaxis",
})

#: Methods of Python's own containers an answer may call (`self.layers.append(...)`).
CONTAINERS = frozenset({"append", "extend", "insert", "pop", "index", "count", "items", "keys",
                        "values", "get", "update", "copy", "join"})

#: The `warnings` module: a warning says something, it runs nothing.
WARNINGS = frozenset({"warn"})

#: The lessons' own attribute: a gradient lives in `.g`.
LESSON = frozenset({"g"})

#: Special methods an answer may define in its classes (`__init__`, `__call__`, operators...).
#: Any other is refused: `__getattr__`, `__del__`, `__torch_function__`, `__init_subclass__`...
DUNDER_METHODS = frozenset({
    "__init__", "__call__", "__repr__", "__str__", "__len__", "__iter__", "__next__",
    "__getitem__", "__setitem__", "__contains__", "__enter__", "__exit__", "__bool__",
} | {f"__{p}{op}__" for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod",
                               "pow", "neg", "pos", "abs") for p in ("", "r", "i")
     if not (p and op in ("neg", "pos", "abs"))} | {
    f"__{op}__" for op in ("eq", "ne", "lt", "le", "gt", "ge")})

#: Special attributes an answer may read: `super().__init__(...)`, `Module.__call__(self, x)`.
DUNDER_READS = frozenset({"__init__", "__call__"})

#: Autograd and forward-mode AD, by the names code reaches them with: each is `T.uses_autograd`.
AUTOGRAD = {
    "autograd": "torch.autograd", "grad": ".grad", "requires_grad": "requires_grad",
    "requires_grad_": "requires_grad_()", "enable_grad": "torch.enable_grad",
    "set_grad_enabled": "torch.set_grad_enabled", "functorch": "functorch",
    "func": "torch.func", "Parameter": "nn.Parameter", "register_hook": "register_hook()",
    "retain_grad": "retain_grad()", "grad_fn": ".grad_fn", "forward_ad": "forward-mode AD",
    "make_dual": "forward-mode AD", "unpack_dual": "forward-mode AD",
    "dual_level": "forward-mode AD", "jvp": "forward-mode AD", "vjp": "torch.func.vjp",
    "jacrev": "torch.func", "jacfwd": "torch.func", "hessian": "torch.func",
    "checkpoint": "torch.utils.checkpoint",
}

#: Autograd names that are also plain words: autograd only where read from a library, or where
#: the code graded defines no attribute of that name (`self.func` of the student's own class).
AUTOGRAD_GENERIC = frozenset({"func", "checkpoint", "jvp", "vjp", "jacrev", "jacfwd", "hessian"})

#: What a lesson's `[language]` table can never allow: the ways out of the language itself.
NEVER = frozenset({
    "exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr", "globals",
    "locals", "vars", "open", "input", "format", "format_map", "ops", "_C", "library",
    "__class__", "__dict__", "__globals__", "__builtins__", "__subclasses__", "__code__",
    "__closure__", "__self__", "__func__", "__mro__", "__bases__", "__getattribute__",
})

#: Names IPython puts in a notebook's namespace: not there when the grader runs an answer.
IPYTHON = frozenset({"get_ipython", "display", "In", "Out", "exit", "quit"})

#: For the messages: what to write instead of a construct, where there is a plain way.
INSTEAD = {
    "getattr": "read the attribute by its name (x.name)",
    "setattr": "assign the attribute by its name (x.name = value)",
    "type": "ask isinstance(x, SomeClass)",
    "__class__": "ask isinstance(x, SomeClass)",
    "__dict__": "read the attribute by its name (x.name); a print of it is fine",
    "format": "write an f-string: f'{x}'",
    "try": "let the error show: the check names it and its line",
    "with": "write plain code (a `with` may open a library's own, such as torch.no_grad())",
    "global": "return the value, or store it on an object",
    "grad": "the lesson keeps gradients in .g",
}


# --- the run-time policy: what an answer may reach, by the type of each object -------------
# `untrusted/guards.py` enforces it where the object is known: every attribute read, item,
# iteration, write and import of the compiled answers (RestrictedPython) asks it.

#: Modules an answer may import at run time, each with the members it may read. A member that
#: is itself a module is one of these. `None`: every public member (pure math, no I/O).
MEMBERS: dict[str, frozenset[str] | None] = {
    "torch": None,  # torch's list is computed from its tensor API (`guards.torch_members`)
    "torch.nn": frozenset({"functional"}),
    "torch.nn.functional": FUNCTIONAL | frozenset({
        "leaky_relu", "gelu", "silu", "softplus", "elu", "hardtanh", "relu6", "binary_cross_entropy",
        "binary_cross_entropy_with_logits", "l1_loss", "dropout", "embedding"}),
    "torch.cuda": frozenset({"is_available", "device_count", "current_device"}),
    "torch.linalg": None, "torch.special": None, "torch.fft": None,
    "math": None,
    "numpy": NUMPY | frozenset({
        "abs", "sqrt", "square", "clip", "ones_like", "zeros_like", "full", "full_like", "eye",
        "transpose", "outer", "einsum", "prod", "max", "min", "amax", "amin", "argmax", "argmin",
        "std", "var", "concatenate", "stack", "expand_dims", "squeeze", "linspace", "tanh",
        "sign", "int32", "int64", "float16", "bool_", "inf", "nan", "pi", "e", "isnan",
        "isfinite", "array_equal", "log1p", "expm1", "power", "multiply", "add", "subtract",
        "divide", "negative", "heaviside", "empty", "empty_like", "shape", "ndim", "size"}),
    "warnings": WARNINGS,
    "typing": frozenset({
        "Any", "Callable", "Dict", "FrozenSet", "Iterable", "Iterator", "List", "Literal",
        "Mapping", "Optional", "Sequence", "Set", "Tuple", "Type", "Union", "Generator",
        "ClassVar", "Final", "TypeVar", "cast", "overload", "TYPE_CHECKING", "NamedTuple"}),
    "abc": frozenset({"ABC", "abstractmethod"}),
    "functools": frozenset({"reduce", "partial"}),
    "itertools": frozenset({"product", "chain", "repeat", "zip_longest", "accumulate", "islice",
                            "combinations", "permutations", "count", "starmap", "pairwise"}),
}

#: Modules an answer may import (`import torch`, `import numpy as np`, `from torch import nn`).
MODULES = frozenset(MEMBERS)

#: torch's own members an answer may read besides its tensor functions (`TORCH` above).
TORCH_MORE = frozenset({
    "Tensor", "Size", "device", "dtype", "finfo", "iinfo", "no_grad",
    "is_tensor", "is_floating_point", "seed", "Generator", "nn", "cuda", "linalg", "special",
    "fft", "float", "double", "long", "int", "bool", "half", "cfloat", "cdouble", "int8",
    "int16", "uint8", "complex64", "complex128", "get_default_dtype", "strided",
})

#: What no policy opens: on a tensor, autograd (each named by `AUTOGRAD` where it has words),
#: and the ways to a tensor's raw memory or to files.
TENSOR_AUTOGRAD = frozenset({
    "backward", "grad", "requires_grad", "requires_grad_", "register_hook",
    "register_post_accumulate_grad_hook", "retain_grad", "retains_grad", "grad_fn", "grad_dtype",
    "reinforce", "volatile", "output_nr",
})
TENSOR_REFUSED = frozenset({
    "storage", "untyped_storage", "set_", "share_memory_", "as_strided", "as_strided_",
    "as_strided_scatter", "record_stream", "module_load", "as_subclass", "data_ptr",
    "const_data_ptr", "is_set_to", "from_file", "new_empty_strided", "resize_", "resize_as_",
    "sparse_resize_", "sparse_resize_and_clear_", "resize_as_sparse_", "storage_type",
})
#: torch's functions that read files or memory, or reach autograd, whatever the tensor API says.
TORCH_REFUSED = frozenset({
    "load", "save", "from_file", "frombuffer", "from_dlpack", "as_strided", "set_default_dtype",
    "set_default_device", "set_default_tensor_type", "enable_grad", "set_grad_enabled",
    "autograd", "func", "ops", "library", "utils", "jit", "compile", "hub", "fx", "export",
    "backends", "distributed", "multiprocessing", "testing", "profiler", "package", "onnx",
    "overrides", "classes", "set_rng_state", "use_deterministic_algorithms", "set_printoptions",
})

#: Builtins that exist in an answer's world and refuse, with what to write instead.
REFUSED_BUILTINS = {
    "exec": "", "eval": "", "compile": "", "open": "grading reads no files",
    "input": "grading has no keyboard", "globals": "return the value, or store it on an object",
    "locals": "", "vars": "read the attribute by its name (x.name)", "memoryview": "",
    "exit": "", "quit": "", "help": "", "delattr": "write del x.name",
}

#: The dunder names an answer may read on its own objects (its classes and their instances).
OWN_DUNDERS = DUNDER_METHODS | frozenset({
    "__class__", "__name__", "__qualname__", "__doc__", "__module__", "__dict__"})


@dataclass(frozen=True)
class Language:
    """The list in force for one lesson: the engine's, with what its `lesson.toml` adds."""

    modules: frozenset[str] = MODULES
    attributes: frozenset[str] = field(default_factory=lambda: (
        TORCH | FUNCTIONAL | MATH | NUMPY | CONTAINERS | WARNINGS | LESSON | MODULE_ATTRIBUTES))
    builtins: frozenset[str] = BUILTINS
    #: The lesson's `[language]` table as written: what the student's process is sent.
    table: dict = field(default_factory=dict, compare=False, hash=False)

    def extended(self, table: dict) -> Language:
        """This list with a lesson's `[language]` table added; `NEVER` stays refused."""
        def more(key: str) -> frozenset[str]:
            values = table.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError(f"[language] {key} must be a list of names")
            refused = sorted(set(values) & NEVER | {v for v in values if v.startswith("_")})
            if refused:
                raise ValueError(f"[language] {key} may not allow {', '.join(refused)}")
            return frozenset(values)

        unknown = set(table) - {"modules", "attributes", "builtins"}
        if unknown:
            raise ValueError(f"[language] has no {', '.join(sorted(unknown))}: "
                             "modules, attributes, builtins")
        return Language(self.modules | more("modules"), self.attributes | more("attributes"),
                        self.builtins | more("builtins"), {**self.table, **table})


DEFAULT = Language()


def table() -> str:
    """The table of the answer language in docs/students.md, from the lists above."""
    def names(items) -> str:
        return ", ".join(f"`{n}`" for n in sorted(items, key=lambda n: (n.lower(), n)))

    def members(module: str) -> str:
        listed = MEMBERS[module]
        return "every public name" if listed is None else names(listed)

    rows = [
        ("statements", "all of Python's but `async`, `await`, `match` and `except*`; a name "
                       "may not start with `__` nor look like a guard's (`_getattr_`)"),
        ("builtins", names(BUILTINS | {"hasattr", "getattr", "setattr", "type", "format", "id",
                                       "hash", "chr", "ord", "hex", "bin", "oct", "frozenset",
                                       "complex", "bytes", "bytearray", "dir", "ascii"})
         + ", and Python's exceptions; `getattr`, `setattr`, `hasattr` and `str.format` ask the "
           "same policy as `x.name`; `type()` of an object, not of a class"),
        ("refused builtins", names(REFUSED_BUILTINS)),
        ("imports", names(MODULES)),
        ("a tensor (and `torch.Tensor`)", "its public API, but autograd's ("
         + names(TENSOR_AUTOGRAD) + ") and the ways to raw memory (" + names(TENSOR_REFUSED)
         + "); `.g`, and what the answer sets on it"),
        ("torch", "its functions of the tensor API, its dtypes, and " + names(TORCH_MORE)
         + "; never " + names(TORCH_REFUSED)),
        *((f"`{m}`", members(m)) for m in sorted(MEMBERS) if m != "torch"),
        ("the answer's own classes and their instances", "their attributes (private ones too) "
         "and " + names(OWN_DUNDERS - DUNDER_METHODS) + "; a class is built on the answer's own "
         "classes, `object`, `abc.ABC` or Python's exceptions"),
        ("special methods a class may define", names(DUNDER_METHODS)),
        ("numbers, strings, containers, `torch.Size`, dtypes, devices, numpy arrays",
         "their public API"),
        ("functions, methods, classes", "`__name__`, `__qualname__`, `__doc__`; `super()`: what "
         "the parents define"),
        ("anything else", "nothing: frames, code, generators' and functions' internals, "
         "tracebacks, other modules, the grader's objects"),
        ("not a statement in grading", "a statement that is only `print(...)`, and debugger "
                                       "calls (`breakpoint()`, `pdb.set_trace()`): they run in "
                                       "your kernel, never in grading, and are not read"),
    ]
    lines = ["| what | allowed |", "| --- | --- |"]
    lines += [f"| {what} | {allowed} |" for what, allowed in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
