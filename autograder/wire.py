"""What crosses the trust boundary, and the only code that writes or reads it.

Both sides import this module: the student's process with the standard library and torch alone
(`autograder/untrusted/`), the grader on the trusted side. Two kinds of data cross, on pipes:

- **frames**: `MAGIC`, the run's token (16 random bytes the grader gave the process before any
  student code ran), a kind, the lengths of a JSON part and a binary part, then both parts. The
  grader reads frames with `FrameReader`, which checks every length against its caps before it
  keeps a byte, and keeps only frames that carry the token: bytes a student's code writes on the
  channel are skipped, whatever they say.
- **tensors**: the binary part holds plain tensors in the safetensors format (a little-endian
  u64 header length, a JSON header of dtype, shape and offsets, then the raw bytes: no pickle, no
  compression, so what is allocated is bounded by what was read). `load_tensors` checks the header
  against its caps before it allocates anything. Written and read here with torch alone (the
  engine must run where only torch is installed, e.g. on a GPU machine); `tests/sandbox/test_wire.py`
  checks that the `safetensors` library reads ours and we read its.

Nothing here runs code from the data it reads.
"""

from __future__ import annotations

import ctypes
import json
import struct
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MAGIC = b"AGW1"
TOKEN_BYTES = 16
_HEAD = struct.Struct("<4s16scII")  # magic, token, kind, JSON length, binary length
_pack_head = _HEAD.pack

#: Caps of what the grader reads back from one student's process (all of its restarts).
MAX_JSON_BYTES = 1 << 20  # the JSON part of one frame
MAX_BLOB_BYTES = 8 << 20  # the binary part of one frame
MAX_RUN_BYTES = 32 << 20  # all frames of one submission
MAX_TENSORS = 512  # tensors in one binary part
MAX_TENSOR_ELEMENTS = 1 << 20  # elements of one tensor
MAX_HEADER_BYTES = 1 << 18  # a safetensors header



