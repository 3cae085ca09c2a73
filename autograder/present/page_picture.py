"""The graded feedback page's picture of a wrong `.g`: how each value is off, never by how much.

The page is graded on hidden inputs, so it never shows the true gradient's values, nor a value's
distance from it (for a stub that would be the true gradient again). What it can show, cell by
cell on the student's `.g`, is the kind of each value: right, too small or too large (same sign),
of the opposite sign, or 0 where the true one is not; a legend with the count of each (the
scale), and, where every value that is off is off by one factor (the factor 2 left out, a mean
not taken), that factor, which is the code's and not the inputs'. A `.g` with its tensor's shape
turned over (`w.g` transposed) is drawn twice: as the student's shape, and turned back into the
shape it must have, each value in the colour of its kind once set against its own.

Drawn with matplotlib (the instructor's dependency, imported by `picture.png` only when a page is
drawn), at a fixed layout: a grading worker draws one per wrong target.
"""

from __future__ import annotations

import torch

#: The kinds of a value, in the legend's order: (name, colour).
KINDS = (("right", "#a1d99b"), ("too small, same sign", "#6baed6"),
         ("too large, same sign", "#fd8d3c"), ("opposite sign", "#9e4fb0"),
         ("0 (the true one is not)", "#525252"))
RIGHT, SMALL, LARGE, SIGN, ZERO = range(len(KINDS))
#: Cells are drawn with borders where the picture has at most this many rows and columns.
BORDERED = 24
#: Two ratios are one factor where they differ by at most this, relatively.
SAME_FACTOR = 1e-6


def kinds(got: torch.Tensor, truth: torch.Tensor, differs: torch.Tensor) -> torch.Tensor:
    """Each cell's kind (an index into KINDS): RIGHT where it is not off, else how it is off."""
    kind = torch.full(got.shape, RIGHT, dtype=torch.long)
    kind[differs & (got.abs() < truth.abs())] = SMALL
    kind[differs & (got.abs() >= truth.abs())] = LARGE
    kind[differs & (got * truth < 0)] = SIGN
    kind[differs & (got == 0) & (truth != 0)] = ZERO
    return kind


def one_factor(got: torch.Tensor, truth: torch.Tensor, differs: torch.Tensor) -> float | None:
    """The factor by which every value that is off is off (yours / the true one), where there is
    one, at least two cells are off and neither theirs nor the true values are 0 (0s are a kind
    of their own); else None."""
    if int(differs.sum()) < 2 or bool((truth[differs] == 0).any()) or \
            bool((got[differs] == 0).any()):
        return None
    ratios = got[differs] / truth[differs]
    low, high = ratios.min().item(), ratios.max().item()
    return low if high - low <= SAME_FACTOR * max(1.0, abs(low)) else None


def words(picture) -> tuple[str, str | None]:
    """What the picture says in words: its head line ("mse_grad: inp.g: 3 of 3 values off") and
    what is known of how ("every value that is off is 0.5 x the true one", the shapes of a
    transpose), None where nothing more is known than the kinds drawn."""
    got, truth = torch.tensor(picture.got), torch.tensor(picture.truth)
    differs = torch.tensor(picture.differs, dtype=torch.bool)
    off, total = int(differs.sum()), differs.numel()
    head = f"{picture.title}: {off} of {total} values off" if off else \
        f"{picture.title}: every value right, the shape turned over"
    factor = one_factor(got, truth, differs)
    said = None if factor is None else f"every value that is off is {factor:.3g} x the true one"
    if picture.transposed:
        shapes = [" x ".join(map(str, s)) for s in picture.shapes]
        name = picture.title.split(": ", 1)[-1].removesuffix(".g")
        turned = f"yours is {shapes[0]}, {name} is {shapes[1]}: turned over"
        said = turned + (f"; {said}" if said else "" if off else ", each value right")
    return head, said


def draw(fig, picture, shapes: list[str]) -> None:
    """Draw `picture` (whose `differs` is known) on `fig`: the student's `.g` cell by cell in the
    colours of KINDS, a legend with counts, and a second panel of the shape it must have where
    the student's is turned over."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle

    got, truth = torch.tensor(picture.got), torch.tensor(picture.truth)
    kind = kinds(got, truth, torch.tensor(picture.differs, dtype=torch.bool))
    name = picture.title.split(": ", 1)[-1].removesuffix(".g")
    head, said = words(picture)
    fig.text(0.02, 0.96, head, fontsize=12, weight="bold", va="top")
    fig.text(0.02, 0.84, said or "how each value compares with the true one:", fontsize=10.5,
             va="top")
    colours = ListedColormap([colour for _, colour in KINDS])
    panels = [(kind, f"yours ({shapes[0]})")]
    if picture.transposed:
        panels.append((kind.t(), f"turned back: {name}'s shape ({shapes[1]})"))
    width = 0.24 if picture.transposed else 0.4
    for i, (cells, title) in enumerate(panels):
        ax = fig.add_axes((0.04 + i * (width + 0.06), 0.06, width, 0.6))
        bordered = max(cells.shape) <= BORDERED
        ax.pcolormesh(cells.numpy(), cmap=colours, vmin=-0.5, vmax=len(KINDS) - 0.5,
                      edgecolors="white" if bordered else "face",
                      linewidth=1.0 if bordered else 0)
        ax.set_aspect("equal")
        ax.invert_yaxis()  # row 0 on top, as the tensor prints
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()  # the shape is in the title (ticks cost as much as the rest)
    counts = torch.bincount(kind.flatten(), minlength=len(KINDS)).tolist()
    shown = [(f"{label}: {counts[k]}", colour) for k, (label, colour) in enumerate(KINDS)
             if counts[k]]
    left, top = 0.02 + len(panels) * (width + 0.06), 0.38 + 0.05 * len(shown)
    for i, (label, colour) in enumerate(shown):  # the legend (matplotlib's costs a third more)
        y = top - 0.1 * i
        fig.patches.append(Rectangle((left, y - 0.03), 0.03, 0.06, facecolor=colour,
                                     transform=fig.transFigure, figure=fig))
        fig.text(left + 0.045, y, label, fontsize=10.5, va="center")
