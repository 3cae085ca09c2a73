"""The documentation is a front page and a manual by reader: README.md short and leading with the
two commands, each page of docs/ present, every relative link landing on a file (and heading), and
no line too long to read in a diff."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder import language

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = ["students", "instructors", "lessons", "architecture", "security", "performance",
         "development", "contract"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_the_readme_is_a_front_page_that_leads_with_the_two_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move the manual to docs/"
    head = "\n".join(lines[:40])
    assert re.search(r"^make demo\b", head, re.M) and re.search(r"^make test\b", head, re.M), \
        "README.md must show `make demo` and `make test` within its first 40 lines"
    first_command = next(line for line in lines if re.match(r"^(make|autograder|pip|python) ", line))
    assert first_command.startswith("make demo")


@pytest.mark.parametrize("name", PAGES)
def test_each_page_of_the_manual_exists(name):
    page = DOCS / f"{name}.md"
    assert page.is_file(), f"docs/{name}.md is missing"
    assert page.read_text().startswith("# "), f"docs/{name}.md should open with its title"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_every_relative_link_lands_on_a_file_and_heading(page):
    text = FENCE.sub("", page.read_text())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        if not goal.exists():
            broken.append(f"{target}: no such file")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
            broken.append(f"{target}: no such heading in {goal.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_no_line_is_over_200_characters(page):
    # The answer language's table is printed by `python -m autograder.language` and shown
    # verbatim (tests/answer/test_language.py), so its rows are as long as that module makes them.
    generated = set(language.table().splitlines())
    long = [n for n, line in enumerate(page.read_text().splitlines(), 1)
            if len(line) > 200 and line not in generated]
    assert not long, f"{page.name}: lines over 200 characters: {long}"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_every_file_of_the_package_a_page_names_is_there(page):
    # The package's folders change (issue 33): a page that still names a module where it was
    # sends its reader nowhere.
    named = set(re.findall(r"\bautograder/[\w/]+\.(?:py|toml)\b", page.read_text()))
    gone = sorted(p for p in named if not (REPO / p).is_file())
    assert not gone, f"{page.name} names files the package does not have: {gone}"
