"""The untrusted side: runs a student's notebook cells, then calls their functions.

Runs in its own process as `python -I runner.py WORKDIR` and imports only the standard library
and torch: nothing of the trusted side, no reference solution, no hidden answer. It reads
`WORKDIR/job.json` (the cells), runs the cells, waits for `WORKDIR/ready`, then reads
`targets.json` (the calls) and `inputs.pt` (their tensors), and writes, per target, `results/<target>.json` and
`results/<target>.pt` (plain tensors). Progress goes out as JSON lines on the file descriptor the
job names, so the trusted side knows which cell or target was running if the process dies.

Nothing written here is believed: the trusted side validates every byte it reads back.
The in-notebook self-check imports `run_call` from this file too, so both call students' code
the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

import torch

_MISSING = object()
_MAX_MESSAGE = 400


# --- describing what happened, in one line ----------------------------------------------------

def describe_exception(exc: BaseException) -> dict:
    """Type, message and where in the student's cells it was raised."""
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<cell "):
            where = f"{frame.filename[1:-1]}, line {frame.lineno}"
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith("<cell "):
        where = f"{exc.filename[1:-1]}, line {exc.lineno}"
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = exc.msg or message
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return {"type": type(exc).__name__, "message": message, "where": where}


def describe_value(value) -> dict:
    """What a student left in a `.g`: kept as a plain CPU tensor, or named by its type."""
    if value is _MISSING:
        return {"kind": "missing"}
    if not isinstance(value, torch.Tensor):
        return {"kind": "other", "type": type(value).__name__}
    return {"kind": "tensor", "type": type(value).__name__, "device": str(value.device)}


def plain_tensor(value) -> torch.Tensor | None:
    """A detached, contiguous, plain `torch.Tensor` on the CPU, whatever subclass it was."""
    if not isinstance(value, torch.Tensor):
        return None
    with torch._C.DisableTorchFunctionSubclass():
        value = torch.Tensor.as_subclass(value, torch.Tensor).detach()
        if value.layout != torch.strided:
            value = value.to_dense()
        return value.to("cpu", copy=True).contiguous()


# --- running the notebook's cells ------------------------------------------------------------

_MAGIC = re.compile(r"^(\s*)([%!])")


def _strip_magics(source: str) -> str:
    # Without IPython, `%matplotlib inline` and `!pip ...` become comments.
    return "\n".join(_MAGIC.sub(r"\1# \2", line) for line in source.splitlines())


_SHELL: list = []  # the process's one IPython shell, once built


def make_namespace(ipython_dir: str | None = None) -> tuple[dict, object]:
    """A `__main__`-like namespace with IPython semantics when IPython is installed.

    The shell is built once per process: the warm workers' mother builds it (its profile in
    `ipython_dir`), and each student's process, a fork, starts with it unused."""
    try:
        if not _SHELL:
            from IPython.core.interactiveshell import InteractiveShell
            from traitlets.config import Config

            class _Shell(InteractiveShell):
                def enable_gui(self, gui=None):  # `%matplotlib inline` without a kernel: Agg
                    return None

            config = Config()
            config.HistoryManager.enabled = False  # no history database, and no thread saving it
            if ipython_dir is not None:
                config.InteractiveShell.ipython_dir = ipython_dir
            shell = _Shell.instance(config=config)
            # Without a frontend only text/plain is shown: rendering a figure to PNG for nobody
            # took most of the lesson's plotting cell.
            shell.display_formatter.active_types = ["text/plain"]
            _SHELL.append(shell)
        return _SHELL[0].user_ns, _SHELL[0].transform_cell
    except Exception:
        return {"__name__": "__main__", "__builtins__": __builtins__}, _strip_magics


def run_cells(cells: list[dict], namespace: dict, transform, progress) -> dict[int, dict]:
    """Run each cell in order; an error (SystemExit included) stops that cell only."""
    errors: dict[int, dict] = {}
    for cell in cells:
        index = cell["index"]
        progress({"step": "cell", "index": index})
        try:
            code = compile(transform(cell["source"]), f"<cell {index}>", "exec")
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - a cell must never end the run
            errors[index] = describe_exception(exc)
    return errors


# --- calling a student's function ------------------------------------------------------------

def _call_student(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
                  make, guard) -> tuple[dict, dict]:
    """Call the student's `call["function"]` on inputs made by `make`, inside `guard()`, after
    setting `.g` on the upstream tensors. Returns what happened and the objects it was given
    (those made before an error, if one came first)."""
    fn = namespace.get(call["function"], _MISSING)
    if fn is _MISSING:
        return {"status": "undefined"}, {}
    cid, objs, meta = call["id"], {}, {"status": "ok"}
    try:
        with guard():
            for name in call["args"]:
                objs[name] = make(tensors[f"{cid}/{name}"])
            for name, grad in call["grads"].items():
                objs[name].g = make(tensors[f"{cid}/{grad}"])
            fn(*(objs[name] for name in call["args"]))
    except BaseException as exc:  # noqa: BLE001 - SystemExit inside a stub fails this call only
        meta = {"status": "error", "error": describe_exception(exc)}
    return meta, objs


