"""The classifier lesson's sample class: what `autograder demo` hands in, and the tests' answers.

`CORRECT`: a right answer for each target. `CLASS`: right answers written differently, the
lesson's typical mistakes, a cheater; each entry (answers for the solution cells, extra cells).
"""

CORRECT = {
    "nll_grad": "def nll_grad(inp, targ):\n"
                "    g = torch.zeros_like(inp)\n"
                "    g[torch.arange(targ.shape[0], device=targ.device), targ] = -1.0 / targ.shape[0]\n"
                "    inp.g = g\n",
    "log_softmax_grad": "def log_softmax_grad(inp, out):\n"
                        "    inp.g = out.g - out.exp() * out.g.sum(-1, keepdim=True)\n",
}

#: The lesson's mistakes, one per answer (the tests check each is named).
MISTAKES = {
    "nll_grad.not_averaged": ("nll_grad", "def nll_grad(inp, targ):\n"
                              "    g = torch.zeros_like(inp)\n"
                              "    g[torch.arange(targ.shape[0]), targ] = -1.0\n    inp.g = g\n"),
    "nll_grad.sign_flipped": ("nll_grad", "def nll_grad(inp, targ):\n"
                              "    g = torch.zeros_like(inp)\n"
                              "    g[torch.arange(targ.shape[0]), targ] = 1.0 / targ.shape[0]\n"
                              "    inp.g = g\n"),
    "nll_grad.wrong_one_hot": ("nll_grad", "import torch.nn.functional as F\n"
                               "def nll_grad(inp, targ):\n"
                               "    inp.g = -F.one_hot(targ) / targ.shape[0]\n"),
    "log_softmax_grad.missing_sum_term": ("log_softmax_grad", "def log_softmax_grad(inp, out):\n"
                                          "    inp.g = out.g.clone()\n"),
    "log_softmax_grad.wrong_sum_dim": ("log_softmax_grad", "def log_softmax_grad(inp, out):\n"
                                       "    inp.g = out.g - out.exp() * out.g.sum(0, keepdim=True)\n"),
    "log_softmax_grad.no_keepdim": ("log_softmax_grad", "def log_softmax_grad(inp, out):\n"
                                    "    inp.g = out.g - out.exp() * out.g.sum(-1)\n"),
    "log_softmax_grad.overflows": ("log_softmax_grad", "def log_softmax_grad(inp, out):\n"
                                   "    sm = inp.exp() / inp.exp().sum(-1, keepdim=True)\n"
                                   "    inp.g = out.g - sm * out.g.sum(-1, keepdim=True)\n"),
}

CLASS = {
    "ada": (CORRECT, []),
    "ben": ({
        "nll_grad": "import torch.nn.functional as F\ndef nll_grad(inp, targ):\n"
                    "    one_hot = F.one_hot(targ, num_classes=inp.shape[1]).to(inp.dtype)\n"
                    "    inp.g = -one_hot / inp.shape[0]\n",
        "log_softmax_grad": "def log_softmax_grad(inp, out):\n"
                            "    shifted = inp - inp.max(-1, keepdim=True).values\n"
                            "    sm = shifted.exp() / shifted.exp().sum(-1, keepdim=True)\n"
                            "    inp.g = out.g - sm * out.g.sum(-1, keepdim=True)\n",
    }, []),
    "cleo": ({"nll_grad": MISTAKES["nll_grad.not_averaged"][1]}, []),
    "dan": ({"log_softmax_grad": MISTAKES["log_softmax_grad.missing_sum_term"][1]}, []),
    "eve": ({"log_softmax_grad": MISTAKES["log_softmax_grad.overflows"][1]}, []),
    "finn": ({"nll_grad": MISTAKES["nll_grad.wrong_one_hot"][1]}, []),
    # The cheater: autograd does the work.
    "mallory": ({"log_softmax_grad": "def log_softmax_grad(inp, out):\n"
                                     "    x = inp.detach().requires_grad_()\n"
                                     "    (x.log_softmax(-1) * out.g).sum().backward()\n"
                                     "    inp.g = x.grad\n"}, []),
}
