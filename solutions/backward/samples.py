"""The backward lesson's sample class: what `autograder demo` hands in, and the tests' answers.

`CORRECT`: a right answer for each target, in the lesson's style. `CLASS`: right answers written
differently, typical mistakes, a cheater, a broken file; each entry (answers for the solution
cells, extra cells appended) or raw bytes (not a notebook).
"""

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


CLASS = {
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