def run_call(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
             device: str = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """Make one call that `call` describes; return what happened and the tensors to send back.

    The call's own `device` wins over `device`; a CUDA call where there is no GPU comes back as
    `{"status": "unavailable"}`, and a `fake` call sends back structure only (see `run_fake_call`).
    """
    device = call.get("device", device)
    if call.get("fake"):
        return run_fake_call(namespace, call, tensors)
    if device.startswith("cuda") and not cuda_ready():
        return {"status": "unavailable", "device": device}, {}
    if call["kind"] == "probe":
        return run_probe(namespace, call, tensors, device)
    meta, objs = _call_student(namespace, call, tensors,
                               lambda t: t.to(device, copy=True), torch.no_grad)
    if meta["status"] == "undefined":
        return meta, {}
    cid = call["id"]
    out: dict[str, torch.Tensor] = {}
    meta["g"] = {}
    for name in call["collect"]:
        g = getattr(objs[name], "g", _MISSING) if name in objs else _MISSING
        meta["g"][name] = describe_value(g)
        if (t := plain_tensor(g)) is not None:
            out[f"{cid}/{name}.g"] = t
    for name, obj in objs.items():
        if (t := plain_tensor(obj)) is not None:
            out[f"{cid}/{name}.after"] = t
    for name in call["grads"]:
        if (t := plain_tensor(getattr(objs.get(name), "g", None))) is not None:
            out[f"{cid}/{name}.g.after"] = t
    return meta, out


def run_probe(namespace: dict, call: dict, tensors: dict[str, torch.Tensor],
              device: str = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """Check `Module.backward` with a layer whose `bwd` only records how it was called."""
    module = namespace.get(call["function"], _MISSING)
    if module is _MISSING:
        return {"status": "undefined"}, {}
    if not isinstance(module, type):
        return {"status": "error", "error": {"type": "TypeError", "where": None,
                                             "message": f"{call['function']} is not a class"}}, {}
    recorded: list[tuple] = []
    results: list[object] = []

    try:
        class Probe(module):
            def forward(self, *args):
                results.append(torch.zeros(1, device=device))
                return results[-1]

            def bwd(self, out, *args):
                recorded.append((out, args))

        layer = Probe()
        calls = []
        for _ in range(call["repeat"]):
            args = [tensors[f"{call['id']}/{name}"].to(device, copy=True) for name in call["args"]]
            layer(*args)
            calls.append(args)
        recorded.clear()  # only what backward() does counts
        layer.backward()
    except BaseException as exc:  # noqa: BLE001
        return {"status": "error", "error": describe_exception(exc)}, {}

    def name_of(obj) -> str:
        for age, (out, args) in enumerate(zip(reversed(results), reversed(calls), strict=False)):
            suffix = "" if age == 0 else " (from an earlier call)"
            if obj is out:
                return "out" + suffix
            for i, arg in enumerate(args):
                if obj is arg:
                    return f"args[{i}]" + suffix
        if isinstance(obj, tuple):
            return "a tuple"
        return f"a {type(obj).__name__}"

    bwd_calls = [[name_of(out)] + [name_of(a) for a in args] for out, args in recorded]
    return {"status": "ok", "bwd_calls": bwd_calls}, {}


# --- devices: a real GPU where there is one, fake CUDA tensors anywhere -----------------------

def cuda_ready() -> bool:
    """Whether this process can use CUDA; initialises it here, at call time, with TF32 off."""
    if not torch.cuda.is_available():
        return False
    # TF32 would round float32 matmuls to 10 bits: off, so that the float32 tolerance holds.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return True


#: A CPU-only build cannot index fake CUDA tensors ("not linked with support for cuda"): such a
#: call is run again with `meta` standing for the GPU, still under FakeTensorMode.
_NO_CUDA_BUILD = "not linked with support for cuda"
_FAKE_MODES: dict = {}


def _fake_mode():
    """A FakeTensorMode (private API: None when missing or broken); built once, it is slow."""
    if "mode" not in _FAKE_MODES:
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode

            _FAKE_MODES["mode"] = FakeTensorMode(allow_non_fake_inputs=True)
        except Exception:  # noqa: BLE001 - private API: any failure means "use meta"
            _FAKE_MODES["mode"] = None
    return _FAKE_MODES["mode"]


def warm_fake_mode() -> None:
    """Run a few of the lesson's tensor operations once under FakeTensorMode, so that what it
    sets up on first use (about 10 ms) is done once in the warm workers' mother, not in every
    student's process. On `meta` tensors: the mother never initialises CUDA."""
    mode = _fake_mode()
    if mode is None:
        return
    try:
        with mode, torch.inference_mode():
            inp, w = torch.empty(4, 3, device="meta"), torch.empty(3, 2, device="meta")
            out = inp @ w + w.sum(0)
            ((inp.unsqueeze(-1) * out.unsqueeze(1)).sum(0) - inp.t() @ out).mean()
            ((out > 0).float() * out.clamp_min(0.0) / out.shape[0]).squeeze(-1).to(torch.float64)
    except Exception:  # noqa: BLE001 - a warm-up only: each call still runs as it would have
        pass


def run_fake_call(namespace: dict, call: dict,
                  tensors: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Call a student's function on fake CUDA tensors: values are meaningless, structure is not.

    Tries FakeTensorMode with `cuda`, then FakeTensorMode with `meta` for the GPU, then plain
    `meta` tensors; `meta["backend"]` says which ran, and each `.g` is described by its shape,
    dtype and device (no tensor crosses back: a fake tensor has no bytes).
    """
    mode = _fake_mode()
    tries = [("FakeTensorMode", "cuda"), ("FakeTensorMode on meta", "meta")] if mode is not None \
        else [("meta", "meta")]
    for backend, device in tries:
        meta = _fake_call(namespace, call, tensors, mode, device)
        meta["backend"] = backend
        if _NO_CUDA_BUILD not in str((meta.get("error") or {}).get("message", "")):
            break
    return meta, {}


def _fake_call(namespace: dict, call: dict, tensors: dict[str, torch.Tensor], mode,
               device: str) -> dict:
    if call["kind"] != "function":
        return {"status": "error", "error": {"type": "ValueError", "where": None,
                                             "message": "fake calls are for functions"}}

    @contextlib.contextmanager
    def fake():
        with contextlib.ExitStack() as stack:
            if mode is not None:
                stack.enter_context(mode)
            # Not just no_grad: autograd on fake CUDA tensors in a CPU-only build aborts the
            # whole process in C++ (a student's kernel, for the self-check); in inference mode
            # `.backward()` raises a plain RuntimeError instead, and device mixing is still caught.
            stack.enter_context(torch.inference_mode())
            yield

    meta, objs = _call_student(namespace, call, tensors,
                               lambda t: torch.empty(t.shape, dtype=t.dtype, device=device), fake)
    if meta["status"] == "undefined":
        return meta
    meta["g"] = {}
    for name in call["collect"]:
        g = getattr(objs[name], "g", _MISSING) if name in objs else _MISSING
        info = describe_value(g)
        if isinstance(g, torch.Tensor):
            info.update(shape=[int(d) for d in g.shape], dtype=str(g.dtype).removeprefix("torch."))
        meta["g"][name] = info
    return meta


# --- the process -----------------------------------------------------------------------------

def _file_writer():
    """`put(path, text)` made of functions bound now, before any student code can patch them."""
    open_, write, close, encode = os.open, os.write, os.close, str.encode
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC

    def put(path: str, text: str) -> None:
        fd = open_(path, flags, 0o644)
        try:
            data = memoryview(encode(text))
            while data:
                data = data[write(fd, data):]
        finally:
            close(fd)

    return put


def main(workdir: str, progress_fd: int | None = None) -> None:
    """Run the job in `workdir`; `progress_fd` overrides the job's (a warm parent's child)."""
    work = Path(workdir)
    job = json.loads((work / "job.json").read_text())
    fd = job["progress_fd"] if progress_fd is None else progress_fd
    save, dumps, write = torch.save, json.dumps, os.write  # bound before any student code runs
    put, exists, sleep = _file_writer(), os.path.exists, time.sleep
    results = str(work / "results")
    os.makedirs(results, exist_ok=True)

    def progress(event: dict) -> None:
        try:
            write(fd, (dumps(event) + "\n").encode())
        except OSError:
            pass

    namespace, transform = make_namespace()
    cells = [c for c in job["cells"] if c["index"] not in set(job["skip"])]
    ready, calls_path, inputs_path = (str(work / n) for n in ("ready", "targets.json", "inputs.pt"))
    errors = run_cells(cells, namespace, transform, progress)
    put(results + "/cells.json", dumps({str(k): v for k, v in errors.items()}))
    progress({"step": "cells-done"})

    # The trusted side draws the inputs while the cells run, and says when they are there.
    _fake_mode()  # slow to build (it imports torch._dynamo): while the trusted side draws inputs
    while not exists(ready):
        sleep(0.005)
    with open(calls_path, "rb") as f:
        targets = json.loads(f.read())
    tensors = torch.load(inputs_path, weights_only=True)
    for target in targets:
        progress({"step": "target", "name": target["name"]})
        metas, out = {}, {}
        for call in target["calls"]:
            try:
                metas[call["id"]], tensors_out = run_call(namespace, call, tensors, job["device"])
            except BaseException as exc:  # noqa: BLE001 - e.g. a `.g` whose __getattr__ raises
                metas[call["id"]], tensors_out = {"status": "error",
                                                  "error": describe_exception(exc)}, {}
            out.update(tensors_out)
        stem = results + "/" + target["name"]
        try:
            save(out, stem + ".pt")
        except BaseException as exc:  # noqa: BLE001 - e.g. a tensor the format cannot hold
            metas = {cid: {"status": "error", "error": describe_exception(exc)} for cid in metas}
            save({}, stem + ".pt")
        put(stem + ".json", dumps(metas))
        progress({"step": "target-done", "name": target["name"]})
    progress({"step": "done"})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers or lingering threads of the student's


if __name__ == "__main__":
    main(sys.argv[1])
