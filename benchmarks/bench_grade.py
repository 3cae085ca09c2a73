"""Benchmark: stock `nbgrader autograde` against `autograder grade`, and a student's waits.

    python benchmarks/bench_grade.py [--sizes 144,1000] [--lessons backward,classifier]
                                     [--stock-sample K] [--repeat R] [--workers W]
                                     [--matrix-up-to N] [--postgres] [--dask] [--profile]
                                     [--skip-stock] [--skip-user]

In one run, with the machine and the date:
- a student's waits, medians of R runs: `autograder check` of one notebook and the first
  self-check of a kernel (and a later one), against a bare `import torch` measured the same way;
- a class of each size handing in each lesson, graded by stock nbgrader (its stock
  configuration: each notebook runs in a Jupyter kernel with its own test cells, our
  in-notebook self-check), by `autograder grade` as root on SQLite, and, for the sizes up to
  `--matrix-up-to`, as an ordinary user (made here when run as root: the sandbox of user
  namespaces, warm workers included; again with subordinate uids where `newuidmap` is
  installed), on a PostgreSQL gradebook (`--postgres`: a server started here, tests/support/postgres.py)
  and on a Dask cluster of two workers (`--dask`), in seconds per notebook and ratios;
- where the time goes (`--profile`): one class graded in this process, the CPU seconds of each
  kind of process (this one, the grading processes, the students' processes, the feedback
  pages) and the grader's own top functions (cProfile).

`--stock-sample K` grades only the first K submissions of each lesson the stock way (stock
nbgrader takes the same time for each notebook whatever the class size: a fresh kernel each, one
after another), so that a class is measured in minutes; the output says so. A benchmark, not a
test: the numbers depend on the machine; docs/performance.md quotes them with machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.course import put_python_on_path, samples
from autograder.course import release as release_module
from autograder.course.release import release
from autograder.lesson import model as lessons

REPO = Path(__file__).resolve().parents[1]

def submissions(n: int, lesson_id: str) -> dict[str, dict[str, str]]:
    """N students: every other one right, the rest each a member of the lesson's sample class in
    turn (its typical mistakes, a cheat among them), unreadable notebooks left out."""
    sample = samples.of(lessons.find(lesson_id))
    others = [answers for answers, _ in (m for m in sample.CLASS.values() if isinstance(m, tuple))
              if answers]
    out = {}
    for i in range(n):
        answers = dict(sample.CORRECT)
        if i % 2:
            answers.update(others[(i // 2) % len(others)])
        out[f"student{i:04d}"] = answers
    return out


def make_course(root: Path, size: int, lesson_ids: list[str], stock: bool,
                db: str | None = None, name: str | None = None) -> Path:
    """A released course (`lesson_ids`) with a class of `size` handing in each lesson; stock:
    nbgrader's configuration, without our preprocessor."""
    course = root / (name or ("stock" if stock else "ours"))
    release(course, db=db)
    config = course / "nbgrader_config.py"  # one seed for every course: the same inputs, so
    config.write_text(re.sub(r"c\.IsolatedCheck\.seed = \d+",  # the same scores
                             f"c.IsolatedCheck.seed = {BENCH_SEED}", config.read_text()))
    if stock:  # nbgrader's stock configuration: release's, without our preprocessor
        (course / "nbgrader_config.py").write_text(
            release_module.CONFIG.replace(release_module.AUTOGRADE, "").format(
                course_id="backprop", db_url=db or release_module.SQLITE))
    for lesson_id in lesson_ids:
        lesson = lessons.find(lesson_id)
        nb = json.loads((course / "release" / lesson_id / lesson.notebook).read_text())
        for student, answers in submissions(size, lesson_id).items():
            samples.write(samples.fill(nb, answers),
                          course / "submitted" / student / lesson_id / lesson.notebook)
    return course


def scores_of(course: Path) -> dict[tuple[str, str], float]:
    """(lesson, student) -> score, as nbgrader's export writes them."""
    import csv

    subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=course, capture_output=True)
    with open(course / "grades.csv") as f:
        return {(row["assignment"], row["student_id"]): float(row["raw_score"] or 0)
                for row in csv.DictReader(f)}


