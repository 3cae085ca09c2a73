"""Benchmark: stock `nbgrader autograde` against `autograder grade`, on the same submissions.

    python benchmarks/bench_grade.py [--students N] [--workers W] [--stock-sample K]
                                     [--skip-stock] [--skip-dask]

Builds two copies of one course with N submissions (a mix of correct and typical wrong
notebooks). The stock copy keeps nbgrader's stock configuration: each notebook runs in a Jupyter
kernel with its own test cells (our in-notebook self-check). The other is graded by
`autograder grade`, with local workers, then again on a Dask LocalCluster of 2 workers.
Prints seconds per notebook, the ratios, and the peak memory of any one process. A benchmark,
not a test: numbers depend on the machine; the README quotes them with machine and date.

`--stock-sample K` grades only the first K submissions the stock way (stock nbgrader takes the
same time for each notebook whatever the class size: a fresh kernel each, one after another),
so that a large class can be measured in minutes; the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import spec
from autograder.course import put_python_on_path, samples
from autograder.course import release as release_module
from autograder.course.release import release

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
        answers = dict(samples.CORRECT)
        if i % 2:
            target, code = wrong[(i // 2) % len(wrong)]
            answers[target] = code
        out[f"student{i:04d}"] = answers
    return out


def make_course(root: Path, students: dict[str, dict[str, str]], stock: bool) -> Path:
    course = root / ("stock" if stock else "ours")
    released = release(course)
    if stock:  # nbgrader's stock configuration: release's, without our preprocessor
        (course / "nbgrader_config.py").write_text(
            release_module.CONFIG.replace(release_module.AUTOGRADE, "").format(course_id="backprop"))
    nb = json.loads(released.read_text())
    for student, answers in students.items():
        samples.write(samples.fill(nb, answers),
                      course / "submitted" / student / spec.ASSIGNMENT_ID / spec.NOTEBOOK_NAME)
    return course


#: Runs a command, then prints the peak resident set (KiB) of any one process of its tree: a
#: fresh process, so that its children's maximum is this command's alone.
PEAK = ("import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(done.stdout[-2000:] + done.stderr[-2000:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(done.returncode)\n")


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds, and the peak RSS (MiB) of any one process the command ran."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, *cmd], cwd=cwd, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) // 1024


def scores_of(course: Path) -> dict[str, float]:
    import csv

    subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=course, capture_output=True)
    with open(course / "grades.csv") as f:
        return {row["student_id"]: float(row["raw_score"] or 0) for row in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--stock-sample", type=int, default=None,
                        help="grade only the first K submissions with stock nbgrader")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    put_python_on_path()
    autograder = [sys.executable, "-m", "autograder"]

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"submissions: {args.students} (half correct, half with one typical mistake)")
    with tempfile.TemporaryDirectory(prefix="autograder-bench-") as tmp:
        root = Path(tmp)
        students = submissions(args.students)
        results = {}
        sample = min(args.stock_sample or args.students, args.students)
        if not args.skip_stock:
            stock = make_course(root, dict(list(students.items())[:sample]), stock=True)
            nbgrader = [sys.executable, "-m", "nbgrader"]
            seconds, peak = timed([*nbgrader, "autograde", spec.ASSIGNMENT_ID], stock)
            results["stock nbgrader autograde"] = (seconds / sample, peak, scores_of(stock))
            # What `autograder grade` also writes: feedback pages and grades.csv.
            more, more_peak = timed([*nbgrader, "generate_feedback", spec.ASSIGNMENT_ID], stock)
            results["stock autograde + generate_feedback + export"] = (
                (seconds + more + timed([*nbgrader, "export"], stock)[0]) / sample,
                max(peak, more_peak), scores_of(stock))
        ours = make_course(root, students, stock=False)
        seconds, peak = timed([*autograder, "grade", "--course", str(ours),
                               "--workers", str(args.workers)], ours)
        results[f"autograder grade --workers {args.workers}"] = (seconds / args.students, peak,
                                                                 scores_of(ours))
        if not args.skip_dask:
            from dask.distributed import Client, LocalCluster

            shutil.rmtree(ours / "autograded", ignore_errors=True)
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                seconds, _ = timed([*autograder, "grade", "--course", str(ours), "--scheduler",
                                    cluster.scheduler_address], ours)
                peaks = client.run(lambda: max(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
            peak = max(peaks.values()) // 1024
            results["autograder grade on Dask (LocalCluster, 2 workers)"] = (
                seconds / args.students, peak, scores_of(ours))

        base = results.get("stock nbgrader autograde")
        full = results.get("stock autograde + generate_feedback + export")
        print(f"\n{'how':<52} {'s/notebook':>10} {'vs stock':>9} {'vs stock+':>9} {'peak MiB':>9}")
        for how, (each, peak, _) in results.items():
            ratio = f"{base[0] / each:8.1f}x" if base else "       -"
            ratio_full = f"{full[0] / each:8.1f}x" if full else "       -"
            print(f"{how:<52} {each:10.3f} {ratio:>9} {ratio_full:>9} {peak:9d}")
        if base and sample < args.students:
            print(f"\nstock: measured on the first {sample} of the {args.students} submissions "
                  "(its time per notebook does not depend on the class size)")
        print("\nvs stock: against `nbgrader autograde` alone; vs stock+: against autograde, "
              "generate_feedback and export,\nwhich write what `autograder grade` writes. peak MiB: "
              "the largest resident set of any one process.")
        ours = [v[2] for k, v in results.items() if not k.startswith("stock")]
        print("scores: " + ("the same in every run of ours" if all(o == ours[0] for o in ours)
                            else "DIFFERENT between runs of ours") +
              "; stock's self-check cells give all or nothing per target, ours partial credit")


if __name__ == "__main__":
    main()
