"""The answer language at run time: what an answer may reach, decided by the type of each object.

The answers, and the lesson's code they use, are compiled with RestrictedPython (`compiler.py`):
every attribute read becomes `_getattr_(obj, name)`, every item `_getitem_`, every iteration
`_getiter_`, every write `_write_(obj)`, every class statement `__metaclass__`, every import
`__import__`. This module supplies those functions, and they ask one policy per kind of object:

- a module: only an allowed module (`language.MEMBERS`), and only its listed members;
- a tensor (and torch's class `Tensor`): its public API, less autograd's (`TENSOR_AUTOGRAD`,
  refused as autograd) and the ways to raw memory (`TENSOR_REFUSED`); `.g`, and what the answer
  set on it;
- the answer's own classes and their instances: their own attributes, private ones too, and the
  special names `OWN_DUNDERS`;
- plain values (numbers, strings, containers, `torch.Size`, dtypes, devices, numpy arrays): their
  public API (`str.format` formats through this policy too);
- functions, methods, builtins: their name and doc; `super()`: what the class's parents define;
- anything else (frames, code, generators, tracebacks, other modules, the grader's objects):
  nothing.

Everything refused raises `NotAllowed`, whose message names what was refused and what to write
instead where there is a plain way; an autograd name is flagged (`NotAllowed.autograd`) even where
the answer catches it. Runs where the student's code runs: the graded process, and the student's
kernel for the self-check. Standard library, torch and RestrictedPython only.
"""

from __future__ import annotations

import builtins
import importlib
import operator
import string
import types

import torch
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from .. import language as lang

_type, _isinstance, _issubclass, _getattr, _setattr, _delattr, _iter = (
    type, isinstance, issubclass, getattr, setattr, delattr, iter)
_ModuleType, _Tensor = types.ModuleType, torch.Tensor
_MISSING = object()


class NotAllowed(Exception):
    """Something outside the answer language; the message names it."""

    autograd = False


class AutogradNotAllowed(NotAllowed):
    """Autograd, which the lesson is about writing by hand."""

    autograd = True


#: Every refusal of autograd in this process, whether the answer caught it or not: a call that
#: made one is said to have used autograd (`calls._call_student`).
AUTOGRAD_TRIED: list[str] = []


def _refuse(what: str, instead: str = "", autograd: bool = False) -> NotAllowed:
    if autograd:
        AUTOGRAD_TRIED.append(what)
        words = f"{what} is autograd: write the gradient by hand"
        return AutogradNotAllowed(words + (f" ({instead})" if instead else ""))
    return NotAllowed(f"{what} is not in the answer language" + (f": {instead}" if instead else ""))


# --- what an object is, for the policy and for the words -----------------------------------

#: The answer's own classes (made through `__metaclass__`), and every class built on one.
OWN: set[type] = set()


def _own_class(cls: type) -> bool:
    return any(c in OWN for c in _type.__dict__["__mro__"].__get__(cls))


def own(obj: object) -> bool:
    """An instance of one of the answer's classes, or such a class."""
    return _own_class(obj if _isinstance(obj, type) else _type(obj))


def _public(name: str) -> bool:
    return not name.startswith("_")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def described(obj: object) -> str:
    """'a tensor', 'the module torch', 'a Linear', 'a function' — for a student."""
    if _isinstance(obj, _ModuleType):
        return f"the module {obj.__name__}"
    if _isinstance(obj, _Tensor):
        return "a tensor"
    if _isinstance(obj, type):
        return f"the class {obj.__name__}"
    name = _type(obj).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


# --- the policy -------------------------------------------------------------------------------

