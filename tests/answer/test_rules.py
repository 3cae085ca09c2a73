"""The exercise's rule, read from code (autograder/answer/rules.py, autograder/answer/reading.py): in process, fast."""

from __future__ import annotations

import pytest

from autograder.answer import program, reading, rules
from autograder.course import samples
from tests.conftest import BACKWARD, CORRECT

#: What this reading refuses before anything runs (everything else the answer language refuses
#: is refused where the object is known, at run time: tests/answer/test_answer_language.py).
HIDDEN = [
    ("exec('x = 1')\n", "exec()"),
    ("eval('1')\n", "eval()"),
    ("m = __import__('os')\n", "__import__()"),
    ("import importlib\n", "import importlib"),
    ("import sys\nm = sys.modules\n", "import sys"),
    ("def f(x):\n    return x.f_back\n", ".f_back"),
    ("g = (x for x in [0])\nf = g.gi_frame\n", ".gi_frame"),
    ("import gc\n", "import gc"),
    ("import inspect\n", "import inspect"),
    ("import ctypes\n", "import ctypes"),
    ("import pickle\n", "import pickle"),
    ("import builtins\n", "import builtins"),
    ("x = __builtins__\n", "__builtins__"),
    ("_getattr_ = lambda obj, name: obj\n", "_getattr_"),
    ("import subprocess\n", "import subprocess"),
    ("from os import fork\n", "import os"),
    ("import torch._dynamo\n", "import torch._dynamo"),
    ("class L:\n    def __torch_function__(self, *a): pass\n", "def __torch_function__"),
    ("class L:\n    def __del__(self): pass\n", "def __del__"),
    ("import torch\nclass L(torch.Tensor): pass\n", "class L(torch.Tensor), a class built on a library's"),
    ("import threading\n", "import threading"),
    ("from torch import *\n", "from torch import *"),
    ("async def f():\n    pass\n", "async def"),
    ("%time x = 1\n", "a magic (%time)"),
    ("!pip install torch\n", "a shell escape (!pip)"),
]


@pytest.mark.parametrize("source,what", HIDDEN, ids=[w for _, w in HIDDEN])
def test_code_outside_the_answer_language_is_named(source, what):
    found = rules.findings_in(source)
    assert what in [f.what for f in found if f.kind == rules.HIDDEN], found


PLAIN = [
    CORRECT["mse_grad"], CORRECT["lin_grad"], CORRECT["module_backward"],
    "import torch\nfrom torch import Tensor\n\ndef relu_grad(inp: Tensor, out: Tensor) -> None:\n"
    "    \"\"\"exec(...) in a docstring is text\"\"\"\n    # getattr(torch, x) in a comment too\n"
    "    inp.g = torch.where(inp > 0, out.g, torch.zeros_like(out.g))\n"
    "    print(f'{inp.shape=}', type(inp).__name__, inp.__class__.__name__)\n",
    "import math, numpy as np\nimport torch\n\ndef lin_grad(inp, out, w, b):\n"
    "    assert isinstance(inp, torch.Tensor)\n"
    "    inp.g = torch.einsum('nk,ik->ni', out.g, w)\n"
    "    w.g = inp.t() @ out.g\n    b.g = out.g.sum(dim=0, dtype=torch.float64)\n"
    "    breakpoint()\n",
    "import torch\nclass Module:\n    def __init__(self):\n        self._inputs = ()\n"
    "    def __call__(self, *args):\n        self._inputs, self._result = args, self.forward(*args)\n"
    "        return self._result\n    def backward(self):\n"
    "        self.bwd(self._result, *self._inputs)\n\nclass Relu(Module):\n"
    "    def forward(self, x):\n        return x.clamp_min(0.)\n"
    "    def backward(self):\n        super().backward()\n",
    "def mse_grad(inp, targ):\n    n = len(targ)\n"
    "    inp.g = (2 / n) * (inp[:, 0] - targ)[:, None]\n    if n < 0:\n"
    "        raise ValueError('an empty batch')\n",
]


@pytest.mark.parametrize("source", PLAIN)
def test_plain_code_in_many_styles_has_no_finding(source):
    assert rules.findings_in(source, BACKWARD.language) == []


