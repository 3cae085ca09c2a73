"""The graded process: runs the program the grader built (`program.py`), then the calls it asks for.

Started inside the sandbox with two channels: the grader's frames arrive on `job_fd` (standard
input), ours go out on `channel_fd`; standard output and error are the student's. It imports
the standard library, torch, RestrictedPython and `autograder.wire` / `autograder.language` /
`autograder.untrusted`: nothing of the trusted side, no reference solution, no hidden answer.

1. The job, whole, before any student code runs: the run's token, the cells, which to skip, the
   device, the lesson's answer language; then the work, the calls and their inputs.
2. The process forks at once, before anything is built for the answers (so that the parent,
   which only relays, shares its pages and the child copies on write only what it writes). The
   child never holds the token nor the grader's channel: it writes its frames to its parent over
   a pipe, marked with a token of zeros. The parent keeps the token and the channel, reads the
   child's frames (each within the wire's caps), and passes on the kinds a run sends, with the
   token; when the child ends, the parent ends as it did (a signal as 128 + its number).
   In the child, standard input then reads nothing more, autograd refuses for the rest of the
   process (`calls.refuse_autograd_for_good`), the grader's own package can no longer be
   imported, and every cell is compiled for the answer language's guards (`compiler.py`,
   `guards.py`).
3. In the child: each cell, with a progress frame before it (so that the grader knows where a
   process that died or hung was); then the cells' errors; per target, its results; then done.

Nothing written here is believed beyond that: the trusted side checks every frame against its
caps and judges the tensors itself.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script (`python -I runner.py`): find the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import builtins  # noqa: E402
import json  # noqa: E402

from autograder import language, wire
from autograder.answer import compiler
from autograder.untrusted import calls, guards  # noqa: E402

PR_SET_DUMPABLE = 4


def _not_dumpable() -> None:
    """No /proc/self/mem, no ptrace, for this process and its forks: the token stays unread."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the other layers remain
        pass


def _sender(fd: int, token: bytes):
    """`send(kind, meta, blob)` made of functions bound now, before any student code runs."""
    write, frame = os.write, wire.frame

    def send(kind: bytes, meta: object, blob: bytes = b"") -> None:
        data = memoryview(frame(token, kind, meta, blob))
        try:
            while data:
                data = data[write(fd, data):]
        except OSError:
            pass

    return send


def _no_debuggers() -> None:
    """A `breakpoint()` or `pdb.set_trace()` left in an answer does nothing here: there is no
    one at the keyboard, and standard input is the grader's channel."""
    sys.breakpointhook = lambda *args, **kwargs: None
    os.environ["PYTHONBREAKPOINT"] = "0"
    try:
        import pdb
    except ImportError:
        return
    pdb.set_trace = lambda *args, **kwargs: None
    pdb.Pdb.set_trace = lambda self, *args, **kwargs: None


def compile_cells(cells: list[dict], guarded: bool = True,
                  compiled: dict[int, object] | None = None) -> list[tuple[dict, object]]:
    """Each cell compiled for the guards (before any student code runs): (cell, code), or (cell,
    the error to report) where it does not compile. `compiled` is what the grader compiled for
    this job (`compiler.compiled_cells`), where it did; a cell it lacks is compiled here.
    Unguarded (the sandbox's own tests only), compiled as Python compiles it."""
    out = []
    for cell in cells:
        if not guarded:
            try:
                out.append((cell, builtins.compile(cell["source"], f"<{cell['name']}>", "exec")))
            except SyntaxError as exc:
                out.append((cell, calls.describe_exception(exc)))
            continue
        code = (compiled or {}).get(cell["index"])
        out.append((cell, compiler.compile_cell(cell["source"], cell["name"])
                    if code is None else code))
    return out


def run_cells(cells: list[tuple[dict, object]], namespace: dict, send) -> dict[str, dict]:
    """Run each compiled cell in order; an error (SystemExit included) stops that cell only."""
    errors: dict[str, dict] = {}
    exec_, describe, PROGRESS = builtins.exec, calls.describe_exception, wire.PROGRESS
    for cell, code in cells:
        send(PROGRESS, {"step": "cell", "index": cell["index"]})
        if isinstance(code, dict):  # it did not compile
            errors[str(cell["index"])] = code
            continue
        try:
            exec_(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - a cell must never end the run
            errors[str(cell["index"])] = describe(exc)
    return errors


def _forget_the_grader(job_fd: int) -> None:
    """Before any student code: nothing left to read on standard input (the job came whole),
    and the grader's own package no longer importable (what the runner needs is bound)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, job_fd, inheritable=False)
    os.close(null)
    here = os.path.dirname(os.path.abspath(__file__))  # `python -I runner.py` put it on the path
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    for name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _NoGrader())
    sys.path_importer_cache.clear()


class _NoGrader:
    """An import finder that refuses the grader's package (its folder may share site-packages
    with torch, so the path itself stays)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in ("autograder", "runner", "calls", "stand_in"):
            raise ImportError(f"{name} cannot be imported while an answer is graded")
        return None


