"""Reference solutions of the `backward` lesson: the trusted answers (instructor side only).

Each gradient sits next to the forward it differentiates. `.g` holds a gradient, as in the lesson.
tests/lessons/test_solutions.py proves each equal to torch.autograd in float64.
"""

import torch


def mse(out, targ):
    return (out.squeeze(-1) - targ).pow(2).mean()


def mse_grad(inp, targ):
    # d/dx mean((x - t)^2) = 2 (x - t) / N
    inp.g = 2.0 * (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]


def relu(inp):
    return inp.clamp_min(0.0)


def relu_grad(inp, out):
    # relu passes the upstream gradient where its input was positive
    inp.g = (inp > 0).to(inp.dtype) * out.g


def lin(inp, w, b):
    return inp @ w + b


def lin_grad(inp, out, w, b):
    # out = inp @ w + b
    inp.g = out.g @ w.t()
    w.g = inp.t() @ out.g
    b.g = out.g.sum(0)


class Module:
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def forward(self, *args):
        raise NotImplementedError

    def backward(self):
        self.bwd(self.out, *self.args)


__all__ = ["mse", "mse_grad", "relu", "relu_grad", "lin", "lin_grad", "Module", "torch"]