@cache
def dtypes() -> dict[str, torch.dtype]:
    """safetensors dtype names; only these cross. (torch is imported on first use: the grader
    starts the student's process before it imports torch.)"""
    import torch

    return {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
            "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
            "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}

# Frame kinds, from the grader: S the sandbox's policy (read by a cold jail, before anything
# else), J the job (cells), W the work (calls and inputs); from the student's process: P
# progress, C the cells' errors, R one target's results, D done.
POLICY, JOB, WORK, PROGRESS, CELLS, RESULTS, DONE = b"S", b"J", b"W", b"P", b"C", b"R", b"D"


class WireError(ValueError):
    """Data that does not hold to this module's format or caps; the message says which."""


# Bound when this module is imported (in the student's process, before any student code runs):
# what a later change to `json` or `struct` cannot reach.
_dumps, _loads, _pack, _unpack_from, _string_at = (json.dumps, json.loads, struct.pack,
                                                   struct.unpack_from, ctypes.string_at)


@cache
def tensor_ops() -> tuple:
    """torch's own C functions for what the writer asks of a tensor, bound on first use: the
    student's process calls this before any student code runs, so that a change to
    `torch.Tensor`'s Python attributes cannot reach them."""
    import torch

    base = torch._C.TensorBase
    return (base.device.__get__, base.is_contiguous, base.numel, base.element_size,
            base.data_ptr, base.dtype.__get__, base.shape.__get__)


# --- the calls the grader asks for ---------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One call the student's process makes, described by the grader.

    `kind` "function": set `.g` on the tensors named in `grads` (from the inputs named by their
    values), call `function(*args)`, then send back the `.g` of each name in `collect`, the
    inputs as they are after the call, and the upstream `.g` after. `kind` "probe": subclass the
    student's class `function` with a layer whose `forward` returns the input named `outs[k]` on
    its k-th call and whose `bwd` records what it is given; call it `repeat` times on `args`
    (the inputs named `args[i]`, with `/k` appended for the k-th call), then `backward()`, and
    send back what `bwd` received. `device` is where the inputs go; `stand_in`: tensors that stand
    for the GPU's, and only structure comes back. With `refuse_autograd`, autograd's engine
    refuses while the call runs (the grader read no autograd in the code: any is hidden).
    """

    id: str
    kind: str
    function: str
    args: tuple[str, ...]
    grads: dict[str, str] = field(default_factory=dict)
    collect: tuple[str, ...] = ()
    repeat: int = 1
    device: str = "cpu"
    stand_in: bool = False
    refuse_autograd: bool = False  # the rules saw no autograd: the engine refuses during the call

    def to_json(self) -> dict:
        return asdict(self)


# --- tensors: the safetensors format -------------------------------------------------------------

def dump_tensors(tensors: dict[str, torch.Tensor]) -> bytes:
    """Contiguous CPU tensors, by name, as one safetensors document. Their bytes are read from
    their memory: no torch operation runs."""
    device, contiguous, numel, element_size, data_ptr, dtype_of, shape_of = tensor_ops()
    names = {dtype: name for name, dtype in dtypes().items()}
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if device(t).type != "cpu" or not contiguous(t):
            raise WireError(f"tensors: {name} is not a contiguous CPU tensor")
        size = numel(t) * element_size(t)
        data = _string_at(data_ptr(t), size) if size else b""
        header[name] = {"dtype": names[dtype_of(t)], "shape": [int(d) for d in shape_of(t)],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = _dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    return _pack("<Q", len(text)) + text + b"".join(chunks)


def load_tensors(data: bytes, *, max_tensors: int = MAX_TENSORS,
                 max_elements: int = MAX_TENSOR_ELEMENTS) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors document, each checked against the caps before it is made.

    Raises `WireError` for anything else: a header too long or not JSON, an unknown dtype, a
    shape or offsets that do not match the bytes there are.
    """
    import torch

    if len(data) < 8:
        raise WireError("tensors: shorter than a header")
    (length,) = _unpack_from("<Q", data)
    if length > MAX_HEADER_BYTES or 8 + length > len(data):
        raise WireError("tensors: the header is longer than allowed or than the data")
    try:
        header = _loads(bytes(data[8:8 + length]))
    except (ValueError, RecursionError):
        raise WireError("tensors: the header is not JSON") from None
    if not isinstance(header, dict):
        raise WireError("tensors: the header is not an object")
    header.pop("__metadata__", None)
    if len(header) > max_tensors:
        raise WireError(f"tensors: more than {max_tensors}")
    body = memoryview(data)[8 + length:]
    out, expected = {}, 0
    for name, entry in sorted(header.items(), key=lambda kv: _offsets(kv[1])[0]):
        dtype, shape, (begin, end) = _entry(name, entry)
        numel = 1
        for d in shape:
            numel *= d
        if numel > max_elements:
            raise WireError(f"tensors: {name} has more than {max_elements} elements")
        size = numel * torch.empty((), dtype=dtype).element_size()
        if begin != expected or end - begin != size or end > len(body):
            raise WireError(f"tensors: the offsets of {name} do not match its shape")
        expected = end
        flat = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if size else \
            torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(shape)
    if expected != len(body):
        raise WireError("tensors: bytes after the last tensor")
    return out


def _offsets(entry: object) -> tuple[int, int]:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(o) is int and o >= 0 for o in offsets) and offsets[0] <= offsets[1]):
        return (-1, -1)
    return offsets[0], offsets[1]