class Policy:
    """The answer language of one lesson, by kind of object (see the module's doc)."""

    def __init__(self, language: lang.Language = lang.DEFAULT) -> None:
        self.language = language
        public = {n for n in dir(_Tensor) if _public(n)}
        self.tensor_api = frozenset(public - lang.TENSOR_REFUSED - lang.TENSOR_AUTOGRAD) | {"g"}
        self.members = dict(lang.MEMBERS)
        for module in language.modules - set(self.members):
            self.members[module] = None  # a lesson's own module: its public members
        self.members["torch"] = self._torch_members()
        # A lesson's `[language] attributes`: more members of the modules with a list (a torch
        # function the engine's list leaves out), never what no policy opens.
        more = frozenset(language.table.get("attributes", ())) - lang.TORCH_REFUSED \
            - lang.TENSOR_AUTOGRAD - set(lang.AUTOGRAD)
        for module, members in self.members.items():
            if members is not None:
                self.members[module] = members | more
        self.plain = self._plain_types()

    def _torch_members(self) -> frozenset[str]:
        tensor_functions = {n for n in dir(torch) if n in self.tensor_api
                            and callable(_getattr(torch, n, None))}
        dtypes = {n for n in dir(torch) if _isinstance(_getattr(torch, n, None), torch.dtype)}
        listed = (lang.TORCH | lang.TORCH_MORE | tensor_functions | dtypes) - lang.TORCH_REFUSED \
            - lang.TENSOR_AUTOGRAD - set(lang.AUTOGRAD)
        # a name of the tensor API that is a module of torch's (`torch.cpu`), not a function
        return frozenset(n for n in listed if not _isinstance(_getattr(torch, n, None), _ModuleType)
                         or f"torch.{n}" in lang.MEMBERS)

    @staticmethod
    def _plain_types() -> tuple[type, ...]:
        found = [int, float, complex, bool, str, bytes, bytearray, list, tuple, dict, set,
                 frozenset, range, slice, _type(None), _type({}.keys()), _type({}.values()),
                 _type({}.items()), torch.Size, torch.dtype, torch.device, torch.finfo,
                 torch.iinfo, torch.Generator]
        return tuple(found)

    # --- reading an attribute ---

    def check_read(self, obj: object, name: str) -> None:
        """Nothing where `obj.name` is in the language; else raises `NotAllowed`."""
        if not _isinstance(name, str):
            raise TypeError("attribute name must be a string")
        if name == "__class__":  # what `type(obj)` gives too; of a class, its metaclass, which
            if _isinstance(obj, type):  # makes classes past the class statement's checks
                raise _refuse(f".__class__ of {described(obj)}", "ask isinstance(x, SomeClass)")
            return None
        if name in ("__name__", "__qualname__", "__doc__") and (
                _isinstance(obj, type) or callable(obj)) and not _isinstance(obj, _Tensor):
            return None
        if _isinstance(obj, _ModuleType):
            return self._module(obj, name)
        cls = obj if _isinstance(obj, type) else _type(obj)
        if _issubclass(cls, _Tensor) and not _own_class(cls):
            return self._tensor(obj, name)
        if _own_class(cls):
            if _dunder(name) and name not in lang.OWN_DUNDERS:
                raise _refuse(f".{name} of {described(obj)}")
            return None
        if _type(obj) is super:  # what the parents of the answer's own class define
            if not own(obj.__self__ if obj.__self__ is not None else obj.__self_class__):
                raise _refuse(f"super() of {described(obj.__self__)}", "super() is for the "
                              "answer's own classes")
            if not _dunder(name) or name in lang.DUNDER_METHODS:
                return None
        if _dunder(name):
            raise _refuse(f".{name} of {described(obj)}", lang.INSTEAD.get(name, ""))
        if not _public(name):
            raise _refuse(f".{name} of {described(obj)}, a private name")
        if _issubclass(cls, self.plain) or self.numpy(cls) or \
                cls.__module__ == "torch.return_types":
            if self.numpy(cls) and name in ("ctypes", "tofile", "dump", "dumps", "data", "base"):
                raise _refuse(f".{name} of a numpy array")
            return None
        if _type(obj) is property and name in ("setter", "getter", "deleter"):
            return None
        if _issubclass(cls, BaseException) and name == "args":
            return None
        raise _refuse(f".{name} of {described(obj)}")

    def _module(self, module: types.ModuleType, name: str) -> None:
        dotted = module.__name__
        members = self.members.get(dotted, frozenset())
        if name in lang.AUTOGRAD and dotted.startswith("torch") and \
                name not in lang.AUTOGRAD_GENERIC:
            raise _refuse(lang.AUTOGRAD[name], lang.INSTEAD.get(name, ""), autograd=True)
        if dotted not in self.members:
            raise _refuse(f"the module {dotted}")
        if members is None:
            if _public(name):
                return None
        elif name in members:
            return None
        raise _refuse(f"{dotted}.{name}")

    def _tensor(self, obj: object, name: str) -> None:
        if name in lang.TENSOR_AUTOGRAD:
            instead = lang.INSTEAD.get(name, "")
            if name == "grad":
                instead = ("the lesson's convention is .g: the upstream gradient is in out.g, "
                           "and the one you compute goes in inp.g")
            raise _refuse(lang.AUTOGRAD.get(name, f".{name}"), instead, autograd=True)
        if name in self.tensor_api or not hasattr(obj if _isinstance(obj, type) else _type(obj),
                                                  name):
            return None  # what the class does not have: Python's own AttributeError
        if _public(name) and not _isinstance(obj, type):
            try:
                if name in object.__getattribute__(obj, "__dict__"):
                    return None  # set by the answer: `t.mask = ...`
            except AttributeError:
                pass
        raise _refuse(f".{name} of {described(obj)}", lang.INSTEAD.get(name, ""))

    @staticmethod
    def numpy(cls: type) -> bool:
        return (cls.__module__ or "").split(".")[0] == "numpy"

    # --- items, writes, imports, classes ---

    def check_item(self, obj: object) -> None:
        cls = _type(obj)
        if _issubclass(cls, (_Tensor, list, tuple, dict, str, bytes, bytearray, range)) or \
                self.numpy(cls) or own(obj) or cls.__module__ in ("typing", "torch.return_types") \
                or _isinstance(obj, type) and not _isinstance(obj, _ModuleType) \
                or cls is types.GenericAlias:
            return None
        raise _refuse(f"an item of {described(obj)}")

    def check_write(self, obj: object, name: str | None) -> None:
        """`obj.name = ...` (name None: `obj[key] = ...`)."""
        if _isinstance(obj, _ModuleType):
            raise _refuse(f"a change to {described(obj)}, part of a library")
        cls = obj if _isinstance(obj, type) else _type(obj)
        if name is None:
            if _issubclass(cls, (_Tensor, list, dict, bytearray)) or self.numpy(cls) or \
                    own(obj):
                return None
            raise _refuse(f"a change to an item of {described(obj)}")
        if _own_class(cls):
            if _dunder(name):
                raise _refuse(f"a change to .{name} of {described(obj)}")
            return None
        if _issubclass(cls, _Tensor) and not _isinstance(obj, type):
            if name == "requires_grad":
                raise _refuse("requires_grad", autograd=True)
            if _public(name) and (name not in lang.TENSOR_AUTOGRAD or name == "grad") and \
                    name not in lang.TENSOR_REFUSED:
                return None
        raise _refuse(f"a change to .{name} of {described(obj)}")

    def check_import(self, name: str, fromlist, level: int) -> None:
        if level:
            raise _refuse(f"from {'.' * level}{name} import ...")
        parts = name.split(".")
        if {"autograd", "functorch", "forward_ad"} & set(parts) or parts[:2] == ["torch", "func"]:
            raise _refuse(f"import {name}", autograd=True)
        if name not in self.members:
            raise _refuse(f"import {name}", "an answer imports only "
                          + ", ".join(sorted(self.language.modules)))
        for item in fromlist or ():
            if not _isinstance(item, str) or item == "*":
                raise _refuse(f"from {name} import *")
            if f"{name}.{item}" in self.members:
                continue
            module = importlib.import_module(name)
            self._module(module, item)

    def check_class(self, name: str, bases: tuple, namespace: dict) -> type:
        """The metaclass a class statement of the answer's may have: its bases are its own
        classes, `object`, Python's exceptions or `abc.ABC`; its special methods are on the
        list (`DUNDER_METHODS`)."""
        import abc

        for base in bases:
            if not _isinstance(base, type) or not (
                    _own_class(base) or base is object or base is abc.ABC or
                    _issubclass(base, BaseException) and base.__module__ == "builtins"):
                raise _refuse(f"class {name}({getattr(base, '__name__', '...')}), a class built "
                              "on a library's")
        for key in namespace:
            if _dunder(key) and key not in lang.DUNDER_METHODS and key not in _CLASS_KEYS:
                raise _refuse(f"def {key} in class {name}")
        metas = [_type(b) for b in bases] or [type]
        meta = next((m for m in metas if all(_issubclass(m, o) for o in metas)), None)
        if meta not in (type, abc.ABCMeta):
            raise _refuse(f"class {name}: its bases' metaclasses")
        return meta


