"""Benchmark: from submit to feedback available, with `autograder serve` running.

    python benchmarks/bench_serve.py [--students 20] [--per-student 5] [--workers W]

A course released into its own exchange; `autograder serve` started on it and warmed by one
submission; then a burst of students x per-student notebooks handed in with nbgrader's own
ExchangeSubmit (what `nbgrader submit` and the Assignment List run), round after round (each
student's first, then each one's second, ...), a mix of right answers and typical mistakes.

For each submission: the seconds from its submit's end to the moment a page that covers it is in
the exchange (what `fetch_feedback` finds): its own page, or that of a later submission of the
same student (the latest counts: a submission superseded while it waited gets no page of its
own). Prints median, 95th percentile and max, over all submissions and over each student's
last. No rate limit (`--every 0`). A benchmark, not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nbgrader.utils import notebook_hash  # noqa: E402

from autograder.course import put_python_on_path, samples  # noqa: E402
from autograder.course.release import release  # noqa: E402
from autograder.course.serve.status import MARK_WITHIN, STATUS_MARK  # noqa: E402
from autograder.lesson import model as lessons  # noqa: E402
from tests.support.courseusers import COURSE_ID, submit_as  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--per-student", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    put_python_on_path()

    lesson = lessons.load(REPO / "assignments" / "backward")
    sample = samples.of(lesson)
    answers = [{}] + [dict(v[0]) for v in sample.CLASS.values()
                      if isinstance(v, tuple) and isinstance(v[0], dict)]
    top = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    course, exchange, work = top / "course", top / "exchange", top / "students"
    released = json.loads(release(course, COURSE_ID, assignment="backward",
                                  exchange=exchange)[0].read_text())
    inbound, feedback = exchange / COURSE_ID / "inbound", exchange / COURSE_ID / "feedback"

    log = (top / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--course", str(course),
                               "--workers", str(args.workers), "--poll", "0.1"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def graded(page: Path) -> bool:
        """A graded page there, not serve's status page ('waiting ...') under the same name."""
        try:
            with page.open("rb") as f:
                return STATUS_MARK not in f.read(MARK_WITHIN)
        except OSError:
            return False

    def page_of(name: str) -> Path:
        secret = (inbound / name / "submission_secret.txt").read_text()
        return feedback / f"{notebook_hash(secret=secret, notebook_id=lesson.notebook_id)}.html"

    try:
        warm = submit_as(exchange, "warm-up", samples.fill(released, sample.CORRECT), work)
        start = time.monotonic()
        while not graded(page_of(warm)):
            if time.monotonic() - start > args.timeout or server.poll() is not None:
                sys.exit(f"serve did not grade the warm-up: see {top / 'serve.log'}")
            time.sleep(0.1)
        print(f"warm-up: the first page {time.monotonic() - start:.1f} s after submit "
              "(the server's first grading)")

        students = [f"student{i:02d}" for i in range(args.students)]
        sent: list[tuple[str, str, float]] = []  # (student, name, when submitted)
        for k in range(args.per_student):
            for i, student in enumerate(students):
                nb = samples.fill(released, {**sample.CORRECT, **answers[(i + k) % len(answers)]})
                name = submit_as(exchange, student, nb, work)
                sent.append((student, name, time.monotonic()))
        burst = sent[-1][2] - sent[0][2]
        pages = {name: page_of(name) for _, name, _ in sent}
        seen: dict[str, float] = {}
        covered: dict[str, float] = {}  # each submission: its page, or a later one's of its student
        while len(covered) < len(sent) and time.monotonic() - sent[-1][2] < args.timeout:
            now = time.monotonic()
            for name, page in pages.items():
                if name not in seen and graded(page):
                    seen[name] = now
            for index, (student, name, _) in enumerate(sent):
                if name not in covered:
                    later = [seen[n] for s, n, _ in sent[index:] if s == student and n in seen]
                    if later:
                        covered[name] = min(later)
            time.sleep(0.05)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    waits = [covered[name] - when for _, name, when in sent if name in covered]
    last = {student: (name, when) for student, name, when in sent}
    last_waits = [covered[n] - w for n, w in last.values() if n in covered]
    entries = [json.loads(line) for line in (course / "serve" / "journal.jsonl").read_text().splitlines()]
    states = {}
    for e in entries:
        states[e["state"]] = states.get(e["state"], 0) + 1
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"average {os.getloadavg()[0]:.1f} at the end; serve --workers {args.workers}")
    print(f"burst: {len(sent)} submissions from {len(students)} students, handed in over "
          f"{burst:.1f} s; journal: {states} (the warm-up included)")
    if len(waits) < len(sent):
        print(f"NOT COVERED within {args.timeout:g} s: {len(sent) - len(waits)} submissions")
    print(f"submit -> feedback available, every submission: median {statistics.median(waits):.1f} s, "
          f"95th percentile {percentile(waits, 95):.1f} s, max {max(waits):.1f} s")
    print(f"submit -> feedback available, each student's last: median "
          f"{statistics.median(last_waits):.1f} s, 95th percentile {percentile(last_waits, 95):.1f} s,"
          f" max {max(last_waits):.1f} s")
    print(f"(the course, the exchange and serve's log: {top})")


if __name__ == "__main__":
    main()