def _entry(name: object, entry: object) -> tuple[torch.dtype, list[int], tuple[int, int]]:
    """An entry's dtype, shape and offsets, each checked."""
    if not isinstance(name, str) or len(name) > 200 or not isinstance(entry, dict):
        raise WireError("tensors: an entry is not a named object")
    dtype = dtypes().get(entry.get("dtype"))
    shape = entry.get("shape")
    if dtype is None:
        raise WireError(f"tensors: {name} has an unknown dtype")
    if not (isinstance(shape, list) and len(shape) <= 8
            and all(type(d) is int and 0 <= d <= MAX_TENSOR_ELEMENTS for d in shape)):
        raise WireError(f"tensors: {name} has a shape that is not a list of sizes")
    begin, end = _offsets(entry)
    if begin < 0:
        raise WireError(f"tensors: {name} has offsets that are not two sizes")
    return dtype, shape, (begin, end)


# --- frames ---------------------------------------------------------------------------------------

def frame(token: bytes, kind: bytes, meta: object, blob: bytes = b"") -> bytes:
    """One frame, ready to write."""
    text = _dumps(meta, separators=(",", ":")).encode()
    return _pack_head(MAGIC, token, kind, len(text), len(blob)) + text + blob


@dataclass
class Frame:
    kind: bytes
    meta: object
    blob: bytes
    token: bytes = b""


class FrameReader:
    """The grader's reader of one student's channel: whole frames with the run's token, within
    the caps; every other byte is counted in `stray` and dropped."""

    def __init__(self, token: bytes, max_total: int = MAX_RUN_BYTES) -> None:
        self.token, self.max_total = token, max_total
        self.buffer = bytearray()
        self.total = 0  # bytes taken in, all restarts together
        self.stray = 0
        self.over = False  # the cap was reached: nothing more is read

    def restart(self) -> None:
        """A new process on the channel: a frame cut off by the last one's end is dropped."""
        self.stray += len(self.buffer)
        self.buffer.clear()

    def feed(self, chunk: bytes) -> list[Frame]:
        if self.over:
            return []
        if self.total + len(chunk) > self.max_total:
            chunk = chunk[: self.max_total - self.total]
            self.over = True
        self.total += len(chunk)
        self.buffer += chunk
        frames = []
        while True:
            start = self.buffer.find(MAGIC + self.token)
            if start < 0:  # keep a tail that may be the start of the next marker
                keep = len(MAGIC) + TOKEN_BYTES - 1
                self.stray += max(0, len(self.buffer) - keep)
                del self.buffer[: max(0, len(self.buffer) - keep)]
                return frames
            self.stray += start
            del self.buffer[:start]
            if len(self.buffer) < _HEAD.size:
                return frames
            _, _, kind, text_len, blob_len = _HEAD.unpack_from(self.buffer)
            if text_len > MAX_JSON_BYTES or blob_len > MAX_BLOB_BYTES:
                self.stray += len(MAGIC)
                del self.buffer[: len(MAGIC)]  # not a frame of ours after all
                continue
            end = _HEAD.size + text_len + blob_len
            if len(self.buffer) < end:
                return frames
            text = bytes(self.buffer[_HEAD.size:_HEAD.size + text_len])
            blob = bytes(self.buffer[_HEAD.size + text_len:end])
            del self.buffer[:end]
            try:
                frames.append(Frame(kind, _loads(text), blob, self.token))
            except (ValueError, RecursionError):
                self.stray += end


def read_frame(fd: int, token: bytes | None = None, *, read=None) -> Frame:
    """One whole frame from `fd`: the student's process reading what the grader sent it (its
    first frame, the job, tells it the token: `Frame.token`). Raises EOFError at the end of the
    stream, `WireError` for a frame of another run."""
    import os

    read = read or os.read

    def exactly(n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = read(fd, n - len(data))
            if not chunk:
                raise EOFError("the channel closed")
            data += chunk
        return bytes(data)

    magic, got, kind, text_len, blob_len = _HEAD.unpack(exactly(_HEAD.size))
    if magic != MAGIC or (token is not None and got != token):
        raise WireError("not a frame of this run")
    text = exactly(text_len)
    return Frame(kind, _loads(text), exactly(blob_len), got)