#: What Python itself puts in a class's namespace.
_CLASS_KEYS = frozenset({"__module__", "__qualname__", "__doc__", "__classcell__",
                         "__annotations__", "__static_attributes__", "__firstlineno__",
                         "__orig_bases__", "__classdictcell__", "__type_params__"})

_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul,
            "/=": operator.itruediv, "//=": operator.ifloordiv, "%=": operator.imod,
            "**=": operator.ipow, "@=": operator.imatmul, "<<=": operator.ilshift,
            ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior,
            "^=": operator.ixor}


class _Writer:
    """What `_write_(obj)` gives: `obj` to assign to, each name asked of the policy first."""

    __slots__ = ("_obj", "_policy")

    def __init__(self, obj: object, policy: Policy) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_policy", policy)

    def __setattr__(self, name: str, value: object) -> None:
        obj = object.__getattribute__(self, "_obj")
        object.__getattribute__(self, "_policy").check_write(obj, name)
        _setattr(obj, name, value)

    def __delattr__(self, name: str) -> None:
        obj = object.__getattribute__(self, "_obj")
        object.__getattribute__(self, "_policy").check_write(obj, name)
        _delattr(obj, name)

    def __setitem__(self, key: object, value: object) -> None:
        object.__getattribute__(self, "_obj")[key] = value

    def __delitem__(self, key: object) -> None:
        del object.__getattribute__(self, "_obj")[key]