#: The child's frames to its parent carry this token: it is no secret (the parent's pipe is the
#: child's alone), and the child never holds the run's.
CHILD_TOKEN = b"\0" * wire.TOKEN_BYTES
#: The kinds of frame the parent passes on.
RELAYED = frozenset({wire.PROGRESS, wire.CELLS, wire.RESULTS, wire.DONE})


def main(job_fd: int = 0, channel_fd: int | None = None) -> None:
    job = wire.read_frame(job_fd)  # before any student code: it carries the token
    token, spec = job.token, job.meta
    fd = spec["channel_fd"] if channel_fd is None else channel_fd
    for own in (job_fd, fd):
        os.set_inheritable(own, False)  # a program the student starts gets neither channel
    _not_dumpable()  # before the fork: neither process can be read or traced
    try:  # the whole job, the work and its inputs too, before any student code runs
        work = wire.read_frame(job_fd, token)
    except (EOFError, ValueError):
        os._exit(3)
    # The fork comes first, before anything is built for the answers: the parent only relays
    # (it touches few pages, so the child copies on write only what it writes itself).
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        del job, work, spec
        _relay(read_end, _sender(fd, token), pid)
    os.close(read_end)
    os.close(fd)
    targets, blob, code = work.meta["targets"], work.blob, job.blob
    token = job = work = None  # noqa: F841 - what this frame held is gone from the child
    _child(job_fd, spec, targets, blob, code, write_end)


def _child(job_fd: int, spec: dict, targets: list[dict], blob: bytes, code: bytes,
           write_end: int) -> None:
    """The child: neither the token nor the channel. It builds what the answers run with, then
    runs them (`_run_program`) and ends. `code` is the cells as the grader compiled them, where
    it did and its Python is this one."""
    exit_ = os._exit
    send = _sender(write_end, CHILD_TOKEN)
    wire.tensor_ops()  # torch's own functions for the writer, bound before any student code
    calls.refuse_autograd_for_good()
    try:
        tensors = wire.load_tensors(blob)
        answers = language.DEFAULT.extended(spec.get("language") or {})
    except (EOFError, ValueError):
        exit_(3)
    del blob
    guarded = spec.get("guarded", True) is not False
    try:
        compiled = compiler.loaded_cells(code) if code and \
            spec.get("compiled_by") == compiler.MAGIC else None
    except (ValueError, EOFError, TypeError, AttributeError):
        compiled = None  # compiled here instead
    del code
    cells = compile_cells([c for c in spec["cells"] if c["index"] not in set(spec["skip"])],
                          guarded, compiled)
    namespace = guards.globals_for(answers) if guarded else \
        {"__name__": "__main__", "__builtins__": builtins}
    _forget_the_grader(job_fd)
    device = spec["device"]
    del spec
    _run_program(cells, namespace, targets, tensors, device, send)


def _run_program(cells, namespace: dict, targets: list[dict], tensors: dict, device: str,
                 send) -> None:
    """The child: the cells, then each target's calls; ends the process."""
    exit_, dump, dumps, run_call = os._exit, wire.dump_tensors, json.dumps, calls.run_call
    PROGRESS, CELLS, RESULTS, DONE = wire.PROGRESS, wire.CELLS, wire.RESULTS, wire.DONE
    describe, TooLarge, max_blob = calls.describe_exception, calls.TooLarge, wire.MAX_BLOB_BYTES
    flush_out, flush_err = sys.stdout.flush, sys.stderr.flush
    _no_debuggers()
    send(CELLS, run_cells(cells, namespace, send))

    for target in targets:
        send(PROGRESS, {"step": "target", "name": target["name"]})
        metas, out = {}, {}
        for call in target["calls"]:
            try:
                metas[call["id"]], tensors_out = run_call(namespace, call, tensors, device)
            except BaseException as exc:  # noqa: BLE001 - e.g. a `.g` whose __repr__ raises
                metas[call["id"]], tensors_out = {"status": "error",
                                                  "error": describe(exc)}, {}
            out.update(tensors_out)
        try:
            blob = dump(out)
            if len(blob) > max_blob:
                raise TooLarge("the results are larger than the grader reads back")
            dumps(metas)
        except BaseException as exc:  # noqa: BLE001 - e.g. a message that is not text
            metas = {cid: {"status": "error", "error": describe(exc)}
                     for cid in metas}
            blob = dump({})
        send(RESULTS, {"name": target["name"], "calls": metas}, blob)
    try:  # before DONE: the grader stops the process as soon as it reads DONE
        flush_out()
        flush_err()
    except BaseException:  # noqa: BLE001 - the student may have closed them
        pass
    send(DONE, {})
    exit_(0)  # no atexit handlers or lingering threads of the student's


def _relay(read_end: int, send, pid: int) -> None:
    """The parent: pass on the child's frames with the run's token, then end as the child did."""
    reader = wire.FrameReader(CHILD_TOKEN)
    while True:
        try:
            chunk = os.read(read_end, 1 << 16)
        except InterruptedError:
            continue
        if not chunk:
            break
        for frame in reader.feed(chunk):
            if frame.kind in RELAYED:
                send(frame.kind, frame.meta, frame.blob)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
