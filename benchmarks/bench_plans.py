"""Draw many plans per lesson: every one must build, its reference must pass the cross-check, and
the reference, run as a student's answer (in the case's dtype, on the inputs as sent), must pass
the values comparison of its own target. A failure is a seed that a right answer, or the grader,
would stumble on (docs/architecture.md, "Reference cross-check").

Each plan is drawn whole (every case, so its inputs are a grading run's), and judged where the
cross-check runs, the CPU cases. A float64 case's inputs as sent are the cross-check's own, which
holds the reference to a tenth of the tolerance the student's comparison allows: only the coarser
cases' comparison is run again here.

    .venv/bin/python benchmarks/bench_plans.py [--plans 100000] [--workers 2] [--lessons backward,classifier]

Seeds are 0 .. plans-1 (a course's seeds are drawn below 2**31, `resolve`); prints the failures
(lesson, seed, what) and, per lesson, the count and time; exit 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def failures(lesson_id: str, seeds: range) -> list[tuple[int, str]]:
    import torch

    from autograder.judge import problems
    from autograder.judge.compare import compare_values
    from autograder.judge.plan import build_plan, reference_gradients
    from autograder.lesson import model as lessons

    torch.set_num_threads(1)
    lesson = lessons.load(ROOT / "assignments" / lesson_id)
    solutions = lesson.reference()
    found = []
    for seed in seeds:
        try:
            plan = build_plan(lesson, seed, solutions=solutions, lanes=("cpu",))
        except Exception as exc:  # noqa: BLE001 - a failure to count, with its seed
            found.append((seed, f"the plan fails: {type(exc).__name__}: {exc}"))
            continue
        found += [(seed, note) for note in getattr(plan, "reference_problems", [])]
        for planned in plan.calls:
            if planned.call.kind != "function" or planned.case.dtype == "float64":
                continue
            sent = {k: v.to(problems.DTYPES[planned.case.dtype]) if v.is_floating_point() else v
                    for k, v in planned.inputs.items()}
            got = reference_gradients(solutions, planned.call, sent)
            for name in planned.expected:
                verdict = compare_values(planned.target, name, got[name], planned)
                if not verdict.passed:
                    found.append((seed, f"{planned.call.id}: {verdict.message}"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=100_000, help="plans per lesson")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lessons", default="backward,classifier")
    parser.add_argument("--chunk", type=int, default=500, help="plans per task")
    args = parser.parse_args(argv)
    ids = args.lessons.split(",")
    start = time.monotonic()
    drawn = dict.fromkeys(ids, 0)
    failed: dict[str, set[int]] = {i: set() for i in ids}
    with ProcessPoolExecutor(args.workers) as pool:
        # The lessons' chunks interleaved, each line a running count: a run cut short still says
        # how many plans of each lesson it drew.
        tasks = {pool.submit(failures, lesson_id, range(i, min(i + args.chunk, args.plans))):
                 (lesson_id, min(args.chunk, args.plans - i))
                 for i in range(0, args.plans, args.chunk) for lesson_id in ids}
        for task in as_completed(tasks):
            lesson_id, count = tasks[task]
            drawn[lesson_id] += count
            for seed, what in task.result():
                if seed not in failed[lesson_id]:
                    print(f"FAIL {lesson_id} seed {seed}: {what}", flush=True)
                failed[lesson_id].add(seed)
            print(f"{time.monotonic() - start:.0f} s: "
                  + ", ".join(f"{i} {drawn[i]} plans, {len(failed[i])} failed" for i in ids),
                  flush=True)
    for lesson_id in ids:
        print(f"{lesson_id}: {drawn[lesson_id]} plans, {len(failed[lesson_id])} with a failure")
    print(f"{time.monotonic() - start:.0f} s, {args.workers} workers")
    return 1 if any(failed.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
