"""The diagnosis toolkit: small functions of tensors that say how a wrong `.g` differs from the
true gradient (a factor, a transpose, a kept batch dimension, a broadcast, a mask), which the
engine's diagnoses (`diagnose`) and a lesson's hooks are made of. A lesson imports them from
`autograder.lesson_api`, which exports them. Trusted side: plain tensors in, numbers or words out;
no student code runs, and nothing here knows a lesson or a target.
"""

from __future__ import annotations

import torch


def shape_text(shape: torch.Size | tuple) -> str:
    """As Python writes a shape: (4,), (3, 2), ()."""
    return str(tuple(int(d) for d in shape))


def off_by(got: torch.Tensor, want: torch.Tensor, also: torch.Tensor | None = None) -> float:
    """max|got - want| relative to max(max|want|, 1); elementwise, `also` may hold instead."""
    if got.shape != want.shape:
        return float("inf")
    if got.numel() == 0:
        return 0.0
    got = got.to(torch.float64)
    err = (got - want).abs()
    if also is not None:
        err = torch.minimum(err, (got - also).abs())
    return err.max().item() / max(want.abs().max().item(), 1.0)


def best_ratio(got: torch.Tensor, truth: torch.Tensor) -> float | None:
    """The scalar c that brings c * truth closest to got (least squares); None if truth is 0."""
    g, t = got.to(torch.float64).flatten(), truth.to(torch.float64).flatten()
    tt = t.dot(t).item()
    if g.numel() != t.numel() or tt < 1e-24:
        return None
    return g.dot(t).item() / tt


def combined_factors(parts: dict[str, tuple[float | None, str]], n: int,
                     per_n: str | None = None) -> list[tuple[float, tuple[str, ...], str]]:
    """Every combination of a target's mistakes that are factors of the true gradient, as
    (ratio, codes, fixes): `parts` is code -> (factor, fix), a factor of None meaning N, the
    batch size; at N = 1 the combinations with `per_n` are no mistake, and are left out."""
    codes = list(parts)
    table = []
    for mask in range(1, 1 << len(codes)):
        chosen = [codes[i] for i in range(len(codes)) if mask >> i & 1]
        if per_n in chosen and n == 1:
            continue
        ratio = 1.0
        for code in chosen:
            ratio *= parts[code][0] or n
        table.append((ratio, tuple(chosen), "; ".join(parts[code][1] for code in chosen)))
    return table


def is_transposed_shape(got: torch.Tensor, truth: torch.Tensor) -> bool:
    """`got` has the shape of the matrix `truth` transposed: (3, 2) for (2, 3)."""
    return truth.dim() == 2 and got.dim() == 2 and got.shape == truth.shape[::-1]


def is_transpose(got: torch.Tensor, truth: torch.Tensor, tol: float) -> bool:
    """`got` is the true gradient, transposed (a matrix's .g in the other layout)."""
    return is_transposed_shape(got, truth) and off_by(got.transpose(0, 1), truth) <= tol


def kept_batch(got: torch.Tensor, truth: torch.Tensor, n: int) -> bool:
    """`got` has a batch dimension in front that the truth has summed away."""
    return tuple(got.shape) == (n, *truth.shape)


def square_broadcast(got: torch.Tensor, n: int) -> bool:
    """(N, 1) against (N,): a (N, N) result, where broadcasting made every pair (or (N, N, 1),
    a dimension added after it)."""
    return n > 1 and tuple(got.shape)[:2] == (n, n) and got.numel() == n * n


def mask_errors(got: torch.Tensor, upstream: torch.Tensor, open_: torch.Tensor,
                shut: torch.Tensor, tol: float, words: dict[str, str]) -> str | None:
    """`got` lets `upstream` through or blocks it, element by element, but in the wrong places:
    where `shut` it should block, where `open_` pass. Says where, in counts, in the lesson's
    `words` ("g": the .g, "up": the upstream gradient, "open", "shut": where each holds); None
    if it is not such a mask."""
    scale = max(upstream.abs().max().item(), 1.0)
    got64 = got.to(torch.float64)
    through = (got64 - upstream).abs() <= tol * scale
    blocked = got64.abs() <= tol * scale
    if not (through | blocked).all():
        return None
    leaks = int((through & ~blocked & shut).sum())
    stops = int((blocked & ~through & open_).sum())
    if not leaks and not stops:
        return None
    g, up, where_open, where_shut = words["g"], words["up"], words["open"], words["shut"]
    n_shut, n_open = int(shut.sum()), int(open_.sum())
    if leaks == n_shut > 0 and stops == n_open > 0:
        return (f"the mask is inverted: {g} passes {up} where {where_shut} and blocks it where "
                f"{where_open} ({leaks + stops} elements)")
    if leaks == n_shut > 0 and not stops:
        return (f"{g} passes {up} everywhere, also where {where_shut} ({leaks} of {got.numel()} "
                "elements): mask it")
    parts = [f"passes {up} where {where_shut} ({leaks} elements)"] if leaks else []
    parts += [f"blocks {up} where {where_open} ({stops} elements)"] if stops else []
    return f"{g} " + " and ".join(parts)
