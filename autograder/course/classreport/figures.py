"""The class report's figures, drawn with matplotlib (no pyplot: no backend or global state is
chosen), as base64 PNG for the page to hold inline."""

from __future__ import annotations

import base64
import io
from collections import Counter

from .model import TOP_MISTAKES, ClassReport


def figures(report: ClassReport) -> dict[str, str]:
    """The page's figures as base64 PNG: per-target scores, the totals, the common mistakes."""
    from matplotlib.figure import Figure

    def png(fig) -> str:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    out = {}
    graded = report.graded
    if report.targets and graded:
        fig = Figure(figsize=(3.2 * len(report.targets), 2.6))
        for i, stats in enumerate(report.per_target):
            ax = fig.add_subplot(1, len(report.targets), i + 1)
            values = sorted(stats.counts)
            ax.bar([f"{v:g}" for v in values], [stats.counts[v] for v in values], color="#4878a8")
            ax.set_title(f"{stats.target} (of {stats.out_of:g})", parse_math=False)
            ax.set_xlabel("points")
            if i == 0:
                ax.set_ylabel("students")
            ax.yaxis.get_major_locator().set_params(integer=True)
        out["targets"] = png(fig)
        fig = Figure(figsize=(6, 2.6))
        ax = fig.add_subplot()
        totals = Counter(r.score for r in graded)
        ax.bar([f"{v:g}" for v in sorted(totals)], [totals[v] for v in sorted(totals)],
               color="#4878a8")
        ax.set_xlabel(f"score (of {max(r.max_score for r in graded):g})")
        ax.set_ylabel("students")
        ax.yaxis.get_major_locator().set_params(integer=True)
        out["totals"] = png(fig)
    mistakes = report.mistakes[:TOP_MISTAKES]
    if mistakes:
        fig = Figure(figsize=(7, 0.45 * len(mistakes) + 0.8))
        ax = fig.add_subplot()
        ax.barh(range(len(mistakes)), [len(m.students) for m in mistakes], color="#c0504d")
        ax.set_yticks(range(len(mistakes)), [m.code for m in mistakes])
        for label in ax.get_yticklabels():
            label.set_parse_math(False)
        ax.invert_yaxis()
        ax.set_xlabel(f"students (of {len(graded)} graded)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        out["mistakes"] = png(fig)
    return out
