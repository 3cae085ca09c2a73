"""A small picture of where a student's `.g` differs from the true gradient (trusted side).

A sentence says "w.g is not the gradient"; a picture shows at once that it is the true one
turned over, or right except where a mask let the wrong values through. For the first failing
float64 "values" call of a check, `keep` stores the two tensors of that call alone (the student's
`.g` and the truth, at most `CAP` x `CAP` of them, as plain numbers) on its `Verdict`; `scoring`
hands it to the check's `CheckResult`; `png` draws it.

A `.g` with its tensor's shape turned over (a matrix's rows for its columns, `w.g` transposed) is
set against the true one transposed, cell by cell, and the drawing says so: a transpose with the
right values shows as no cell off; one with wrong values too, where they are.

Two drawings: `full` (the student's, the true one, where they differ: three panels on one colour
scale) for the self-check, which runs on public seeds on the student's own machine; and, for the
graded feedback page, how each value is off (`page_picture`: right, too small, too large, of the
opposite sign, 0; the one factor where there is one), which never shows the true gradient of
hidden inputs, nor by how much a value is off (for a stub that would be the true gradient again).

matplotlib is an instructor's dependency: the engine imports without it, and where it is missing
nothing is drawn (`png` returns None). It is imported only when a picture is drawn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import torch

#: At most this many rows and columns of a `.g` are kept and shown (the top-left corner).
CAP = 64
#: The drawings' sizes in inches, and their resolution: `full` is FULL * DPI pixels.
FULL = (7.5, 2.6)
DIFFERENCE = (7.0, 2.8)
DPI = 100
#: Cells that differ are outlined in the difference panel where there are at most this many.
OUTLINED = 256


@dataclass(frozen=True)
class Picture:
    """What a picture is drawn from: plain data, at most CAP x CAP values each."""

    title: str  # "lin_grad: w.g"
    got: list[list[float]]  # the student's .g, as a matrix (a vector is one row)
    truth: list[list[float]]
    #: Where the values are off beyond the tolerance (the shapes' common grid); None where the
    #: two shapes differ, so that no cell can be set against another.
    differs: list[list[bool]] | None
    shapes: tuple[tuple[int, ...], tuple[int, ...]]  # the full shapes: the student's, the true
    #: The student's shape is the true one's turned over: `truth` and `differs` are of the true
    #: gradient transposed, so that each cell is set against its own.
    transposed: bool = False

    @property
    def cropped(self) -> bool:
        return any(n > CAP for shape in self.shapes for n in _rows_columns(shape))


def _rows_columns(shape: tuple[int, ...]) -> tuple[int, int]:
    """A shape as `_matrix` shows it: rows, columns."""
    numel = int(torch.Size(shape).numel())
    rows = shape[0] if len(shape) >= 2 else 1
    return rows, numel // rows if rows else 0


def _matrix(t: torch.Tensor) -> torch.Tensor:
    """A tensor as a matrix: a scalar 1 x 1, a vector one row, more dimensions folded into
    columns; then its top-left CAP x CAP."""
    t = t.detach().to("cpu", torch.float64)
    m = t.reshape(1, -1) if t.dim() < 2 else t.reshape(t.shape[0], -1)
    return m[:CAP, :CAP]


def keep(verdict, target: str, planned, tensors: dict):
    """`verdict` with the picture of the first `.g` of this call that is off, where the call is a
    failing float64 "values" call on the CPU; otherwise `verdict` as it is."""
    from ..judge.compare import gradient_error
    from ..judge.diagnose import tolerance

    case = planned.case
    if verdict.passed or planned.check.kind != "values" or case.dtype != "float64" or \
            case.stand_in or case.device.split(":")[0] != "cpu":
        return verdict
    for name in planned.call.collect:
        got, truth = tensors.get(f"{planned.call.id}/{name}.g"), planned.expected.get(name)
        if not isinstance(got, torch.Tensor) or truth is None or got.numel() != truth.numel() \
                or not got.numel() or got.is_complex() or not torch.isfinite(got).all():
            continue
        shapes, also = (tuple(got.shape), tuple(truth.shape)), planned.accepted.get(name)
        transposed = got.dim() == truth.dim() == 2 and got.shape != truth.shape \
            and got.shape == truth.shape[::-1]
        if transposed:  # set against the true one turned over, cell by cell
            truth, also = truth.t(), None if also is None else also.t()
        differs = None
        if got.shape == truth.shape:
            err = gradient_error(got, truth, also)
            off = err > tolerance(got.dtype, case.dtype, planned.lesson)
            if not off.any() and not transposed:
                continue  # this .g is right: the picture is of one that is not
            differs = _matrix(off.to(torch.float64)).bool().tolist()
        return replace(verdict, picture=Picture(
            f"{target}: {name}.g", _matrix(got).tolist(), _matrix(truth).tolist(), differs,
            shapes, transposed))
    return verdict


def first(report, target: str) -> Picture | None:
    """The picture of `target`'s first check that has one."""
    return next((c.picture for c in report.checks
                 if c.target == target and getattr(c, "picture", None) is not None), None)


