"""The answer language enforced by type at run time (autograder/untrusted/guards.py, compiled by
autograder/answer/compiler.py): a name an answer defines opens only its own objects, ordinary
Python keeps its points, and the graded process holds nothing worth stealing.

In process: a property test walks chains of attributes, items and calls from everything an
answer can name, after the answer has defined attributes of any name, and never reaches a frame,
code, builtins, a module's globals, `exec`/`eval`/`__import__` or an unlisted module. Through the
real `autograder check`: the fourth attack round earns 0, and right answers written as people
write them keep every point (the same files run as an ordinary user: tests/sandbox/test_ordinary_user.py).
"""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder import language
from autograder.answer import compiler
from autograder.untrusted import guards
from tests.conftest import (
    REPO,
    check_report,
    target_mistakes,
    target_points,
)
from tests.support.cheats import FRAMES, ROUND_4, ROUND_4_COMPUTED

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}

# --- a property: nothing outside the policy, whatever names the answer defines ---------------

#: Names an attack reaches for, and a few an answer might define for itself.
NAMES = ["gi_frame", "gi_code", "f_back", "f_globals", "f_builtins", "f_locals", "tb_frame",
         "cr_frame", "ag_frame", "__globals__", "__builtins__", "__code__", "__closure__",
         "__dict__", "__class__", "__mro__", "__bases__", "__base__", "__subclasses__",
         "__self__", "__func__", "__wrapped__", "__init__", "__call__", "__getattribute__",
         "__reduce_ex__", "__traceback__", "__loader__", "__spec__", "__import__", "mro",
         "ops", "_C", "autograd", "library", "utils", "load", "modules", "exec", "eval",
         "format", "func", "variable", "Variable", "_execution_engine", "_ImperativeEngine",
         "backward", "grad", "grad_fn", "storage", "data", "numpy", "ctypes", "real", "g", "w",
         "out", "args", "forward", "values", "items", "keys", "get", "pop", "copy",
         "with_traceback", "args", "setter", "fget", "cell_contents", "im_func", "cpu", "nn",
         "functional", "linalg", "cuda", "random", "testing", "lib", "ctypeslib", "sys", "os"]

#: What an answer can name: (code, whether it defines the name `root`).
ROOTS = ["x", "torch", "(v for v in [0])", "f", "K", "obj", "(lambda: 0)", "[x]", "{'a': x}",
         "'text'", "1", "math", "np", "F", "type", "super", "object", "print", "Exception('e')",
         "torch.nn", "torch.Tensor", "x.shape", "x.dtype", "x.device", "getattr", "hasattr",
         "iter([x])", "range(3)", "K.method", "obj.method", "property", "x.sum", "len", "str",
         "int", "dict", "F.relu", "torch.zeros", "np.zeros(2)", "math.sqrt", "abs"]

PRELUDE = ("import torch, math\nimport numpy as np\nimport torch.nn.functional as F\n"
           "x = torch.ones(2)\ndef f():\n    return 1\n"
           "class K:\n    def method(self):\n        return self\nobj = K()\n")

step = st.one_of(
    st.tuples(st.just("attr"), st.sampled_from(NAMES)),
    st.tuples(st.just("getattr"), st.sampled_from(NAMES)),
    st.tuples(st.just("item"), st.sampled_from(["0", "'a'", "-1", "'exec'", "'__builtins__'"])),
    st.tuples(st.just("call"), st.sampled_from(["()", "(x)", "(0)", "('exec')"])),
)


def _bad(value: object, names: dict) -> str | None:
    """What is outside the policy about `value`, if anything."""
    if isinstance(value, types.FrameType | types.CodeType | types.TracebackType | types.CellType):
        return f"a {type(value).__name__}"
    if isinstance(value, types.ModuleType) and value.__name__ not in language.MEMBERS:
        return f"the module {value.__name__}"
    real = {id(getattr(builtins, n)): n for n in ("exec", "eval", "compile", "__import__",
                                                  "open", "globals", "locals", "vars",
                                                  "getattr", "setattr", "__build_class__")}
    if id(value) in real:
        return f"the real {real[id(value)]}"
    if value is names or value is names.get("__builtins__") or value is vars(builtins):
        return "the answer's globals or builtins"
    if isinstance(value, dict) and any(value is vars(m) for m in list(sys.modules.values())
                                       if hasattr(m, "__dict__")):
        return "a module's globals"
    if isinstance(value, type) and issubclass(value, type):
        return "a metaclass"
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(defined=st.lists(st.sampled_from(NAMES), max_size=6), root=st.sampled_from(ROOTS),
       chain=st.lists(step, min_size=1, max_size=5))