def median_seconds(cmd: list[str], repeat: int, cwd: Path | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return statistics.median(times)


#: A kernel's first self-check and a later one: the notebook imported torch in an earlier cell.
SELF_CHECK = ("import sys, time, torch\n"
              "def lin_grad(inp, out, w, b):\n"
              "    inp.g = out.g @ w.t()\n    w.g = inp.t() @ out.g\n    b.g = out.g.sum(0)\n"
              "start = time.perf_counter()\n"
              "from autograder.selfcheck import self_check\n"
              "self_check('lin_grad', lin_grad)\n"
              "first = time.perf_counter() - start\n"
              "start = time.perf_counter()\n"
              "self_check('lin_grad', lin_grad)\n"
              "print(first, time.perf_counter() - start, file=sys.stderr)\n")


def student_waits(repeat: int) -> None:
    source = REPO / "assignments" / "backward" / "backward.ipynb"
    torch_alone = median_seconds([sys.executable, "-c", "import torch"], repeat)
    check = median_seconds([sys.executable, "-m", "autograder", "check", "--json", str(source)],
                           repeat)
    firsts, laters = [], []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", SELF_CHECK], capture_output=True, text=True)
        first, later = map(float, done.stderr.strip().splitlines()[-1].split())
        firsts.append(first)
        laters.append(later)
    first, later = statistics.median(firsts), statistics.median(laters)
    print(f"\na student's waits (medians of {repeat}):")
    print(f"  bare `python -c 'import torch'`:   {torch_alone:6.2f} s")
    print(f"  `autograder check` of a notebook:  {check:6.2f} s = {check / torch_alone:.2f}x "
          "import torch (target <= 1.8x)")
    print(f"  first self-check in a kernel:      {first:6.3f} s = {first / torch_alone:.2f}x "
          "import torch (target <= 0.5x)")
    print(f"  a later self-check:                {later * 1000:6.1f} ms (target <= 50 ms)")


def grade_seconds(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", default="16,144", help="class sizes, comma-separated")
    parser.add_argument("--lessons", default="backward", help="the lessons each class hands in")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--stock-sample", type=int, default=32,
                        help="grade at most the first K submissions of each lesson the stock way")
    parser.add_argument("--repeat", type=int, default=5, help="runs per student-wait figure")
    parser.add_argument("--matrix-up-to", type=int, default=144,
                        help="the ordinary-user, PostgreSQL and Dask rows for sizes up to this")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--skip-user", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="also grade on PostgreSQL")
    parser.add_argument("--dask", action="store_true", help="also grade on a Dask LocalCluster")
    parser.add_argument("--profile", action="store_true", help="where the time goes")
    args = parser.parse_args()
    put_python_on_path()
    sys.path.insert(0, str(REPO))
    sizes = [int(s) for s in args.sizes.split(",")]
    lesson_ids = args.lessons.split(",")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; lessons: "
          f"{', '.join(lesson_ids)}; {args.workers} workers")
    student_waits(args.repeat)

    with contextlib.ExitStack() as stack:
        users = []  # (the row's name, the user's environment)
        if not args.skip_user:
            from tests.support.userenv import ordinary_user, why_no_subordinate_ids, why_not

            reason = why_not(BENCH_USER)
            if reason is None:
                users.append(("ordinary user", stack.enter_context(ordinary_user(BENCH_USER))))
                if why_no_subordinate_ids() is None:
                    users.append(("ordinary user, subordinate uids", stack.enter_context(
                        ordinary_user(BENCH_SUB_USER, subordinate=True))))
                else:
                    print(f"\nno run with subordinate uids: {why_no_subordinate_ids()}")
            else:
                print(f"\nno ordinary-user run: {reason}")
        server = None
        if args.postgres:
            from tests.support.postgres import postgres_server
            from tests.support.postgres import why_not as no_postgres

            if (reason := no_postgres()) is None:
                server = stack.enter_context(postgres_server())
            else:
                print(f"\nno PostgreSQL run: {reason}")
        rows = []
        for size in sizes:
            rows += grade_class(size, lesson_ids, args, users, server)
        notebooks = {size: size * len(lesson_ids) for size in sizes}
        print(f"\n{'class':>5}  {'how':<66} {'s/notebook':>10} {'vs stock':>9} {'total':>8}")
        for size, how, each, base in rows:
            ratio = f"{base / each:8.1f}x" if base else "        -"
            print(f"{size:>5}  {how:<66} {each:10.3f} {ratio:>9} {each * notebooks[size]:7.0f}s")
        print(f"\nEach student hands in {len(lesson_ids)} notebook(s), one per lesson. Stock: at "
              "most the first --stock-sample submissions of each lesson\ngraded the stock way (its "
              "time per notebook does not depend on the class size). Ours grade every submission,"
              "\nfeedback pages and grades included.")
        if args.profile:
            profile(min(sizes), lesson_ids, args.workers)


STOCK: dict[str, float] = {}  # "each": stock's seconds per notebook, measured once