class _Formatter(string.Formatter):
    """`str.format` whose fields (`{0.name}`, `{0[key]}`) are read through the policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def get_field(self, field_name, args, kwargs):
        first, rest = string._string.formatter_field_name_split(field_name)  # noqa: SLF001
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            if is_attr:
                self.policy.check_read(obj, key)
                obj = _getattr(obj, key)
            else:
                self.policy.check_item(obj)
                obj = obj[key]
        return obj, first


#: Each lesson's policy, made once a process (a warm parent makes the engine's own before it
#: forks: `dir(torch)` is read once, not once a student).
_POLICIES: dict[str, Policy] = {}


def policy_for(language: lang.Language = lang.DEFAULT) -> Policy:
    import json

    key = json.dumps(language.table, sort_keys=True)
    if key not in _POLICIES:
        _POLICIES[key] = Policy(language)
    return _POLICIES[key]


def globals_for(language: lang.Language = lang.DEFAULT) -> dict:
    """What code compiled by `compiler.compile_answer` needs in its globals: the guards and the
    builtins of the answer language. One dict a run: the answers' names are added to it."""
    policy = policy_for(language)
    formatter = _Formatter(policy)

    def read(obj, name, default=_MISSING):
        policy.check_read(obj, name)
        if _isinstance(obj, str) or obj is str:
            if name == "format":
                return (lambda *a, **k: formatter.vformat(obj, a, k)) if obj is not str else \
                    (lambda s, *a, **k: formatter.vformat(s, a, k))
            if name == "format_map":
                return (lambda m: formatter.vformat(obj, (), m)) if obj is not str else \
                    (lambda s, m: formatter.vformat(s, (), m))
        if default is _MISSING:
            return _getattr(obj, name)
        return _getattr(obj, name, default)

    def has(obj, name):
        tried = len(AUTOGRAD_TRIED)
        try:
            policy.check_read(obj, name)
        except NotAllowed:
            del AUTOGRAD_TRIED[tried:]  # asking is not using
            return False
        return hasattr(obj, name)

    def item(obj, key):
        policy.check_item(obj)
        return obj[key]

    def write(obj):
        if _isinstance(obj, (list, dict, bytearray, set)) or policy.numpy(_type(obj)):
            return obj
        if not (own(obj) or _isinstance(obj, _Tensor)):
            policy.check_write(obj, None)  # refuses: a module, a function, a tuple...
        return _Writer(obj, policy)

    def setattr_(obj, name, value):
        _setattr(write(obj), name, value)

    def inplace(op, x, y):
        return _INPLACE[op](x, y)

    def aug_attr(obj, name, op, value):
        _setattr(write(obj), name, inplace(op, read(obj, name), value))

    def aug_item(obj, key, op, value):
        write(obj)[key] = inplace(op, item(obj, key), value)


    def metaclass(name, bases, namespace, **kwargs):
        meta = policy.check_class(name, bases, namespace)
        cls = meta(name, bases, namespace, **kwargs)
        OWN.add(cls)
        return cls

    def type_(obj, *more):
        if more:
            raise _refuse("type(name, bases, namespace)", "write a class statement")
        if _isinstance(obj, type):  # a metaclass makes classes past the class statement's checks
            raise _refuse("type() of a class", "ask isinstance(x, SomeClass)")
        return _type(obj)

    def refused(name: str, instead: str):
        def builtin(*args, **kwargs):
            raise _refuse(f"{name}()", instead)

        builtin.__name__ = name
        return builtin

    safe = {name: _getattr(builtins, name) for name in language.builtins
            if hasattr(builtins, name) and name not in lang.NEVER}
    safe.update({name: value for name, value in vars(builtins).items()
                 if _isinstance(value, type) and _issubclass(value, BaseException)})
    safe.update({name: refused(name, instead) for name, instead in lang.REFUSED_BUILTINS.items()})
    for name in ("id", "hash", "chr", "ord", "hex", "bin", "oct", "frozenset", "complex",
                 "bytes", "bytearray", "dir", "format", "print", "ascii"):
        safe[name] = _getattr(builtins, name)
    safe.update({"getattr": read, "hasattr": has, "setattr": setattr_, "type": type_,
                 "__import__": builtins.__import__, "__build_class__": builtins.__build_class__,
                 "breakpoint": lambda *a, **k: None, "None": None, "True": True, "False": False})
    return {
        "__builtins__": safe, "__name__": "__main__", "__metaclass__": metaclass,
        "_getattr_": read, "_getitem_": item, "_getiter_": _iter, "_write_": write,
        "_apply_": lambda f, *a, **k: f(*a, **k), "_inplacevar_": inplace,
        "_aug_attr_": aug_attr, "_aug_item_": aug_item, "_check_import_": policy.check_import,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    }
