"""Where a local class is graded: the trusted side of each submission (its program, the truth in
float64, the judging) in processes of its own, so that the grader's process, which reads,
records and hands out the pages, never waits for the interpreter's lock behind them.

A process pool pays for its processes (a fresh Python that imports torch) once per class, so a
class smaller than `PROCESSES_FROM` submissions per worker is graded in threads of this process,
as `serve`'s rounds are. Each grading process starts its own warm workers for the students'
processes when it starts (`warm_up`), while this one prepares the class.

A grading process that dies (the grader's own failure: never a student's code, which runs in a
process of its own below it) costs nothing: the pool is given up, what it held is graded again
in threads here, and so is the rest of the class.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

#: Submissions per worker from which a class is graded in processes rather than threads.
PROCESSES_FROM = 20


def _start(lesson_folder: str) -> None:
    """A grading process's first step: its warm workers, and torch's first autograd pass."""
    from ..engine import warm_up

    warm_up(lesson_folder)


#: What the grading processes import before they are forked (once, not once each).
PRELOAD = ["autograder.engine", "autograder.judge.judging", "autograder.judge.scoring", "autograder.judge.devices",
           "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.colors"]


def _context():
    """multiprocessing's forkserver: a fresh Python (none of this process's threads or open
    gradebook) that imports torch, the engine and matplotlib once; each grading process is
    forked from it."""
    context = get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class GradingPool(Executor):
    """`workers` grading processes (threads where the class is small), with a fallback to
    threads where the processes break; `submit(fn, *args)` as any executor, `again(future)` for
    a future whose process died."""

    def __init__(self, workers: int, class_size: int, lesson_folder: str) -> None:
        self.workers = workers
        self.threads: ThreadPoolExecutor | None = None
        self.processes: ProcessPoolExecutor | None = None
        self.calls: dict[Future, tuple] = {}
        if class_size >= PROCESSES_FROM * workers:
            self.processes = ProcessPoolExecutor(workers, mp_context=_context(),
                                                 initializer=_start, initargs=(lesson_folder,))
        else:
            self.threads = ThreadPoolExecutor(workers)

    @property
    def in_processes(self) -> bool:
        return self.processes is not None

    def _to_threads(self) -> ThreadPoolExecutor:
        if self.processes is not None:
            self.processes.shutdown(wait=False, cancel_futures=True)
            self.processes = None
        if self.threads is None:
            self.threads = ThreadPoolExecutor(self.workers)
        return self.threads

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self.processes is not None:
            try:
                future = self.processes.submit(fn, *args, **kwargs)
                self.calls[future] = (fn, args, kwargs)
                return future
            except BrokenProcessPool:
                pass
        return self._to_threads().submit(fn, *args, **kwargs)

    def died(self, future: Future) -> bool:
        """Whether `future` failed because its grading process died (not because of its work)."""
        return future in self.calls and isinstance(future.exception(), BrokenProcessPool)

    def again(self, future: Future) -> Future:
        """The call of `future`, whose process died, submitted again (in a thread)."""
        fn, args, kwargs = self.calls.pop(future)
        return self._to_threads().submit(fn, *args, **kwargs)

    def forget(self, future: Future) -> None:
        self.calls.pop(future, None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for pool in (self.processes, self.threads):
            if pool is not None:
                pool.shutdown(wait=wait, cancel_futures=cancel_futures)
