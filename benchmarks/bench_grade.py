"""Benchmark: stock `nbgrader autograde` against `autograder grade`, and a student's waits.

    python benchmarks/bench_grade.py [--sizes 16,144] [--stock-sample K] [--repeat R]
                                     [--workers W] [--skip-user] [--dask]

In one run:
- a student's waits, medians of R runs: `autograder check` of one notebook and the first
  self-check of a kernel (and a later one), against a bare `import torch` measured the same way;
- a class of each size, graded by stock nbgrader (its stock configuration: each notebook runs
  in a Jupyter kernel with its own test cells, our in-notebook self-check), by `autograder grade`
  as root and by `autograder grade` as an ordinary user (made here when run as root: the
  sandbox of user namespaces, warm workers included), twice where `newuidmap` is installed:
  without subordinate ids (the student is the nobody of a nested user namespace) and with a
  range of them (the student runs as one, with a process limit), in seconds per notebook and
  ratios.

`--stock-sample K` grades only the first K submissions of a class the stock way (stock nbgrader
takes the same time for each notebook whatever the class size: a fresh kernel each, one after
another), so that a class of 144 is measured in minutes; the output says so. A benchmark, not a
test: the numbers depend on the machine; the README quotes them with machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import lesson as lessons
from autograder.course import put_python_on_path, samples
from autograder.course import release as release_module
from autograder.course.release import release

REPO = Path(__file__).resolve().parents[1]

WRONG = {
    "mse_grad": "def mse_grad(inp, targ):\n    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n",
    "relu_grad": "def relu_grad(inp, out):\n    inp.g = (inp > 0).to(inp.dtype)\n",
    "lin_grad": "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n    w.g = inp.t() @ out.g\n"
                "    b.g = out.g.mean(0)\n",
}


def submissions(n: int) -> dict[str, dict[str, str]]:
    """N students: every other one correct, the rest with one typical mistake each."""
    wrong = list(WRONG.items())
    out = {}
    for i in range(n):
        answers = dict(samples.of(lessons.find("backward")).CORRECT)
        if i % 2:
            target, code = wrong[(i // 2) % len(wrong)]
            answers[target] = code
        out[f"student{i:04d}"] = answers
    return out


def make_course(root: Path, students: dict[str, dict[str, str]], stock: bool) -> Path:
    course = root / ("stock" if stock else "ours")
    released = release(course, assignment="backward")[0]
    if stock:  # nbgrader's stock configuration: release's, without our preprocessor
        (course / "nbgrader_config.py").write_text(
            release_module.CONFIG.replace(release_module.AUTOGRADE, "").format(course_id="backprop"))
    nb = json.loads(released.read_text())
    for student, answers in students.items():
        samples.write(samples.fill(nb, answers),
                      course / "submitted" / student / "backward" / "backward.ipynb")
    return course


def scores_of(course: Path) -> dict[str, float]:
    import csv

    subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=course, capture_output=True)
    with open(course / "grades.csv") as f:
        return {row["student_id"]: float(row["raw_score"] or 0) for row in csv.DictReader(f)}


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
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--stock-sample", type=int, default=32,
                        help="grade at most the first K submissions of a class with stock nbgrader")
    parser.add_argument("--repeat", type=int, default=5, help="runs per student-wait figure")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--skip-user", action="store_true")
    parser.add_argument("--dask", action="store_true", help="also grade on a Dask LocalCluster")
    args = parser.parse_args()
    put_python_on_path()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    student_waits(args.repeat)

    users = []  # (the row's name, the context that makes the user)
    if not args.skip_user:
        sys.path.insert(0, str(REPO))
        from tests.userenv import ordinary_user, why_no_subordinate_ids, why_not

        reason = why_not(BENCH_USER)
        if reason is None:
            users.append(("autograder grade, ordinary user", ordinary_user(BENCH_USER)))
            if why_no_subordinate_ids() is None:
                users.append(("autograder grade, ordinary user, subordinate uids",
                              ordinary_user(BENCH_SUB_USER, subordinate=True)))
            else:
                print(f"\nno run with subordinate uids: {why_no_subordinate_ids()}")
        else:
            print(f"\nno ordinary-user run: {reason}")
    envs = [(how, user.__enter__()) for how, user in users]
    try:
        rows = []
        for size in sizes:
            students = submissions(size)
            with tempfile.TemporaryDirectory(prefix="autograder-bench-") as tmp:
                root = Path(tmp)
                stock_each = None
                if not args.skip_stock:
                    sample = min(args.stock_sample, size)
                    stock = make_course(root, dict(list(students.items())[:sample]), stock=True)
                    seconds = grade_seconds([sys.executable, "-m", "nbgrader", "autograde",
                                             "backward"], stock)
                    stock_each = seconds / sample
                    rows.append((size, f"stock nbgrader autograde ({sample} graded)", stock_each,
                                 None))
                ours = make_course(root, students, stock=False)
                grade = ["-m", "autograder", "grade", "--course", str(ours),
                         "--workers", str(args.workers)]
                each = grade_seconds([sys.executable, *grade], ours) / size
                rows.append((size, "autograder grade, root", each, stock_each))
                scores = scores_of(ours)
                for how, env in envs:
                    work = env.workdir(f"class-{size}")
                    mine = make_course(work, students, stock=False)
                    subprocess.run(["chown", "-R", f"{env.user}:{env.user}", str(work)], check=True)
                    grade[4] = str(mine)
                    each = grade_seconds(env.command([env.python, *grade], cwd=mine), mine) / size
                    rows.append((size, how, each, stock_each))
                    if scores_of(mine) != scores:
                        print(f"WARNING: {how}: the scores differ from root's at {size}: "
                              f"{scores_of(mine)} against {scores}")
                if args.dask:
                    rows.append((size, "autograder grade on Dask (2 workers)",
                                 dask_seconds(ours) / size, stock_each))
                    if scores_of(ours) != scores:
                        print(f"WARNING: Dask's scores differ from the local ones at {size}")
        print(f"\n{'class':>5}  {'how':<50} {'s/notebook':>10} {'vs stock':>9}")
        for size, how, each, base in rows:
            ratio = f"{base / each:8.1f}x" if base else "        -"
            print(f"{size:>5}  {how:<50} {each:10.3f} {ratio:>9}")
        print("\nstock: at most the first --stock-sample submissions of a class graded the stock "
              "way (its time per notebook\ndoes not depend on the class size). Ours grade every "
              "submission, feedback pages and grades included.")
    finally:
        for _, user in reversed(users):
            user.__exit__(None, None, None)


BENCH_USER, BENCH_SUB_USER = "autograder-bench", "autograder-bench-subid"


def dask_seconds(course: Path) -> float:
    from dask.distributed import Client, LocalCluster

    shutil.rmtree(course / "autograded", ignore_errors=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        return grade_seconds([sys.executable, "-m", "autograder", "grade", "--course", str(course),
                              "--scheduler", cluster.scheduler_address], course)


if __name__ == "__main__":
    main()
