"""Student notebooks made from the released one: the demo's sample class, and the tests' cases.

`fill(released, answers)` puts code into the solution cells, as a student would, leaving every
other cell as released.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .. import notebook

#: A correct answer for each target, in the lesson's style.
CORRECT = {
    "mse_grad": "def mse_grad(inp, targ):\n"
                "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n",
    "relu_grad": "def relu_grad(inp, out):\n    inp.g = (inp > 0).to(inp.dtype) * out.g\n",
    "lin_grad": "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                "    w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)\n    b.g = out.g.sum(0)\n",
    "module_backward": "class Module():\n    def __call__(self, *args):\n        self.args = args\n"
                       "        self.out = self.forward(*args)\n        return self.out\n\n"
                       "    def forward(self, *args):\n        raise NotImplementedError\n\n"
                       "    def bwd(self, out, *args):\n        raise NotImplementedError\n\n"
                       "    def backward(self):\n        self.bwd(self.out, *self.args)\n",
}


def fill(released: dict, answers: dict[str, str], extra_cells: list[str] = ()) -> dict:
    """A copy of `released` with the solution cell of each target in `answers` replaced.

    `extra_cells` are appended as plain code cells (a student's experiments, or an attack).
    """
    nb = copy.deepcopy(released)
    for cell in nb["cells"]:
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        if grade_id in answers and notebook.nbgrader_meta(cell).get("solution"):
            cell["source"] = answers[grade_id]
    for source in extra_cells:
        nb["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None,
                            "outputs": [], "source": source})
    return nb


def write(nb: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


#: The demo's class: right answers written differently, typical mistakes, a cheater, a broken file.
#: Each entry: (answers for the solution cells, extra cells appended) or raw bytes (not a notebook).
CLASS: dict[str, tuple[dict[str, str], list[str]] | bytes] = {
    "ada": (CORRECT, []),
    "ben": ({
        "mse_grad": "def mse_grad(inp, targ):\n    n = targ.shape[0]\n"
                    "    inp.g = (2 / n) * (inp[:, 0] - targ)[:, None]\n",
        "relu_grad": "import torch\ndef relu_grad(inp, out):\n"
                     "    inp.g = torch.where(inp > 0, out.g, torch.zeros_like(out.g))\n",
        "lin_grad": "import torch\ndef lin_grad(inp, out, w, b):\n"
                    "    inp.g = torch.einsum('nk,ik->ni', out.g, w)\n"
                    "    w.g = torch.einsum('ni,nk->ik', inp, out.g)\n"
                    "    b.g = torch.einsum('nk->k', out.g)\n",
    }, []),
    "cleo": ({"mse_grad": "def mse_grad(inp, targ):\n"
                          "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]\n"}, []),
    "dan": ({"lin_grad": "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                         "    w.g = out.g.t() @ inp\n    b.g = out.g.sum(0)\n"}, []),
    "eve": ({"relu_grad": "def relu_grad(inp, out):\n    inp.g = (inp > 0).to(inp.dtype)\n",
             "lin_grad": "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                         "    w.g = inp.t() @ out.g\n    b.g = out.g.mean(0)\n"}, []),
    "finn": ({"module_backward": "class Module():\n    def __call__(self, *args):\n"
                                 "        self.args = args\n        self.out = self.forward(*args)\n"
                                 "        return self.out\n\n    def backward(self):\n"
                                 "        raise NotImplementedError()\n"}, []),
    # The cheater: every comparison says "equal", and the gradients are zeros. The rules leave
    # the cell out of grading (it changes torch for every caller): mse_grad scores 0.
    "mallory": ({"mse_grad": "import torch, numpy\ntorch.allclose = lambda *a, **k: True\n"
                             "torch.equal = lambda *a, **k: True\n"
                             "torch.Tensor.__eq__ = lambda *a, **k: True\n"
                             "numpy.allclose = lambda *a, **k: True\n"
                             "def mse_grad(inp, targ):\n    inp.g = torch.zeros_like(inp)\n"}, []),
    # A notebook cut off half-way through an upload: not JSON.
    "zoe": b'{"cells": [{"cell_type": "code", "source": "def mse_grad(inp, targ):',
}


def write_class(released: dict, course: str | Path, members: dict | None = None) -> list[str]:
    """Write the sample class into `course/submitted/<student>/backward/backward.ipynb`."""
    from .. import spec

    members = CLASS if members is None else members
    for student, sample in members.items():
        path = Path(course) / "submitted" / student / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME
        if isinstance(sample, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sample)
        else:
            answers, extra = sample
            write(fill(released, {**CORRECT, **answers}, extra), path)
    return list(members)
