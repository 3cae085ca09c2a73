"""The hub's users run one interpreter with its own packages (tests/support/userenv.py, what `make
hub` and tests/course/test_hub.py give each user): the Python that installed the packages, to
the full version. Under Debian's 3.11.2 with packages a 3.11.7 installed, soupsieve could not
parse a CSS selector, and formgrader's submission page and `nbgrader generate_feedback` failed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from autograder.course.hub import why_other_python
from tests.support.courseusers import why_no_users
from tests.support.userenv import ordinary_user

USER = "autograder-pyuser"


@pytest.mark.sandbox
@pytest.mark.skipif(why_no_users() is not None, reason=str(why_no_users()))
def test_an_ordinary_user_runs_the_python_that_installed_the_packages_and_their_commands():
    with ordinary_user(USER) as env:
        script = ('import sys, bs4; print(sys.version); print(bs4.BeautifulSoup('
                  '"<div class=a><p>x</p></div>", "html.parser").select("div.a > p"))')
        done = subprocess.run(env.command([env.python, "-c", script]), capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.splitlines() == [sys.version, "[<p>x</p>]"], done.stdout
        # the packages' commands, on the user's PATH, run by that Python
        done = subprocess.run(env.command(["sh", "-c", "autograder --help && nbgrader --version"]),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-2000:]
        assert "check" in done.stdout, done.stdout


def test_another_python_even_another_3_11_is_refused_in_one_line():
    assert why_other_python("demo-bob", "/x/bin/python", sys.version) is None
    other = "3.11.2 (main, Apr 28 2025, 14:11:48) [GCC 12.2.0]"
    if sys.version == other:
        other = "3.11.1 (main, Jan 1 2023, 00:00:00) [GCC 12.2.0]"
    why = why_other_python("demo-bob", "/x/bin/python", other)
    assert why is not None and "\n" not in why, why
    assert why.startswith(f"demo-bob's Python (/x/bin/python) is {other.split()[0]}, and the "
                          f"packages were installed by Python {sys.version.split()[0]}"), why
