"""Reference solutions of the `classifier` lesson: the trusted answers (instructor side only).

Each gradient sits next to the forward it differentiates. `.g` holds a gradient, as in the lesson.
tests/lessons/test_classifier.py proves each equal to torch.autograd in float64.
"""

import torch


def log_softmax(x):
    return x - x.logsumexp(-1, keepdim=True)


def log_softmax_grad(inp, out):
    # out = log_softmax(inp); its Jacobian is I - softmax(inp) along each row, so
    # inp.g = out.g - softmax(inp) * (sum of out.g over the classes); softmax(inp) = exp(out).
    inp.g = out.g - out.exp() * out.g.sum(-1, keepdim=True)


def nll(inp, targ):
    return -inp[torch.arange(targ.shape[0]), targ].mean()


def nll_grad(inp, targ):
    # d/dinp of -mean(inp[i, targ[i]]): -1/N at each sample's target, 0 elsewhere.
    g = torch.zeros_like(inp)
    g[torch.arange(targ.shape[0], device=targ.device), targ] = -1.0 / targ.shape[0]
    inp.g = g


__all__ = ["log_softmax", "log_softmax_grad", "nll", "nll_grad", "torch"]
