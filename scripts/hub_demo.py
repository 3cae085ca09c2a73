"""`make hub`: the course on JupyterHub, on this machine, until Ctrl-C.

As root: an instructor who is not root (`demo-teacher`) and two students (`demo-alice`,
`demo-bob`) made as Unix users, each with a home of their own and a password made for this run;
nbgrader's exchange; the backward lesson released into it by the instructor (`autograder
release --exchange`); JupyterHub with PAM login for those three, each server a JupyterLab with
nbgrader's Assignment List (and, for the instructor, formgrader). Prints the address and the
logins. Ctrl-C stops the Hub and every server, removes the homes and locks the passwords.

The users and the set-up are the tests' own (tests/support/courseusers.py: what tests/course/test_hub.py runs).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course.hub import why_no_hub  # noqa: E402
from tests.support.courseusers import course_hub, why_no_users  # noqa: E402

TEACHER, STUDENTS = "demo-teacher", ["demo-alice", "demo-bob"]


def main() -> int:
    why = why_no_hub() or why_no_users()
    if why:
        print(f"make hub: {why}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # Ctrl-C, kill, the terminal gone
        signal.signal(sig, lambda *_: stop.set())
    try:
        with course_hub(TEACHER, STUDENTS, log=lambda line: print(f"make hub: {line}",
                                                                     flush=True)) as course:
            print(f"\nJupyterHub: {course.url}  (this machine only; Ctrl-C stops it)\n")
            print("Logins (Unix users made for this demo, PAM passwords made for this run):")
            for name, password in course.passwords.items():
                role = "instructor" if name == TEACHER else "student"
                print(f"  {name:<14} {password:<14} {role}")
            print(f"\nThe course: {course.course} (the instructor's; formgrader: "
                  f"{course.url}/user/{TEACHER}/formgrader)")
            print("A student: Nbgrader > Assignment List > Fetch, answer, Validate, Submit.")
            print(f"The instructor grades, in a Terminal of {TEACHER}'s JupyterLab:\n"
                  "  cd ~/work/course && python -m nbgrader collect backward && "
                  "python -m autograder grade --course . && "
                  "python -m nbgrader release_feedback backward", flush=True)
            stop.wait()
            print("make hub: stopping the Hub, removing the homes", flush=True)
    except RuntimeError as exc:  # HubError, or a user's Python that is not the packages' own
        print(f"make hub: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
