"""What crosses back from the student's process, as typed data, read once (trusted side).

The runner (`untrusted/calls.py`) says what came of each call as a small JSON object; the
sandbox hands it here as it arrived (`parse_results`), and from here on judging reads these
types, never a raw key. Imports no sandbox code: the self-check builds the same types in the
student's own kernel, where there may be no sandbox at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .. import wire

#: Longest text kept of any field that came back (the runner's own caps are shorter).
MAX_TEXT = 1000


def _text(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    return None if value is None else str(value)[:MAX_TEXT]


@dataclass(frozen=True)
class ErrorInfo:
    """An error raised in the student's process: its type, message, where in which cell, and
    the limit it hit (said by the trusted side)."""

    type: str | None = None
    message: str | None = None
    where: str | None = None
    limit: str | None = None

    @classmethod
    def parse(cls, raw: object) -> ErrorInfo | None:
        if isinstance(raw, ErrorInfo) or raw is None:
            return raw
        if not isinstance(raw, dict):
            return cls()
        return cls(_text(raw, "type"), _text(raw, "message"), _text(raw, "where"),
                   _text(raw, "limit"))


@dataclass(frozen=True)
class ValueInfo:
    """What a student left in a `.g`, or passed to `bwd`: "tensor", "other" or "missing", its
    type's name, and for a tensor its device (and, on stand-ins, its shape and dtype)."""

    kind: str | None = None
    type: str | None = None
    device: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None

    @classmethod
    def parse(cls, raw: object) -> ValueInfo:
        if not isinstance(raw, dict):
            return cls()
        shape = raw.get("shape")
        shape = (tuple(shape) if isinstance(shape, list) and len(shape) <= 64
                 and all(isinstance(d, int) for d in shape) else None)
        return cls(_text(raw, "kind"), _text(raw, "type"), _text(raw, "device"), shape,
                   _text(raw, "dtype"))


#: A `.g` the call did not set (or whose account did not come back).
MISSING = ValueInfo("missing")


@dataclass(frozen=True)
class CallResult:
    """What came of one call: its status ("ok", "error", "undefined": no such function,
    "unavailable": a CUDA call without a GPU), the error, each `.g`, the stand-ins' backend,
    whether autograd ran against the refusal, and a probe's record of what `bwd` received."""

    status: str | None
    error: ErrorInfo | None = None
    grads: dict[str, ValueInfo] = field(default_factory=dict)
    backend: str | None = None
    autograd: bool = False
    bwd_calls: tuple[tuple[ValueInfo, ...], ...] = ()
    bwd_count: int | None = None

    @classmethod
    def parse(cls, raw: object) -> CallResult:
        if isinstance(raw, CallResult):
            return raw
        if not isinstance(raw, dict):
            return cls(None)
        g = raw.get("g")
        grads = ({str(k): (ValueInfo.parse(v) if isinstance(v, dict) else MISSING)
                  for k, v in list(g.items())[:64]} if isinstance(g, dict) else {})
        calls = raw.get("bwd_calls")
        bwd = (tuple(tuple(ValueInfo.parse(d) for d in c[:64]) if isinstance(c, list) else ()
                     for c in calls[:64]) if isinstance(calls, list) else ())
        count = raw.get("bwd_count")
        return cls(_text(raw, "status"), ErrorInfo.parse(raw.get("error")), grads,
                   _text(raw, "backend"), bool(raw.get("autograd")), bwd,
                   count if isinstance(count, int) else None)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def g(self, name: str) -> ValueInfo:
        """What the call left in `name.g`."""
        return self.grads.get(name, MISSING)


@dataclass
class TargetOutcome:
    """What came back for one target: per call, what came of it, and the tensors it sent back.
    Calls given as the runner's JSON objects are read here, once."""

    status: str  # "ok", or why nothing usable came back: "timeout", "crashed", "memory", "invalid"
    detail: str = ""
    calls: dict[str, CallResult] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.calls = {cid: CallResult.parse(raw) for cid, raw in self.calls.items()}

    def add(self, call_id: str, raw: object, tensors: dict[str, torch.Tensor]) -> None:
        """One call's account, as the runner gave it, and its tensors."""
        self.calls[call_id] = CallResult.parse(raw)
        self.tensors.update(tensors)


@dataclass
class UntrustedRun:
    """All that came back from one submission's run: cell errors (the runner's JSON, by cell
    index; `cell_error` reads one), per target its outcome, what it printed, and how it ran."""

    cell_errors: dict[int, dict] = field(default_factory=dict)
    targets: dict[str, TargetOutcome] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    restarts: int = 0
    sandbox: list[str] = field(default_factory=list)  # the isolation layers that applied
    stray: int = 0  # bytes on the channel that were not frames of this run

    def cell_error(self, index: int) -> ErrorInfo | None:
        """The error that stopped cell `index`, or None."""
        return ErrorInfo.parse(self.cell_errors.get(index))


def parse_results(result: wire.Frame, call_ids: set[str],
                  name_the_limit: Callable[[object], None] = lambda error: None) -> TargetOutcome:
    """One target's results frame as plain, validated data: the accounts of the calls asked for
    (each error first given to `name_the_limit`, which says the limit it hit) and the tensors
    they name."""
    from .. import wire

    calls = result.meta.get("calls") if isinstance(result.meta, dict) else None
    if not isinstance(calls, dict):
        return TargetOutcome("invalid", "the results were not in the expected form")
    try:
        tensors = wire.load_tensors(result.blob)
    except wire.WireError as exc:
        return TargetOutcome("invalid", f"the results could not be read back: {exc}")
    clean_calls = {cid: calls[cid] for cid in call_ids if isinstance(calls.get(cid), dict)}
    for meta in clean_calls.values():
        name_the_limit(meta.get("error"))
    clean = {k: v for k, v in tensors.items() if k.split("/", 1)[0] in call_ids}
    return TargetOutcome("ok", calls=clean_calls, tensors=clean)
