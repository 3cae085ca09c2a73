"""Answers of the fourth attack round (2026-12-07), which had 10/10 from autograd on every path
when the answer language was checked by names: each is a notebook's answers, for `samples.fill`.

`ROUND_4`: a throw-away class whose attributes are named like a generator's frame and a
frame's builtins (the old rules then allowed those names on any object); from
`(v for v in [0])`, the frame's builtins, the real `exec`, and inside it autograd's engine
through `torch.autograd.variable`. Each target's answer goes through it. `FRAMES`: the same
walking the frames up, to the runner's own frame (its token, its channel, the work).
"""

from __future__ import annotations

_STEAL = (
    "class Names:\n"
    "    gi_frame = f_builtins = f_back = f_globals = f_locals = None\n\n"
    "def steal(code, **names):\n"
    "    run = (v for v in [0]).gi_frame.f_builtins['exec']\n"
    "    run('import sys, torch, torch.autograd.variable\\n'\n"
    "        'v = sys.modules[\"torch.autograd.variable\"]\\n'\n"
    "        'v.Variable._execution_engine = v.ImperativeEngine()\\n'\n"
    "        'torch.set_grad_enabled(True)\\n' + code, names)\n\n"
)

ROUND_4 = {
    "mse_grad": _STEAL + (
        "def mse_grad(inp, targ):\n"
        "    steal('x = inp.detach().clone().requires_grad_()\\n'\n"
        "          '((x.squeeze(-1) - targ) ** 2).mean().backward()\\n'\n"
        "          'inp.g = x.grad', inp=inp, targ=targ)\n"),
    "relu_grad": (
        "def relu_grad(inp, out):\n"
        "    steal('x = inp.detach().clone().requires_grad_()\\n'\n"
        "          '(x.clamp_min(0.) * out.g).sum().backward()\\n'\n"
        "          'inp.g = x.grad', inp=inp, out=out)\n"),
    "lin_grad": (
        "def lin_grad(inp, out, w, b):\n"
        "    steal('ts = [t.detach().clone().requires_grad_() for t in (inp, w, b)]\\n'\n"
        "          '((ts[0] @ ts[1] + ts[2]) * out.g).sum().backward()\\n'\n"
        "          'inp.g, w.g, b.g = (t.grad for t in ts)', inp=inp, out=out, w=w, b=b)\n"),
}

#: ROUND_4 with the names computed, which no reading before the run sees.
ROUND_4_COMPUTED = {target: answer.replace(
    "(v for v in [0]).gi_frame.f_builtins['exec']",
    "getattr(getattr((v for v in [0]), 'gi_' + 'frame'), 'f_' + 'builtins')['ex' + 'ec']")
    for target, answer in ROUND_4.items()}

FRAMES = {
    "mse_grad": (
        "def mse_grad(inp, targ):\n"
        "    frame = getattr((v for v in [0]), 'gi_' + 'frame')\n"
        "    while frame is not None:\n"
        "        if 'token' in getattr(frame, 'f_' + 'locals'):\n"
        "            raise RuntimeError('the runner frame is here')\n"
        "        frame = getattr(frame, 'f_' + 'back')\n"
        "    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n"),
}
