"""The boundary's wire: safetensors as the library reads it, bounded by what was read, frames only
with the run's token (autograder/wire.py)."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import wire

safetensors_torch = pytest.importorskip("safetensors.torch")

SAMPLES = {
    "a/inp.g": torch.randn(3, 1, dtype=torch.float64),
    "a/w.g": torch.randn(5, 4),
    "b/mask": torch.tensor([True, False, True]),
    "b/n": torch.tensor(7, dtype=torch.int64),
    "b/empty": torch.empty(0, 3, dtype=torch.float16),
    "c/half": torch.randn(2, 2).to(torch.bfloat16),
}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def test_what_we_write_the_safetensors_library_reads_and_the_other_way():
    ours = wire.dump_tensors(SAMPLES)
    assert same(safetensors_torch.load(ours), SAMPLES)
    assert same(wire.load_tensors(safetensors_torch.save(SAMPLES)), SAMPLES)
    assert same(wire.load_tensors(ours), SAMPLES)


def header(entries: dict) -> bytes:
    text = json.dumps(entries).encode()
    return struct.pack("<Q", len(text)) + text


@pytest.mark.parametrize("data,says", [
    (b"", "shorter than a header"),
    (struct.pack("<Q", 1 << 40) + b"{}", "longer than allowed"),
    (struct.pack("<Q", 100) + b"{}", "longer than allowed or than the data"),
    (struct.pack("<Q", 3) + b"{{{", "not JSON"),
    (header([1, 2]), "not an object"),
    (header({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(600)}),
     "more than 512"),
    (header({"x": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 8]}}) + bytes(8), "dtype"),
    (header({"x": {"dtype": "F64", "shape": [-1], "data_offsets": [0, 8]}}) + bytes(8), "shape"),
    (header({"x": {"dtype": "F64", "shape": [1.5], "data_offsets": [0, 8]}}) + bytes(8), "shape"),
    (header({"x": {"dtype": "F64", "shape": [1000000, 1000000],
                   "data_offsets": [0, 8 * 10 ** 12]}}), "elements"),
    (header({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}) + bytes(8), "offsets"),
    (header({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}}) + bytes(8), "offsets"),
    (header({"x": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}) + bytes(16), "offsets"),
    (header({"x": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}) + bytes(9), "after"),
    (header({"x": {"dtype": "F64", "shape": [1], "data_offsets": "0-8"}}) + bytes(8), "offsets"),
])
def test_a_hostile_header_is_refused_in_one_line_before_anything_is_made(data, says):
    with pytest.raises(wire.WireError, match=says):
        wire.load_tensors(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 5))
def test_whatever_the_bytes_what_is_made_is_no_larger_than_what_was_read(data, cut):
    # Start from a real document, then cut and change it, as a hostile process would.
    raw = bytearray(wire.dump_tensors({"a": torch.arange(6.0), "b": torch.ones(2, 2)}))
    raw[: len(data)] = data
    raw = raw[: len(raw) - cut]
    try:
        found = wire.load_tensors(bytes(raw))
    except wire.WireError:
        return
    assert sum(t.numel() * t.element_size() for t in found.values()) <= len(raw)


TOKEN = os.urandom(wire.TOKEN_BYTES)


def test_frames_without_the_token_are_dropped_and_counted():
    mine = wire.frame(TOKEN, wire.RESULTS, {"name": "t"}, b"blob")
    forged = wire.frame(os.urandom(wire.TOKEN_BYTES), wire.RESULTS, {"name": "forged"}, b"x")
    reader = wire.FrameReader(TOKEN)
    stream = b"junk" + forged + mine + b"\x00" * 10 + mine
    frames = []
    for i in range(0, len(stream), 7):  # in small pieces, as a pipe gives them
        frames += reader.feed(stream[i:i + 7])
    assert [(f.kind, f.meta, f.blob) for f in frames] == [(wire.RESULTS, {"name": "t"}, b"blob")] * 2
    assert reader.stray >= len(b"junk") + len(forged)


def test_a_frame_that_claims_more_than_the_caps_is_skipped_not_waited_for():
    reader = wire.FrameReader(TOKEN)
    claim = wire.MAGIC + TOKEN + b"R" + struct.pack("<II", 1 << 31, 1 << 31)
    mine = wire.frame(TOKEN, wire.DONE, {})
    assert [f.kind for f in reader.feed(claim + mine)] == [wire.DONE]


def test_all_that_is_read_back_of_one_submission_is_capped():
    reader = wire.FrameReader(TOKEN, max_total=1000)
    big = wire.frame(TOKEN, wire.RESULTS, {}, bytes(600))
    assert len(reader.feed(big)) == 1
    assert reader.feed(big) == [] and reader.over  # the second one would pass the cap
    assert reader.feed(wire.frame(TOKEN, wire.DONE, {})) == []


# --- the boundary: what each side imports -------------------------------------------------------

def run_python(code: str) -> str:
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.sandbox  # fresh Pythons
def test_the_graded_process_imports_only_the_wire_and_its_own_modules():
    code = ("import sys\n"
            "for name in ('nbgrader', 'nbformat', 'typer', 'rich', 'IPython', 'sklearn'):\n"
            "    sys.modules[name] = None\n"
            "import autograder.untrusted.runner\n"
            "print(sorted(m for m in sys.modules if m.startswith('autograder')))\n")
    # autograder.answer: the package of `compiler`, whose __init__ imports nothing
    assert run_python(code) == str(["autograder", "autograder.answer", "autograder.answer.compiler",
                                    "autograder.language", "autograder.untrusted", "autograder.untrusted.calls",
                                    "autograder.untrusted.guards", "autograder.untrusted.runner",
                                    "autograder.untrusted.stand_in", "autograder.wire"])


@pytest.mark.sandbox
def test_the_reference_is_computed_without_the_untrusted_harness():
    code = ("import sys\n"
            "sys.modules['autograder.untrusted'] = None  # any import of it fails\n"
            "from autograder import engine\n"
            "from autograder.judge.plan import build_plan\n"
            "from autograder.lesson.model import find\n"
            "plan = build_plan(find('backward'), 3, solutions=find('backward').reference())\n"
            "print(plan.reference)\n")
    assert run_python(code) == "reference solutions and autograd"


# --- what crosses back, read once (autograder/judge/outcome.py) -------------------------------------

@settings(max_examples=200, deadline=None)
@given(junk=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.sampled_from(["status", "g", "inp", "kind", "type",
                                                            "shape", "bwd_calls", "bwd_count",
                                                            "error", "message", "device"]),
                                           inner, max_size=5), max_leaves=20))
def test_whatever_a_call_account_holds_it_is_read_into_types_or_left_out(junk):
    from autograder.judge.outcome import CallResult, ValueInfo

    result = CallResult.parse(junk)
    assert result.status is None or isinstance(result.status, str)
    assert all(isinstance(v, ValueInfo) for v in result.grads.values())
    assert all(isinstance(d, ValueInfo) for c in result.bwd_calls for d in c)
    assert result.bwd_count is None or isinstance(result.bwd_count, int)
    for info in (*result.grads.values(), *(d for c in result.bwd_calls for d in c)):
        assert info.shape is None or all(isinstance(d, int) for d in info.shape)


def test_only_the_calls_asked_for_come_back_and_a_limit_is_named_once():
    from autograder.judge.outcome import parse_results

    named = []
    frame = wire.Frame(wire.RESULTS, {"name": "t", "calls": {
        "t:a:0": {"status": "error", "error": {"type": "MemoryError", "message": "x"}},
        "t:a:1": "not an account", "other:a:0": {"status": "ok"}}},
        wire.dump_tensors({"t:a:0/inp.g": torch.ones(2), "other:a:0/inp.g": torch.ones(2)}))
    outcome = parse_results(frame, {"t:a:0", "t:a:1"}, named.append)
    assert list(outcome.calls) == ["t:a:0"] and list(outcome.tensors) == ["t:a:0/inp.g"]
    assert outcome.calls["t:a:0"].error.type == "MemoryError"
    assert named == [{"type": "MemoryError", "message": "x"}]
    assert parse_results(wire.Frame(wire.RESULTS, {"calls": []}, b""), set()).status == "invalid"