def test_no_chain_from_what_an_answer_names_reaches_outside_the_policy(defined, root, chain):
    lines = [PRELUDE, "class Decoy:\n    pass\ndecoy = Decoy()\n"]
    lines += [f"setattr(decoy, {name!r}, 1)\n" for name in defined]  # the write guard decides
    lines += [f"setattr(Decoy, {name!r}, 1)\n" for name in defined]
    lines.append(f"v0 = {root}\n")
    for i, (kind, arg) in enumerate(chain, 1):
        last = f"v{i - 1}"
        lines.append(f"v{i} = " + {"attr": f"{last}.{arg}", "getattr": f"getattr({last}, {arg!r})",
                                   "item": f"{last}[{arg}]", "call": f"{last}{arg}"}[kind] + "\n")
    source = "".join(lines)
    code, refusals = compiler.compile_answer(source)
    if code is None:  # refused before it runs: the reading names it (tests/answer/test_rules.py)
        assert refusals
        return
    names = guards.globals_for(language.DEFAULT)
    try:
        exec(code, names)
    except Exception:  # noqa: BLE001 - refused, or Python's own error: nothing was reached
        pass
    for i in range(len(chain) + 1):
        if f"v{i}" in names:
            assert _bad(names[f"v{i}"], names) is None, (source, i, names[f"v{i}"])


def test_the_attack_of_round_4_is_refused_where_it_runs():
    code, refusals = compiler.compile_answer(PRELUDE + ROUND_4_COMPUTED["mse_grad"]
                                             + "mse_grad(torch.ones(3, 1), torch.ones(3))\n")
    assert code is not None and not refusals  # the names are computed: no reading sees them
    with pytest.raises(guards.NotAllowed, match="gi_frame of a generator"):
        exec(code, guards.globals_for(language.DEFAULT))


def test_a_name_an_answer_defines_opens_only_its_own_objects():
    source = ("class Mine:\n    ops = 1\n    gi_frame = 2\nm = Mine()\nsetattr(m, 'f_globals', 3)\n"
              "a = (m.ops, getattr(m, 'gi_frame'), getattr(m, 'f_globals'))\n"
              "b = getattr(torch, 'op' + 's')\n")
    code, refusals = compiler.compile_answer(PRELUDE + source)
    assert code is not None, refusals
    names = guards.globals_for(language.DEFAULT)
    with pytest.raises(guards.NotAllowed, match="torch.ops"):
        exec(code, names)
    assert names["a"] == (1, 2, 3)


# --- the graded process: nothing to steal, no engine, by construction ------------------------

