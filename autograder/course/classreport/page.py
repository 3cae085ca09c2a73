"""The class report's page, `index.html`: self-contained (figures inline), from the template
`templates/class_report.html.j2`, every text from the files escaped."""

from __future__ import annotations

from ..pages import render
from .figures import figures
from .model import ClassReport


def page(report: ClassReport) -> str:
    """The whole page, self-contained: every text from the files escaped, figures inline."""
    return render("class_report.html.j2", report=report, figures=figures(report))
