"""The HTML pages the instructor's side writes itself (the class report, the page of a submission
that could not be graded), each a Jinja2 template in `templates/`, shipped with the package.

Every value a template shows is escaped (`autoescape=True`): a student id, a mistake's message or
a reason may hold a student's words, which a browser must show as text, never run. A template
names a value that is not given: it fails (`StrictUndefined`), never prints nothing.
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("autograder.course", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = format  # {{ x|num(".3g") }}: Python's own number formats
    return env


def render(template: str, **values) -> str:
    """The page `templates/<template>` shows with `values`, every one of them escaped."""
    return _environment().get_template(template).render(**values)