def test_every_road_to_a_gradient_is_closed_with_the_rules_and_guards_bypassed(tmp_path):
    """The lock on its own: plain Python (no rules, no guards) in a process whose autograd was
    refused for good, trying every way we know to a gradient."""
    script = tmp_path / "roads.py"
    script.write_text('''
import gc, json, sys, torch
from autograder.untrusted import calls
calls.refuse_autograd_for_good()
x0 = torch.tensor([1., 2., 3.], dtype=torch.float64)
ROADS = {
 "backward": "x = x0.clone().requires_grad_(); (x * x).sum().backward(); r = x.grad",
 "autograd.grad": "x = x0.clone().requires_grad_(); r = torch.autograd.grad((x * x).sum(), x)",
 "enable_grad": "x = x0.clone().requires_grad_()\\nwith torch.enable_grad():\\n    y = (x * x).sum()\\nr = torch.autograd.grad(y, x)",
 "set_grad_enabled": "torch.set_grad_enabled(True); x = x0.clone().requires_grad_(); r = (x * x).grad_fn(torch.ones(3, dtype=torch.float64))",
 "the C switch": "torch._C._set_grad_enabled(True); x = x0.clone().requires_grad_(); r = (x * x).grad_fn(torch.ones(3, dtype=torch.float64))",
 "inference_mode(False)": "x = x0.clone().requires_grad_()\\nwith torch.inference_mode(False):\\n    y = x * x\\nr = y.grad_fn(torch.ones(3, dtype=torch.float64))",
 "Variable._execution_engine": "from torch.autograd.variable import Variable; x = x0.clone().requires_grad_(); r = Variable._execution_engine.run_backward(((x * x).sum(),), (torch.tensor(1., dtype=torch.float64),), False, False, (x,), False, False)",
 "the engine's class by every name": "import torch.autograd.variable; r = [m.ImperativeEngine() for m in [sys.modules['torch.autograd.variable']]] + [torch._C._ImperativeEngine()]",
 "an engine found by the collector": "r = [type(o)() for o in gc.get_objects() if type(o).__name__ == '_EngineBase']; r = r[0].run_backward if r else None",
 "torch.func.grad": "import torch.func as tf; r = tf.grad(lambda t: (t * t).sum())(x0)",
 "torch.func.vjp": "import torch.func as tf; r = tf.vjp(lambda t: t * t, x0)[1](torch.ones(3, dtype=torch.float64))",
 "jacrev": "import torch.func as tf; r = tf.jacrev(lambda t: (t * t).sum())(x0)",
 "jacfwd": "import torch.func as tf; r = tf.jacfwd(lambda t: (t * t).sum())(x0)",
 "forward-mode AD": "import torch.autograd.forward_ad as fw\\nwith fw.dual_level():\\n    d = fw.make_dual(x0, torch.ones(3, dtype=torch.float64)); r = fw.unpack_dual(d * d).tangent",
 "forward-mode AD switched on": "torch._C._set_fwd_grad_enabled(True)",
 "the saved-tensor hooks popped": "torch._C._autograd._pop_saved_tensors_default_hooks()",
 "autograd.functional": "r = torch.autograd.functional.jacobian(lambda t: (t * t).sum(), x0)",
 "a backward kernel": "r = torch.ops.aten.threshold_backward(torch.ones(3), x0.float(), 0.)",
 "mse_loss_backward": "r = torch.ops.aten.mse_loss_backward(torch.tensor(1., dtype=torch.float64), x0, x0 * 0, 1)",
}
out = {}
for name, code in ROADS.items():
    names = {"torch": torch, "gc": gc, "sys": sys, "x0": x0}
    try:
        exec(code, names)
        out[name] = repr(names.get("r"))
    except Exception as exc:
        out[name] = "refused: " + type(exc).__name__
print(json.dumps(out))
''')
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    roads = json.loads(done.stdout.strip().splitlines()[-1])
    gave = {name: said for name, said in roads.items()
            if not said.startswith("refused") and said not in ("None", "[]")}
    assert gave == {}, gave  # each road refused, or it gave nothing


# --- through the real `check` -----------------------------------------------------------------

@pytest.mark.sandbox
@pytest.mark.parametrize("answers", [ROUND_4, ROUND_4_COMPUTED, FRAMES],
                         ids=["round 4", "round 4, names computed", "the runner's frame"])
def test_the_attacks_of_round_4_earn_nothing_through_check(make_notebook, answers,
                                                           ample_deadlines):
    code_, report = check_report(make_notebook(answers))
    assert code_ == 1
    points = target_points(report)
    for target in answers:
        assert points[target] == 0.0, report
        assert target_mistakes(report, target) & {f"{target}.not_allowed",
                                                  f"{target}.uses_autograd"}, report
    assert "the runner frame is here" not in json.dumps(report)
    assert points["module_backward"] == FULL["module_backward"]  # the rest keeps its points