def grade_class(size: int, lesson_ids: list[str], args, users, server) -> list[tuple]:
    """The rows of one class size: stock, root on SQLite, then the matrix."""
    rows = []
    matrix = size <= args.matrix_up_to
    with tempfile.TemporaryDirectory(prefix="autograder-bench-") as tmp:
        root = Path(tmp)
        stock_each = STOCK.get("each")
        if not args.skip_stock and stock_each is None:  # once: it does not depend on the size
            sample = min(args.stock_sample, size)
            stock = make_course(root, sample, lesson_ids, stock=True)
            seconds = sum(grade_seconds([sys.executable, "-m", "nbgrader", "autograde", lesson_id],
                                        stock) for lesson_id in lesson_ids)
            stock_each = STOCK["each"] = seconds / (sample * len(lesson_ids))
            rows.append((size, f"stock nbgrader autograde ({sample} per lesson graded)",
                         stock_each, None))
        grade = ["-m", "autograder", "grade", "--course", "COURSE", "--workers", str(args.workers)]

        def ours(course: Path, how: str, command=None) -> dict:
            cmd = [sys.executable, *grade]
            cmd[cmd.index("COURSE")] = str(course)
            seconds = grade_seconds(command(cmd) if command else cmd, course)
            rows.append((size, how, seconds / (size * len(lesson_ids)), stock_each))
            return scores_of(course)

        scores = ours(make_course(root, size, lesson_ids, stock=False), "autograder grade, root, "
                      "SQLite, local workers")
        if not matrix:
            return rows
        for how, env in users:
            work = env.workdir(f"class-{size}")
            mine = make_course(work, size, lesson_ids, stock=False)
            subprocess.run(["chown", "-R", f"{env.user}:{env.user}", str(work)], check=True)
            got = ours(mine, f"autograder grade, {how}, SQLite, local workers",
                       lambda cmd, env=env, mine=mine: env.command([env.python, *cmd[1:]],
                                                                 cwd=mine))
            if got != scores:
                print(f"WARNING: {how}: the scores differ from root's at {size}")
        if server is not None:
            url = server.create_database()
            got = ours(make_course(root, size, lesson_ids, stock=False, db=url, name="pg"),
                       "autograder grade, root, PostgreSQL, local workers")
            if got != scores:
                print(f"WARNING: PostgreSQL's scores differ from SQLite's at {size}")
        if args.dask:
            from dask.distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                course = make_course(root, size, lesson_ids, stock=False, name="dask")
                got = ours(course, "autograder grade, root, SQLite, Dask (2 workers)",
                           lambda cmd: [*cmd, "--scheduler", cluster.scheduler_address])
            if got != scores:
                print(f"WARNING: Dask's scores differ from the local ones at {size}")
    return rows


def profile(size: int, lesson_ids: list[str], workers: int) -> None:
    """One class graded in this process: CPU seconds per kind of process (polled), and the
    grader's own process's top functions."""
    import cProfile
    import pstats
    import threading

    import psutil

    from autograder.course.grade import grade_course

    seen: dict[int, tuple[str, float]] = {}
    done = threading.Event()
    me = psutil.Process()

    def poll() -> None:
        while not done.is_set():
            for p in me.children(recursive=True):
                try:
                    t = p.cpu_times()
                    seen[p.pid] = (" ".join(p.cmdline()), t.user + t.system)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    with tempfile.TemporaryDirectory(prefix="autograder-profile-") as tmp:
        course = make_course(Path(tmp), size, lesson_ids, stock=False)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        own = time.process_time()
        start = time.perf_counter()
        profiler = cProfile.Profile()
        profiler.runcall(grade_course, course, workers=workers)
        wall = time.perf_counter() - start
        own = time.process_time() - own
        done.set()
        poller.join()
    kinds: dict[str, list] = {}
    for cmd, cpu in seen.values():
        kind = ("students' processes (warm parents and their children)"
                if "sandbox/forkserver.py" in cmd else
                "grading processes (and their forkserver)" if "forkserver" in cmd else
                "feedback pages" if "spawn_main" in cmd else "other")
        kinds.setdefault(kind, [0, 0.0])
        kinds[kind][0] += 1
        kinds[kind][1] += cpu
    notebooks = size * len(lesson_ids)
    print(f"\nwhere the time goes: a class of {size} ({notebooks} notebooks) graded in "
          f"{wall:.1f} s (under cProfile), CPU seconds per notebook:")
    print(f"  {'the grader (reads, records, hands out pages)':<58} {own / notebooks:.3f}")
    for kind, (count, cpu) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind + f' x{count}':<58} {cpu / notebooks:.3f}")
    print("  (students' processes that ended between two polls are missed)")
    print("\nthe grader's own top functions (cumulative, cProfile):")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(r"autograder|nbgrader/(converters|preprocessors|api)", 14)


BENCH_SEED = 20191  # the course seed of every class graded here
BENCH_USER, BENCH_SUB_USER = "autograder-bench", "autograder-bench-subid"


if __name__ == "__main__":
    main()