def panels(picture: Picture) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """What the three panels show: the student's `.g`, the true one (transposed where the
    student's is its transpose), and the student's minus the true one where they differ (0
    elsewhere; None where the shapes differ otherwise)."""
    got, truth = torch.tensor(picture.got), torch.tensor(picture.truth)
    if picture.differs is None:
        return got, truth, None
    return got, truth, torch.where(torch.tensor(picture.differs), got - truth, 0.0)


def png(picture: Picture, full: bool = True) -> bytes | None:
    """`picture` drawn as a PNG: the three panels (`full`), or where the values are off alone
    (None where the shapes differ other than by a transpose, as there is nothing to set side by
    side). A transpose says so in words, in the drawing. None where matplotlib is not
    installed."""
    if not full and picture.differs is None:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    shown = f" (the first {CAP} x {CAP} values)" if picture.cropped else ""
    shapes = [" x ".join(map(str, s)) or "scalar" for s in picture.shapes]
    if not full:  # the page's: how each value is off, at a fixed layout (laying one out each
        # time cost a third of its time)
        from . import page_picture

        fig = Figure(figsize=DIFFERENCE, dpi=DPI)
        FigureCanvasAgg(fig)
        page_picture.draw(fig, replace(picture, title=picture.title + shown), shapes)
        return _bytes(fig)
    got, truth, difference = panels(picture)
    fig = Figure(figsize=FULL, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    turned = (f"yours is {shapes[0]}, the true one {shapes[1]}: set against the true one "
              "transposed" if picture.transposed else "")
    fig.suptitle(f"{picture.title}{shown}" + (f"\n{turned}" if turned else ""), fontsize=10)
    if picture.differs is not None:
        off = torch.tensor(picture.differs, dtype=torch.bool)
        said = f"where they differ: {int(off.sum())} of {off.numel()}"
        if picture.transposed and not off.any():
            said = "no cell differs: only turned over"
    scale = max(got.abs().max().item(), truth.abs().max().item()) or 1.0
    axes = fig.subplots(1, 3)
    style = {"cmap": "RdBu_r", "vmin": -scale, "vmax": scale, "interpolation": "nearest"}
    image = axes[0].imshow(got.numpy(), **style)
    axes[0].set_title(f"yours ({shapes[0]})", fontsize=9)
    axes[1].imshow(truth.numpy(), **style)
    axes[1].set_title(f"the true one, transposed ({shapes[0]})" if picture.transposed else
                      f"the true one ({shapes[1]})", fontsize=9)
    if difference is None:
        axes[2].text(0.5, 0.5, f"the shapes differ:\nyours {shapes[0]},\nthe true {shapes[1]}",
                     ha="center", va="center", fontsize=9)
        axes[2].set_axis_off()
    else:
        axes[2].imshow(difference.numpy(), **style)
        if int(off.sum()) <= OUTLINED:
            _outline(axes[2], off)  # a small difference is still seen
        axes[2].set_title(said, fontsize=9)
    for ax in axes[:2 if difference is None else 3]:
        _plain(ax)
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    return _bytes(fig)


def _outline(ax, off: torch.Tensor) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    cells = [Rectangle((j - 0.5, i - 0.5), 1, 1) for i, j in off.nonzero().tolist()]
    ax.add_collection(PatchCollection(cells, facecolor="none", edgecolor="black", linewidth=0.8))


def _plain(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _bytes(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def show(report, target: str) -> None:
    """In a notebook (an IPython kernel), display `target`'s picture, all three panels; in a
    terminal, or without IPython or matplotlib, nothing."""
    picture = first(report, target)
    if picture is None:
        return
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    data = png(picture, full=True)
    if data is not None:
        display(Image(data=data, format="png"))


def feedback_data(report, target: str) -> dict | None:
    """The graded feedback's picture of `target` as a notebook output's data (where the values
    are off, alone), or None."""
    import base64

    if target in report.drawn:  # drawn where the report was made (`draw_for_feedback`)
        return report.drawn[target]
    picture = first(report, target)
    data = png(picture, full=False) if picture is not None else None
    if data is None:
        return None
    from . import page_picture

    head, said = page_picture.words(picture)
    return {"image/png": base64.b64encode(data).decode("ascii"),
            "text/plain": f"<{head}{': ' + said if said else ''}>"}


def draw_for_feedback(report) -> None:
    """Each target's feedback picture drawn now, into `report.drawn`: a grading process draws
    them while the grader's own process records the class."""
    for target in dict.fromkeys(c.target for c in report.checks if c.picture is not None):
        if (data := feedback_data(report, target)) is not None:
            report.drawn[target] = data