def judged(answers: dict[str, str], lesson: list[str] = ()) -> dict[str, list[rules.Finding]]:
    cells = {t: reading.read_cell(i, s, magics=False, name=f"the {t} cell")
             for i, (t, s) in enumerate(answers.items())}
    given = [reading.read_cell(100 + i, s, name=f"cell {100 + i} of the lesson")
             for i, s in enumerate(lesson)]
    return rules.judge(cells, given, {t: BACKWARD.entries()[t] for t in answers})


AUTOGRAD_HELPER = ("import torch\ndef helper(x):\n    x = x.detach().clone().requires_grad_()\n"
                   "    x.sum().backward()\n    return x.grad\n")


@pytest.mark.parametrize("name,answers,target,where", [
    ("a helper in another answer cell",
     {"mse_grad": "def mse_grad(inp, targ):\n    inp.g = helper(inp)\n",
      "relu_grad": CORRECT["relu_grad"] + AUTOGRAD_HELPER}, "mse_grad", "the relu_grad cell"),
    ("a redefinition in a later cell",
     {"mse_grad": CORRECT["mse_grad"],
      "lin_grad": CORRECT["lin_grad"] + AUTOGRAD_HELPER.replace("helper(x)", "mse_grad(x, t)")},
     "mse_grad", "the lin_grad cell"),
    ("a registry another cell fills",
     {"mse_grad": "REG = {}\ndef mse_grad(inp, targ):\n    inp.g = REG['f'](inp)\n",
      "relu_grad": CORRECT["relu_grad"] + AUTOGRAD_HELPER + "REG['f'] = helper\n"},
     "mse_grad", "the relu_grad cell"),
    ("a method another cell puts on the class",
     {"module_backward": CORRECT["module_backward"],
      "lin_grad": CORRECT["lin_grad"] + "def _b(self):\n    self.out.backward()\n"
                  "Module.backward = _b\n"}, "module_backward", "the lin_grad cell"),
])
def test_autograd_in_another_cell_that_a_target_reaches_is_its(name, answers, target, where):
    found = judged(answers)
    mine = [f for f in found[target] if f.kind == rules.AUTOGRAD]
    assert mine and all(f.where == where for f in mine), found[target]
    for other, findings in found.items():  # the cell it is in costs nothing if that target's
        if other != target:                # own code does not reach it
            assert not findings, (other, findings)


def test_a_helper_that_the_cells_own_top_level_code_calls_is_read():
    answer = ("import torch\ndef precompute(x):\n    x.requires_grad_()\n    return x\n"
              "CACHE = precompute(torch.ones(3))\n" + CORRECT["mse_grad"])
    found = judged({"mse_grad": answer})["mse_grad"]
    assert [(f.kind, f.what, f.line) for f in found] == [(rules.AUTOGRAD, "requires_grad_()", 3)]


def test_the_lessons_own_autograd_counts_only_where_an_answer_reaches_it():
    lesson = ["import torch\n", "def check_with_autograd(x):\n    x.requires_grad_()\n    return x\n"]
    honest = judged({"mse_grad": CORRECT["mse_grad"]}, lesson)
    assert honest["mse_grad"] == []
    calls_it = judged({"mse_grad": "def mse_grad(inp, targ):\n    check_with_autograd(inp)\n"}, lesson)
    assert [f.where for f in calls_it["mse_grad"]] == ['the cell "def check_with_autograd(x):" of the lesson']


def test_the_graded_program_runs_the_answers_and_only_the_lesson_code_they_use(released):
    source = __import__("json").loads((__import__("pathlib").Path(__file__).parents[2]
                                       / "assignments/backward/backward.ipynb").read_text())
    answers = {**CORRECT, "relu_grad": "def relu_grad(inp, out):\n"
                                               "    inp.g = (relu(inp) > 0).to(inp.dtype) * out.g\n"}
    nb = samples.fill(released, answers, ["print('my experiment')"])
    graded = program.build(nb, source, BACKWARD.entries())
    text = "\n".join(c["source"] for c in graded.cells)
    assert "def relu(x):" in text  # the lesson's helper the answer uses
    assert "my experiment" not in text  # a cell of the student's own
    assert "load_digits()" not in text and "plt.plot" not in text and "epochs" not in text
    assert graded.findings == {t: [] for t in BACKWARD.names}