#: Right answers as people write them, from a real-code round (half from public repositories):
#: each construct lost its target's points when the language was checked by names.
ORDINARY = {
    "mse_grad": "from typing import Tuple\nimport torch\n\n"
                "def mse_grad(inp: torch.Tensor, targ: torch.Tensor) -> None:\n"
                "    assert inp.shape[0] == targ.shape[0], 'batch {} vs {}'.format(\n"
                "        inp.shape[0], targ.shape[0])\n"
                "    n = inp.nelement()\n"
                "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / n\n",
    "relu_grad": "def relu_grad(inp, out):\n    assert hasattr(out, 'g')\n"
                 "    inp.g = (inp > 0).type(inp.dtype) * out.g\n",
    "lin_grad": "def lin_grad(inp, out, w, b):\n"
                "    try:\n        upstream = out.g\n"
                "    except AttributeError:\n        raise RuntimeError('run the forward pass first')\n"
                "    inp.g = upstream @ w.swapaxes(0, 1)\n"
                "    w.g = inp.t().multiply(1.) @ upstream\n    b.g = upstream.sum(0)\n",
    "module_backward": "from abc import ABC, abstractmethod\n\n"
                       "class Module(ABC):\n    def __init__(self):\n        super().__init__()\n"
                       "        self._params = []\n\n"
                       "    def __call__(self, *args):\n        self.args = args\n"
                       "        self.out = self.forward(*args)\n        return self.out\n\n"
                       "    @abstractmethod\n    def forward(self, *args): ...\n\n"
                       "    def bwd(self, out, *args):\n        raise NotImplementedError\n\n"
                       "    def backward(self):\n        self.bwd(self.out, *self.args)\n\n"
                       "    def parameters(self):\n        for p in self._params:\n"
                       "            yield p\n\n"
                       "    def __repr__(self):\n        return f'{self.__class__.__name__}()'\n",
}


@pytest.mark.sandbox
def test_right_answers_in_ordinary_python_keep_full_marks_through_check(make_notebook,
                                                                        ample_deadlines):
    code_, report = check_report(make_notebook(ORDINARY))
    assert code_ == 0 and target_points(report) == FULL, report


@pytest.mark.sandbox
def test_a_right_nll_grad_that_indexes_with_a_cpu_index_keeps_gpu_ready(released_classifier,
                                                                         tmp_path):
    from autograder.course import samples
    from autograder.lesson.model import load

    answers = dict(samples.of(load(REPO / "assignments" / "classifier")).CORRECT)
    answers["nll_grad"] = ("import torch\n\ndef nll_grad(inp, targ):\n"
                           "    n = inp.shape[0]\n    dx = torch.zeros_like(inp)\n"
                           "    dx[torch.arange(n), targ] -= 1\n    inp.g = dx / n\n")
    path = samples.write(samples.fill(released_classifier, answers), tmp_path / "classifier.ipynb")
    code_, report = check_report(path)
    gpu = next(c for c in report["checks"] if c["id"] == "nll_grad/gpu-ready")
    assert gpu["passed"], gpu
    assert code_ == 0, report


#: Let through the rules and the guards, an answer cell looks for the run's token the ways a
#: student with the source would: every frame up from its own, every function's closure the
#: collector knows; and it writes to each descriptor it has open (the grader would count bytes on
#: its channel that are not frames). It raises what it found; the notes show it.
TOKEN_HUNT = (
    "import gc, os, sys\n"
    "def token_like(v):\n"
    "    return isinstance(v, (bytes, bytearray)) and len(v) == 16 and any(v)\n"
    "found = []\n"
    "frame = sys._getframe()\n"
    "while frame is not None:\n"
    "    found += [k for k, v in frame.f_locals.items() if token_like(v)]\n"
    "    frame = frame.f_back\n"
    "for o in gc.get_objects():\n"
    "    for cell in getattr(o, '__closure__', None) or ():\n"
    "        try:\n"
    "            if token_like(cell.cell_contents):\n"
    "                found.append(getattr(o, '__qualname__', '?'))\n"
    "        except ValueError:\n"
    "            pass\n"
    "for fd in sorted(int(n) for n in os.listdir('/proc/self/fd'))[3:]:\n"
    "    try:\n"
    "        os.write(fd, b'forged frame? ' * 8)  # the grader counts what is not a frame\n"
    "    except OSError:\n"
    "        pass\n"
    "raise RuntimeError(f'token-like: {found}')\n"
)


@pytest.mark.sandbox
def test_the_students_process_holds_neither_the_token_nor_the_channel(make_notebook,
                                                                      rules_let_through):
    from tests.conftest import CORRECT

    code_, report = check_report(make_notebook({"relu_grad": CORRECT["relu_grad"] + TOKEN_HUNT}))
    notes = "\n".join(report["notes"])
    assert "token-like: []" in notes, notes
    assert "were not the grader's" not in notes, notes  # no descriptor of its is the channel
    assert target_points(report) == FULL
