"""The attack suite again, as an ordinary user: a grader without root (JupyterHub, a course
server) gets the sandbox of user namespaces, and its attack tests must pass there too, for real.

Run as root (CI here), this test makes an unprivileged user, a venv it can read (the system's
python3, with this venv's packages through a .pth file: root's home, where this Python lives,
is not readable by others), and runs the attack, sandbox, jail and grade-faking suites as that
user (all but their tests marked slow: those grade whole classes through nbgrader, whose
reading of the course is the same for any user). Where the checkout or the packages are not
readable by others, they are bound, in a mount namespace of the test's own, at a place that is.
Twice where Debian's `uidmap` is installed: as a user without subordinate ids (the student is
the nobody of a nested user namespace) and as one granted a range (the student runs as one of
them, `tests/sandbox/test_subuid.py`).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.userenv import ordinary_user, why_no_subordinate_ids, why_not

USER = "autograder-test"
#: The sandbox's suites (the grade-faking suite is about what the rules read and the wire, the
#: same whoever grades; its bomb goes through the sandbox), and the second lesson's.
SUITES = ["tests/sandbox/test_attacks.py", "tests/answer/test_language.py", "tests/answer/test_answer_language.py",
          "tests/sandbox/test_sandbox.py", "tests/sandbox/test_jail.py",
          "tests/sandbox/test_warm.py", "tests/judge/test_grades.py::test_a_results_bomb_reaches_the_grader_bounded",
          "tests/lessons/test_classifier.py"]  # the second lesson, released and graded as the user

pytestmark = [pytest.mark.slow, pytest.mark.sandbox,
              pytest.mark.skipif(why_not(USER) is not None, reason=str(why_not(USER)))]


@pytest.mark.parametrize("subordinate", [
    False, pytest.param(True, marks=pytest.mark.skipif(why_no_subordinate_ids() is not None,
                                                       reason=str(why_no_subordinate_ids())))],
    ids=["nested-user", "subordinate-ids"])
def test_the_attack_suites_pass_as_an_ordinary_user(subordinate):
    with ordinary_user(USER + "-subid" if subordinate else USER, subordinate=subordinate) as env:
        work = env.workdir("pytest")
        layers = subprocess.run(env.command(
            [env.python, "-c", "from autograder.sandbox.layers import choose_layers; "
                               "print(choose_layers())"]), capture_output=True, text=True)
        assert f"namespaces=True, user_namespace=True, own_uid={subordinate}" in layers.stdout, \
            layers.stdout + layers.stderr[-2000:]
        done = subprocess.run(env.command(
            [env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
             f"--basetemp={work / 'base'}", "-m", "not cuda and not slow", *SUITES]),
            capture_output=True, text=True, timeout=1500)
        tail = done.stdout[-3000:] + done.stderr[-2000:]
        assert done.returncode == 0, tail
        assert " passed" in done.stdout and " failed" not in done.stdout, tail
