"""The answer language (autograder/language.py; read by autograder/answer/rules.py before anything runs,
enforced by type at run time by autograder/untrusted/guards.py): what an answer may reach is an
allowlist per kind of object; everything else is refused with a message that names it.

Each disguise here scored 9.3 to 10/10 under the denylist the answer language replaced: in
process, each is refused, before it runs or where it runs, in words that name it; graded through
the real `check`, a stub or an autograd answer in that disguise earns 0 and the rest of the
notebook keeps its points. The other half (nothing left to steal while student code runs) lets
code through the rules and the guards on purpose (`rules_let_through`) and shows the graded
process refusing it all the same.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from autograder import language
from autograder.answer import compiler, program, reading, rules
from autograder.lesson.model import LessonError, load
from autograder.selfcheck import run_self_check
from autograder.untrusted import guards
from tests.conftest import (
    BACKWARD,
    CORRECT,
    REPO,
    SOURCE,
    check_report,
    target_mistakes,
    target_points,
)

FULL = {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 3.0, "module_backward": 3.0}

#: (a disguise, its kind, a part of what the finding names). Each was a way to autograd, to
#: the grader's job, or to code no reader sees, in the round before this one.
DISGUISES = [
    ("import pydoc\ngrad = pydoc.locate('torch.autograd.grad')\n", rules.HIDDEN, "import pydoc"),
    ("import timeit\ntimeit.timeit('inp.g = 1', globals={'inp': inp}, number=1)\n",
     rules.HIDDEN, "import timeit"),
    ("from operator import attrgetter\nb = attrgetter('backward')\n", rules.HIDDEN,
     "import operator"),
    ("import torch\nengine = torch._C._ImperativeEngine()\n", rules.HIDDEN, "torch._C"),
    ("from autograder.untrusted.calls import _ENGINE\n", rules.HIDDEN,
     "an import of the grader's own code"),
    ("import autograder\n", rules.HIDDEN, "an import of the grader's own code"),
    ("import torch\ng = torch.ops.aten.mse_loss_backward\n", rules.HIDDEN, "torch.ops"),
    ("import torch\ng = torch.ops.aten.threshold_backward\n", rules.HIDDEN, "torch.ops"),
    ("import torch\ng = torch.ops.aten.nll_loss_backward\n", rules.HIDDEN, "torch.ops"),
    ("import torch\ng = torch._softmax_backward_data\n", rules.HIDDEN,
     "torch._softmax_backward_data"),
    ("import torch\nf = torch.func.jvp\n", rules.AUTOGRAD, "torch.func"),
    ("from torch.func import jvp\n", rules.AUTOGRAD, "import torch.func"),
    ("import torch.autograd.forward_ad as fwAD\n", rules.AUTOGRAD, "torch.autograd"),
    ("def mse_grad(inp, targ):\n    b = inp.backward\n    b()\n", rules.AUTOGRAD, ".backward"),
    ("import typing\nh = typing.get_type_hints(f)\n", rules.HIDDEN, "typing.get_type_hints"),
    ("import string\nf = string.Formatter().get_field('0.grad', [x], {})\n", rules.HIDDEN,
     "import string"),
    ("s = '{0.__globals__}'.format(f)\n", rules.HIDDEN, ".__globals__ of a function"),
    ("s = '{0.gi_frame}'.format(x for x in [0])\n", rules.HIDDEN, ".gi_frame of a generator"),
    ("import cProfile\ncProfile.run('1')\n", rules.HIDDEN, "import cProfile"),
    ("import trace\n", rules.HIDDEN, "import trace"),
    ("import doctest\n", rules.HIDDEN, "import doctest"),
    ("from unittest import mock\n", rules.HIDDEN, "import unittest"),
    ("import logging.config\n", rules.HIDDEN, "import logging.config"),
    ("import torch.utils.checkpoint\n", rules.HIDDEN, "import torch.utils.checkpoint"),
    ("import torch\nc = torch.utils.checkpoint\n", rules.HIDDEN, "torch.utils"),
    ("import sys\nsys.argv.append('x')\n", rules.HIDDEN, "import sys"),
    ("import os\nos.environ['X'] = '1'\n", rules.HIDDEN, "import os"),
    ("import os\ndata = os.read(0, 1 << 20)\n", rules.HIDDEN, "import os"),
    ("f = open('/proc/self/fd/3', 'wb')\n", rules.HIDDEN, "open()"),
    ("x = __builtins__\n", rules.HIDDEN, "__builtins__"),
    ("e = eval\ne('1')\n", rules.HIDDEN, "eval()"),
    ("if False:\n    exec = print\nexec('1')\n", rules.HIDDEN, "exec()"),
    ("g = getattr(x, 'gr' + 'ad')\n", rules.AUTOGRAD, ".grad"),
    ("g = getattr(x, 'back' + 'ward')\n", rules.AUTOGRAD, ".backward"),
    ("c = type('X', (), {})\n", rules.HIDDEN, "type(name, bases, namespace)"),
    ("c = type(type(x))('X', (), {})\n", rules.HIDDEN, "type() of a class"),
    ("c = x.__class__.__class__('X', (), {})\n", rules.HIDDEN, ".__class__ of the class Tensor"),
    ("class K:\n    pass\nT = K.__class__('T', (torch.Tensor,), {})\n", rules.HIDDEN,
     ".__class__ of the class K"),
    ("v = vars(x)\n", rules.HIDDEN, "vars()"),
    ("k = x.__class__.__subclasses__\n", rules.HIDDEN, ".__subclasses__"),
    ("g = f.__globals__\n", rules.HIDDEN, ".__globals__"),
    ("s = object.__subclasses__()\n", rules.HIDDEN, ".__subclasses__"),
    ("class A:\n    def __getattr__(self, name):\n        return 1\n", rules.HIDDEN,
     "def __getattr__"),
    ("class A:\n    def __del__(self):\n        pass\n", rules.HIDDEN, "def __del__"),
    ("import torch\nclass L(torch.Tensor):\n    pass\n", rules.HIDDEN, "a class built on"),
    ("class A(metaclass=M):\n    pass\n", rules.HIDDEN, "metaclass"),
    ("import torch\ndef f(m):\n    return m.ops\nf(torch)\n", rules.HIDDEN, "torch.ops"),
    ("class K:\n    gi_frame = 1\n    f_globals = 2\nk = getattr((x for x in [0]), 'gi_' + 'frame')\n",
     rules.HIDDEN, ".gi_frame of a generator"),
    ("class K:\n    ops = 1\nk = getattr(torch, 'op' + 's')\n", rules.HIDDEN, "torch.ops"),
    ("import torch\nclass A:\n    pass\na = A()\na.ops = 1\nx = torch.ops\n", rules.HIDDEN,
     "torch.ops"),
    ("import torch\ntorch.allclose = lambda *a: True\n", rules.HIDDEN,
     "a change to the module torch"),
    ("import torch\ntorch.Tensor.__eq__ = lambda *a: True\n", rules.HIDDEN,
     "a change to .__eq__ of the class Tensor"),
    ("import torch\ny = torch.ones(2).storage()\n", rules.HIDDEN, ".storage of a tensor"),
    ("import torch\ny = super(torch.Tensor, torch.ones(2)).untyped_storage()\n", rules.HIDDEN,
     "super() of a tensor"),
    ("import torch\ny = getattr(super(torch.Tensor, torch.ones(2)), 'requires_' + 'grad_')\n",
     rules.HIDDEN, "super() of a tensor"),
    ("import torch\nwith torch.enable_grad():\n    pass\n", rules.AUTOGRAD, "torch.enable_grad"),
    ("x = get_ipython()\n", rules.HIDDEN, "get_ipython"),
    ("from torch import *\n", rules.HIDDEN, "from torch import *"),
    ("from . import x\n", rules.HIDDEN, "from . import"),
    ("%time x = 1\n", rules.HIDDEN, "a magic (%time)"),
    ("!ls\n", rules.HIDDEN, "a shell escape (!ls)"),
    ("import torch\ndef f(x):\n    x.requires_grad_()\n", rules.AUTOGRAD, "requires_grad_()"),
    ("def f(x):\n    return x.grad\n", rules.HIDDEN, ".grad"),  # alone: the convention mixed up
    ("def f(x):\n    x.sum().backward()\n    return x.grad\n", rules.AUTOGRAD, ".grad"),
    ("import torch\nx = torch.zeros(2, requires_grad=True)\n", rules.AUTOGRAD, "requires_grad="),
    ("import torch\nx = torch.autograd.grad\n", rules.AUTOGRAD, "torch.autograd"),
]


#: What an answer's names stand for when it runs in these tests.
PRELUDE = "import torch\nx = torch.ones(2)\ninp = torch.ones(2)\ndef f():\n    pass\n"


def refused(source: str, lesson_language: language.Language = language.DEFAULT) -> list:
    """What the answer language says of `source`: (words, autograd?) for each finding of the
    reading (before anything runs), else for what the guards refused where it ran; [] where
    nothing was refused."""
    found = rules.findings_in(source, lesson_language)
    if found:
        return [(f.what, f.kind == rules.AUTOGRAD) for f in found]
    code, refusals = compiler.compile_answer(PRELUDE + source)
    assert code is not None, refusals
    names = guards.globals_for(lesson_language)
    del guards.AUTOGRAD_TRIED[:]
    try:
        exec(code, names)
    except guards.NotAllowed as exc:
        return [(str(exc), exc.autograd)]
    return [("autograd, refused and caught", True)] if guards.AUTOGRAD_TRIED else []


@pytest.mark.parametrize("source,kind,what", DISGUISES, ids=[d[0] for d in DISGUISES])
def test_each_disguise_is_refused_in_words_that_name_it(source, kind, what):
    said = refused(source, BACKWARD.language)
    assert any(what in words and (kind != rules.AUTOGRAD or autograd) for words, autograd in said), said


#: What the old reading refused by name, which ordinary Python writes: each runs as written.
ORDINARY = [
    "c = type(x)\n", "k = x.__class__.__name__\n", "f = lambda: torch.nn\n",
    "try:\n    y = 1\nexcept Exception:\n    pass\n",
    "class Quiet:\n    def __enter__(self):\n        return self\n"
    "    def __exit__(self, *error):\n        return True\nwith Quiet():\n    pass\n",
    "def g():\n    yield 1\nn = list(g())\n", "def g():\n    global h\n    h = 1\ng()\n",
    "assert hasattr(x, 'shape') and not hasattr(x, 'gr' + 'ad')\n",
    "y = (x > 0).type(x.dtype)\n", "n = x.nelement() + x.swapaxes(0, 0).numel()\n",
    "y = x.multiply(2.)\n", "x.index_put_((torch.tensor([0]),), torch.tensor(1.))\n",
    "m = '{} vs {}'.format(x.shape, (2,))\n", "m = '{0.shape}'.format(x)\n",
    "from typing import Tuple\ndef h(a: torch.Tensor) -> Tuple[torch.Tensor, int]:\n"
    "    return a, 1\n",
    "from abc import ABC, abstractmethod\nclass M(ABC):\n    @abstractmethod\n"
    "    def forward(self): ...\nclass L(M):\n    def forward(self):\n        return 1\nL()\n",
    "try:\n    x.nothing_here\nexcept AttributeError:\n    pass\n",
    "class P:\n    def __init__(self):\n        super().__init__()\n        self._w = [x]\n"
    "    def parameters(self):\n        yield from self._w\n"
    "    def __repr__(self):\n        return f'{self.__class__.__name__}()'\nrepr(P())\n",
    "d = {}\nd['a'] = 1\nd['a'] += 1\nx.g = x\nx.g += 1\nx[0] -= 1\n",
    "import numpy as np\ny = np.array([1., 2.]).sum()\n",
]


@pytest.mark.parametrize("source", ORDINARY)
def test_ordinary_python_is_not_refused(source):
    assert refused(source, BACKWARD.language) == []


#: Right answers as people write them: prints (a print reads anything: grading leaves it out),
#: comments, tabs, docstrings, helpers, `.T`, `**kwargs` forwarding, classes with more methods.
PLAIN = {
    "mse_grad": "import torch\n\ndef mse_grad(inp: torch.Tensor, targ: torch.Tensor) -> None:\n"
                "    '''The gradient of the mean squared error; exec(...) in a docstring is text'''\n"
                "    print(inp.__dict__, type(inp), inp.__class__.__name__)  # while debugging\n"
                "    n = targ.shape[0]\n"
                "    breakpoint()\n"
                "    import pdb; pdb.set_trace()\n"
                "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / n\n",
    "relu_grad": "import torch\n\ndef mask(x):\n    return torch.where(x > 0, 1.0, 0.0).to(x.dtype)\n\n"
                 "def relu_grad(inp, out):\n\tinp.g = mask(inp) * out.g  # tabs\n"
                 "\tprint(f'{inp.g.shape=}')\n",
    "lin_grad": "import torch\n\ndef lin_grad(inp, out, w, b):\n"
                "    inp.g = torch.einsum('nk,ik->ni', out.g, w)\n    w.g = inp.T @ out.g\n"
                "    b.g = out.g.sum(dim=0)\n",
    "module_backward": "class Module():\n    def __call__(self, *args, **kwargs):\n"
                       "        self.args = args\n        self.out = self.forward(*args, **kwargs)\n"
                       "        return self.out\n\n    def forward(self, *args):\n"
                       "        raise NotImplementedError\n\n    def bwd(self, out, *args):\n"
                       "        raise NotImplementedError\n\n    def backward(self):\n"
                       "        print(self.__dict__)\n        self.bwd(self.out, *self.args)\n\n"
                       "    def __repr__(self):\n        return f'{len(self.args)} inputs'\n",
}


@pytest.mark.parametrize("target", sorted(PLAIN))
def test_right_answers_as_people_write_them_have_no_finding(target):
    assert rules.findings_in(PLAIN[target], BACKWARD.language) == []


def test_right_answers_as_people_write_them_keep_full_marks(make_notebook):
    code_, report = check_report(make_notebook(PLAIN))
    assert code_ == 0 and target_points(report) == FULL, report


def test_the_classifiers_right_answers_in_other_styles_have_no_finding():
    classifier = load(REPO / "assignments" / "classifier")
    nll = ("import torch.nn.functional as F\n\ndef nll_grad(inp, targ):\n"
           "    inp.g = -F.one_hot(targ, inp.shape[-1]).to(inp.dtype) / targ.shape[0]\n")
    log_softmax = ("import torch\n\ndef log_softmax_grad(inp, out):\n"
                   "    s = inp.softmax(-1)\n    inp.g = out.g - s * out.g.sum(-1, keepdim=True)\n")
    assert rules.findings_in(nll, classifier.language) == []
    assert rules.findings_in(log_softmax, classifier.language) == []


#: mse_grad in each disguise, as it would compute the right gradient if it ran: each earns 0.
CHEATS = {
    "pydoc.locate": "import pydoc, torch\ndef mse_grad(inp, targ):\n"
                    "    x = inp.detach().clone()\n    x.requires_grad_()\n"
                    "    grad = pydoc.locate('torch.autograd.grad')\n"
                    "    inp.g, = grad((x.squeeze(-1) - targ).pow(2).mean(), x)\n",
    "aten backward kernel": "import torch\ndef mse_grad(inp, targ):\n"
                            "    inp.g = torch.ops.aten.mse_loss_backward(\n"
                            "        torch.tensor(1., dtype=inp.dtype), inp.squeeze(-1), targ, 1)"
                            ".unsqueeze(-1)\n",
    "a fresh engine": "import torch\ndef mse_grad(inp, targ):\n"
                      "    e = torch._C._ImperativeEngine()\n    inp.g = e\n",
    "a bound backward": "import torch\ndef mse_grad(inp, targ):\n"
                        "    x = inp.detach().clone()\n    x.requires_grad_()\n"
                        "    b = (x.squeeze(-1) - targ).pow(2).mean().backward\n    b()\n"
                        "    inp.g = x.grad\n",
    "forward-mode AD": "import torch\ndef mse_grad(inp, targ):\n"
                       "    f = lambda x: (x.squeeze(-1) - targ).pow(2).mean()\n"
                       "    inp.g = torch.stack([torch.func.jvp(f, (inp,), (e,))[1] for e in\n"
                       "        torch.eye(inp.numel(), dtype=inp.dtype).view(-1, *inp.shape)])"
                       ".view(inp.shape)\n",
    "the grader's own engine": "from autograder.untrusted import calls\n"
                               "def mse_grad(inp, targ):\n    inp.g = calls._ENGINE\n",
}


@pytest.mark.parametrize("how", sorted(CHEATS))
def test_a_disguised_answer_earns_nothing_through_check(make_notebook, how):
    code_, report = check_report(make_notebook({"mse_grad": CHEATS[how]}))
    assert code_ == 1
    assert target_points(report) == {**FULL, "mse_grad": 0.0}
    assert target_mistakes(report, "mse_grad") & {"mse_grad.not_allowed", "mse_grad.uses_autograd"}


# --- what the graded process holds while student code runs (the rules let through) -------------

#: Each, let through the rules, raises at its end to say what it found; the notes show it.
AT_CELL_TIME = {
    "standard input": ("import os\ndata = os.read(0, 1 << 20)\n"
                       "raise RuntimeError(f'stdin gave {len(data)} bytes')\n", "stdin gave 0 bytes"),
    "autograd": ("import torch\nx = torch.ones(2, requires_grad=True)\n(x * x).sum().backward()\n",
                 "autograd is not allowed here"),
    "autograd.grad": ("import torch\nx = torch.ones(2, requires_grad=True)\n"
                      "torch.autograd.grad((x * x).sum(), x)\n", "autograd is not allowed here"),
    "a fresh engine": ("import torch\ne = torch._C._ImperativeEngine()\n", "_ImperativeEngine"),
    "a backward kernel": ("import torch\nx = torch.ones(3)\n"
                          "torch.ops.aten.threshold_backward(x, x, 0.0)\n",
                          "backward kernels are not allowed here"),
    "forward-mode AD": ("import torch\nimport torch.autograd.forward_ad as fwAD\n"
                        "with fwAD.dual_level():\n"
                        "    d = fwAD.make_dual(torch.ones(2), torch.ones(2))\n"
                        "    t = fwAD.unpack_dual(d * d).tangent\n"
                        "raise RuntimeError(f'tangent: {t}')\n", "tangent: None"),
    "the grader's package": ("import autograder.untrusted.calls\n", "cannot be imported"),
}


@pytest.mark.parametrize("what", sorted(AT_CELL_TIME))
def test_nothing_worth_stealing_is_left_while_cells_run(make_notebook, rules_let_through, what):
    cell, said = AT_CELL_TIME[what]
    code_, report = check_report(make_notebook({"relu_grad": CORRECT["relu_grad"] + cell}))
    notes = "\n".join(report["notes"])
    assert said in notes, notes
    assert target_points(report) == FULL  # the cell ran (and failed) after defining relu_grad


def test_autograd_is_refused_in_a_target_whose_code_the_rules_let_through(make_notebook,
                                                                          rules_let_through):
    code_, report = check_report(make_notebook({"mse_grad": CHEATS["a bound backward"]}))
    assert target_points(report) == {**FULL, "mse_grad": 0.0}
    assert "mse_grad.uses_autograd" in target_mistakes(report, "mse_grad")


# --- the same words everywhere ---------------------------------------------------------------

def test_the_self_check_names_what_is_refused_as_check_does(tmp_path, make_notebook):
    answer = "import torch\ndef mse_grad(inp, targ):\n    inp.g = getattr(inp, '__dict__')\n"
    (tmp_path / "answer_module.py").write_text(answer)
    import importlib.util

    spec = importlib.util.spec_from_file_location("answer_module", tmp_path / "answer_module.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    mine = run_self_check("mse_grad", module.mse_grad, device="cpu")
    said = next(c for c in mine.checks if "mse_grad.not_allowed" in c.mistakes)
    _, report = check_report(make_notebook({"mse_grad": answer}))
    graded = next(c for c in report["checks"] if c["id"] == said.id)
    assert said.message == graded["message"]
    assert said.message.startswith("mse_grad: .__dict__ of a tensor is not in the answer language")
    assert "(the mse_grad cell, line 3)" in said.message


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_what_runs_is_what_was_read_whatever_ends_the_lines(ending):
    # Python ends a line at a lone \r too: the prints left out must be the ones read, and the
    # text that runs must parse to exactly the statements the rules read (a crash before).
    answer = ('def mse_grad(inp, targ):\n    s = """\nprint(1)\n"""\n    print(s)\n'
              "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
    nb = {"cells": [{"cell_type": "code", "source": answer.replace("\n", ending),
                     "metadata": {"nbgrader": {"grade_id": "mse_grad", "solution": True}}}]}
    source = __import__("json").loads(Path(SOURCE).read_text())
    graded = program.build(nb, source, {"mse_grad": "mse_grad"})
    assert graded.findings["mse_grad"] == [] and "mse_grad" not in graded.not_run
    ran = next(c["source"] for c in graded.cells if c["label"] == "the mse_grad cell")
    assert "print(s)" not in ran and "print(1)" in ran  # the print in the string is text
    assert ran.splitlines()[5].strip().startswith("inp.g = 2. *")


# --- one list, shown in docs/students.md, extended by a lesson ---------------------------------

def test_the_students_page_shows_the_list_from_its_one_place():
    page = (REPO / "docs" / "students.md").read_text()
    assert language.table() in page, "run `python -m autograder.language` and paste the table"


def test_a_lesson_extends_the_list_and_can_never_allow_a_way_out(tmp_path):
    assert BACKWARD.language.table == {}  # its Module protocol is the answer's own: no table
    extended = language.DEFAULT.extended({"modules": ["scipy.special"], "attributes": ["expit"]})
    assert rules.findings_in("import scipy.special\ny = scipy.special.expit(1.)\n", extended) == []
    # At run time: a lesson's module offers its public members, and a listed module the
    # names the table adds (never a refused one: torch.load stays refused).
    assert refused("import math\ny = math.dist([0], [1])\n", extended) == []
    more = language.DEFAULT.extended({"attributes": ["cdist", "load"]})
    assert "torch.cdist" in refused("y = torch.cdist(x[None, None], x[None, None])\n")[0][0]
    assert refused("y = torch.cdist(x[None, None], x[None, None])\n", more) == []
    assert "torch.load" in refused("y = torch.load('f')\n", more)[0][0]
    for refusal in ({"attributes": ["__class__"]}, {"builtins": ["exec"]},
                    {"attributes": ["_C"]}, {"nothing": []}):
        with pytest.raises(ValueError):
            language.DEFAULT.extended(refusal)
    folder = tmp_path / "lesson"
    folder.mkdir()
    text = (REPO / "assignments" / "backward" / "lesson.toml").read_text()
    (folder / "lesson.toml").write_text(text + '\n[language]\nattributes = ["__globals__"]\n')
    with pytest.raises(LessonError, match="__globals__"):
        load(folder)


# --- linear on any input: the trusted side reads a student's cell once ------------------------

def test_code_nested_deeper_than_a_reader_follows_is_refused_in_one_line():
    answer = "def mse_grad(inp, targ):\n    inp.g = " + "-" * 1000 + "inp\n"  # Python parses it
    found = rules.findings_in(answer)
    assert [f.what for f in found] == ["code nested deeper than the grader reads"]


def test_many_magic_lines_are_read_in_one_pass():
    answer = "%time x = 1\n" * 5000 + "def mse_grad(inp, targ):\n    pass\n"  # 60 KB
    start = time.monotonic()
    cell = reading.read_cell(0, answer, magics=False, limit=rules.MAX_ANSWER_BYTES)
    found = rules.scan_cell(cell)
    assert time.monotonic() - start < 20  # quadratic before: about 80 s for 4.5 KB
    assert len([f for f in found if f.what == "a magic (%time)"]) == 5000


def test_a_long_chain_of_names_is_followed_in_linear_time():
    answer = "a0 = 1\n" + "".join(f"a{i} = a{i - 1}\n" for i in range(1, 4000)) + \
             "def mse_grad(inp, targ):\n    inp.g = a3999\n"  # 56 KB
    nb = {"cells": [{"cell_type": "code", "source": answer,
                     "metadata": {"nbgrader": {"grade_id": "mse_grad", "solution": True}}}]}
    source = __import__("json").loads(Path(SOURCE).read_text())
    start = time.monotonic()
    graded = program.build(nb, source, {"mse_grad": "mse_grad"})
    assert time.monotonic() - start < 30  # quadratic before: minutes
    assert graded.findings["mse_grad"] == []
