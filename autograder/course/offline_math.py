"""Math on a feedback page that renders without network: each `$...$` and `$$...$$` of a markdown
cell becomes MathML (latex2mathml), which a browser draws itself. Stock pages load MathJax from
a CDN, so a page opened offline shows the raw `$\\max(x, 0)$`.

Code spans and fenced code keep their dollars; a formula latex2mathml cannot read stays as
written (MathJax, where the page has network, still draws it). Without latex2mathml installed
(the `instructor` extra installs it) every formula stays as written.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nbconvert.preprocessors import Preprocessor

#: Code (fenced blocks, then code spans) and math (display, then inline), in the order a
#: markdown reader meets them. Code is kept as it is; math is converted.
_PARTS = re.compile(r"(?P<fence>^(?P<f>```|~~~)[^\n]*\n.*?^(?P=f)[ \t]*$)"
                    r"|(?P<span>(?P<ticks>`+).+?(?P=ticks))"
                    r"|\$\$(?P<display>.+?)\$\$"
                    r"|(?<![\\$])\$(?P<inline>[^\s$`](?:[^$`\n]*?[^\\$`])?)\$(?!\d)",
                    re.DOTALL | re.MULTILINE)


def _mathml(tex: str, display: bool) -> str | None:
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return None
    # Inside \text{...}, `\_` is an underscore (latex2mathml keeps the backslash).
    tex = re.sub(r"\\text\{([^}]*)\}", lambda m: "\\text{" + m[1].replace("\\_", "_") + "}", tex)
    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - a formula it cannot read stays as written
        return None


@lru_cache(maxsize=512)  # the lesson's own cells are the same on every student's page
def markdown_with_mathml(source: str) -> str:
    """`source` (a markdown cell) with each formula written as MathML."""
    if "$" not in source:
        return source

    def part(m: re.Match) -> str:
        if m["fence"] or m["span"]:
            return m[0]
        display = m["display"] is not None
        mathml = _mathml(m["display"] if display else m["inline"], display)
        return m[0] if mathml is None else mathml.replace("\n", "")

    return _PARTS.sub(part, source)


class OfflineMath(Preprocessor):
    """The nbconvert preprocessor form of `with_mathml`, for a stock exporter
    (`c.HTMLExporter.preprocessors`): each markdown cell's formulas as MathML."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and "$" in cell.source:
            cell.source = markdown_with_mathml(cell.source)
        return cell, resources


def with_mathml(nb):
    """A copy of notebook `nb` whose markdown cells' formulas are MathML (its other cells the same
    objects: a page's export copies what it changes)."""
    import nbformat

    cells = [nbformat.NotebookNode({**c, "source": markdown_with_mathml(c.source)})
             if c.cell_type == "markdown" and "$" in c.source else c for c in nb.cells]
    return nbformat.NotebookNode({**nb, "cells": cells})
