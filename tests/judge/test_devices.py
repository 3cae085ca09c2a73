"""Devices: GPU-readiness on stand-in CUDA tensors (any machine), real CUDA where there is a GPU.

Imports only torch and pytest (and the engine, which needs only torch), so that a GPU machine
runs `python -m pytest -m cuda tests/judge/test_devices.py` with nothing else installed; the tests
that need nbgrader (a released notebook) or the CLI (typer, rich) skip without them.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from autograder.course import samples
from autograder.engine import check_notebook
from autograder.judge.judging import judge_call, judge_calls
from autograder.judge.outcome import TargetOutcome, UntrustedRun
from autograder.judge.plan import build_plan
from autograder.selfcheck import SelfCheckFailed, run_self_check, self_check
from autograder.untrusted import calls as runner
from tests.conftest import BACKWARD, REPO, SOURCE


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # e.g. blocked in sys.modules
        return False


HAS_CUDA = torch.cuda.is_available()
HAS_CLI = installed("typer") and installed("rich")
HAS_NBGRADER = installed("nbgrader")

needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
needs_cli = pytest.mark.skipif(not HAS_CLI, reason="the CLI needs typer and rich")
needs_nbgrader = pytest.mark.skipif(not (HAS_CLI and HAS_NBGRADER),
                                    reason="a released notebook needs nbgrader, typer and rich")

#: Right on a laptop, wrong on a GPU: w.g starts as a CPU tensor (no device=).
CPU_ONLY_LIN_GRAD = ("import torch\n"
                     "def lin_grad(inp, out, w, b):\n"
                     "    inp.g = out.g @ w.t()\n"
                     "    w.g = torch.zeros(w.shape, dtype=w.dtype)\n"
                     "    w.g += inp.t() @ out.g\n"
                     "    b.g = out.g.sum(0)\n")

#: The same mistake in a loop: indexing stand-in CUDA tensors needs the `meta` fallback on a CPU build.
CPU_ONLY_LOOP_LIN_GRAD = ("import torch\n"
                          "def lin_grad(inp, out, w, b):\n"
                          "    inp.g = out.g @ w.t()\n"
                          "    w.g = torch.zeros(w.shape, dtype=w.dtype)\n"
                          "    for i in range(inp.shape[0]):\n"
                          "        w.g += torch.outer(inp[i], out.g[i])\n"
                          "    b.g = out.g.sum(0)\n")

LOOP_LIN_GRAD = CPU_ONLY_LOOP_LIN_GRAD.replace("torch.zeros(w.shape, dtype=w.dtype)",
                                               "torch.zeros_like(w)")


def load_solutions():
    return BACKWARD.reference()


def run_lane(namespace: dict, target: str, lane: str) -> list[tuple]:
    """Each call of `target` in `lane`, made as the runner makes it: (planned, meta, verdict)."""
    plan = build_plan(BACKWARD, 7, (target,), lanes=(lane,))
    wire = plan.wire_inputs()
    outcome = TargetOutcome("ok")
    for planned in plan.calls:
        outcome.add(planned.call.id, *runner.run_call(namespace, planned.call.to_json(), wire))
    run = UntrustedRun(targets={target: outcome})
    return [(p, outcome.calls[p.call.id], judge_call(target, p, outcome, run, None))
            for p in plan.calls]


def namespace_of(source: str) -> dict:
    ns: dict = {}
    exec(source, ns)
    return ns


def fill_source(answers: dict[str, str], tmp_path) -> str:
    """The solution notebook with some cells replaced: needs no nbgrader."""
    nb = samples.fill(json.loads(SOURCE.read_text()), answers)
    return str(samples.write(nb, tmp_path / "backward.ipynb"))


def check_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "check", *args],
                          capture_output=True, text=True)


# --- the spec: device points are set where all points are set --------------------------------

@pytest.mark.parametrize("target", ["mse_grad", "relu_grad", "lin_grad"])
def test_each_gradient_target_has_a_gpu_ready_check_that_runs_everywhere(target):
    checks = {c.name: c for c in BACKWARD.checks(target)}
    assert sum(c.weight for c in BACKWARD.checks(target)) == 10
    ready = checks["gpu-ready"]
    assert ready.weight == 1
    lanes = [case.lane for case in ready.cases]
    assert lanes[0] == "cpu"  # a wrong gradient earns no device points
    assert set(lanes) == {"cpu", "gpu-ready", "cuda"}  # stand-in CUDA always; real CUDA as extras
    assert {case.dtype for case in ready.cases if case.stand_in} == {"float64", "float32"}


def test_the_same_seed_draws_the_same_inputs_whichever_devices_run():
    everywhere = build_plan(BACKWARD, 5, ("lin_grad",))
    cpu_only = build_plan(BACKWARD, 5, ("lin_grad",), lanes=("cpu", "gpu-ready"))
    for planned in cpu_only.calls:
        twin = next(p for p in everywhere.calls if p.call.id == planned.call.id)
        assert all(torch.equal(planned.inputs[k], twin.inputs[k]) for k in planned.inputs)


# --- GPU-readiness, in this process, on tensors that stand for CUDA ones ---------------------

@pytest.mark.parametrize("target", ["mse_grad", "relu_grad", "lin_grad"])
def test_the_reference_solution_is_gpu_ready(target):
    results = run_lane(vars(load_solutions()), target, "gpu-ready")
    assert results
    for planned, meta, verdict in results:
        assert verdict.passed, verdict
        assert meta.backend == "meta"
        for name in planned.call.collect:  # structure only: no bytes of a stand-in tensor cross
            assert meta.g(name).shape == tuple(planned.expected[name].shape)


def test_fake_cuda_tensors_catch_a_cpu_tensor_made_inside_lin_grad():
    results = run_lane(namespace_of(CPU_ONLY_LIN_GRAD), "lin_grad", "gpu-ready")
    for _, _, verdict in results:
        assert not verdict.passed
        assert verdict.mistakes == ("lin_grad.wrong_device",)
    # ...while it is right on the CPU
    assert all(v.passed for _, _, v in run_lane(namespace_of(CPU_ONLY_LIN_GRAD), "lin_grad", "cpu"))


def test_indexing_and_loops_are_judged_right_and_wrong_on_the_stand_in():
    right = run_lane(namespace_of(LOOP_LIN_GRAD), "lin_grad", "gpu-ready")
    wrong = run_lane(namespace_of(CPU_ONLY_LOOP_LIN_GRAD), "lin_grad", "gpu-ready")
    assert all(v.passed for _, _, v in right), [v for _, _, v in right]
    assert all(v.mistakes == ("lin_grad.wrong_device",) for _, _, v in wrong)
    assert {m.backend for _, m, _ in right} == {"meta"}


@pytest.mark.parametrize("body", [
    "    g = out.g.clone()\n    g[inp <= 0] = 0\n    inp.g = g\n",  # a mask, in place
    "    inp.g = torch.where(inp > 0, out.g, torch.zeros_like(out.g))\n",
    "    inp.g = (inp > 0).float().to(inp.dtype) * out.g\n",
    "    inp.g = out.g * (inp > 0) + 0 * inp.sum().item()\n",  # .item() works on a GPU too
    "    inp.g = out.g.clone()\n    inp.g[inp < 0] = 0.\n    inp.g = inp.g.to(inp.device)\n",
])
def test_right_code_in_many_styles_is_gpu_ready(body):
    ns = namespace_of("import torch\ndef relu_grad(inp, out):\n" + body)
    assert all(v.passed for _, _, v in run_lane(ns, "relu_grad", "gpu-ready"))


@pytest.mark.parametrize("body,code", [
    ("    inp.g = (inp > 0).double().cpu() * out.g.cpu()\n", "relu_grad.wrong_device"),
    ("    inp.g = torch.tensor((inp > 0).numpy()) * out.g\n", "relu_grad.error"),
    ("    inp.g = torch.zeros(inp.shape, dtype=inp.dtype)\n    inp.g[inp > 0] = out.g[inp > 0]\n",
     "relu_grad.wrong_device"),
])
def test_code_that_only_runs_on_a_cpu_fails_gpu_readiness(body, code):
    ns = namespace_of("import torch\ndef relu_grad(inp, out):\n" + body)
    verdicts = [v for _, _, v in run_lane(ns, "relu_grad", "gpu-ready")]
    assert all(not v.passed for v in verdicts) and all(code in v.mistakes for v in verdicts)


@pytest.mark.sandbox
def test_gpu_readiness_imports_nothing_on_first_use():
    # torch's meta kernels and FakeTensorMode import torch._dynamo and sympy on first use
    # (seconds, in every cold process and every kernel's first self-check): the stand-in runs
    # on torch's CPU kernels and imports nothing.
    code = ("import sys, torch\n"
            "from autograder.untrusted import calls\n"
            "from autograder.judge.plan import build_plan\n"
            "from autograder.lesson.model import find\n"
            "plan = build_plan(find('backward'), 1, ('lin_grad',), lanes=('gpu-ready',))\n"
            "before = set(sys.modules)\n"
            "ns = {}\n"
            f"exec({LOOP_LIN_GRAD!r}, ns)\n"
            "for p in plan.calls:\n"
            "    assert calls.run_call(ns, p.call.to_json(), plan.wire_inputs())[0]['status'] == 'ok'\n"
            "print(sorted(set(sys.modules) - before))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]


def test_a_wrong_shape_or_dtype_on_the_gpu_is_named():
    flat = namespace_of("def mse_grad(inp, targ):\n"
                        "    inp.g = 2. * (inp.squeeze(-1) - targ) / inp.shape[0]\n")
    single = namespace_of("def mse_grad(inp, targ):\n"
                          "    inp.g = (2. * (inp - targ.unsqueeze(-1)) / inp.shape[0]).float()\n")
    assert {v.mistakes for _, _, v in run_lane(flat, "mse_grad", "gpu-ready")} == {
        ("mse_grad.wrong_shape",)}
    by_dtype = {p.case.dtype: v for p, _, v in run_lane(single, "mse_grad", "gpu-ready")}
    assert by_dtype["float64"].mistakes == ("mse_grad.wrong_dtype",)
    assert by_dtype["float32"].passed


def test_the_self_check_reports_devices(capsys):
    with pytest.raises(SelfCheckFailed):
        self_check("lin_grad", namespace_of(CPU_ONLY_LIN_GRAD)["lin_grad"])
    out = capsys.readouterr().out
    assert "FAIL gpu-ready:" in out and "lin_grad.wrong_device" in out
    assert "devices: not yet ready for a GPU: see the gpu-ready checks" in out
    self_check("lin_grad", vars(load_solutions())["lin_grad"])
    assert run_self_check("lin_grad", vars(load_solutions())["lin_grad"]).devices["gpu-ready"] == "passed"
    out = capsys.readouterr().out
    assert "devices: your code keeps tensors on their device" in out
    assert "meta" not in out and "CUDA: not available" not in out


def test_a_crashed_target_does_not_read_as_a_failure_on_a_gpu_that_is_not_there():
    from autograder.judge.devices import describe, summarize

    plan = build_plan(BACKWARD, 1, ("mse_grad", "lin_grad"))
    lin = TargetOutcome("ok", calls={p.call.id: {"status": "unavailable"} for p in plan.calls
                                     if p.target == "lin_grad" and p.case.lane == "cuda"})
    run = UntrustedRun(targets={"mse_grad": TargetOutcome("timeout", "still running"),
                                "lin_grad": lin})
    verdicts = judge_calls(plan, run)
    summary = summarize(plan, run, verdicts)
    assert summary["cuda"] == "not available here"
    # mse_grad never ran to its end: its stand-in calls say nothing of a GPU either way.
    assert summary["stand-in"] == "not run"
    assert describe(summary) == ""
    assert summarize(plan, run, verdicts, "cpu")["cuda"] == "not requested"


# --- whole notebooks, as the grader sees them -------------------------------------------------

@pytest.mark.sandbox
def test_the_solution_notebook_passes_gpu_readiness_and_says_which_devices_ran():
    report = check_notebook(SOURCE, seed=11)
    assert report.score == report.max_score == 10.0
    assert report.devices["cpu"] == report.devices["gpu-ready"] == "passed"
    assert report.devices["cuda"] == ("passed" if HAS_CUDA else "not available here")
    assert report.devices["stand-in"] == "passed"
    line = [n for n in report.notes if "CUDA" in n]
    assert line == ["your code keeps tensors on their device (checked with stand-in CUDA "
                    "tensors, no GPU needed)" + ("; on this machine's GPU (real CUDA, TF32 off): "
                                                 "passed" if HAS_CUDA else "")]


@pytest.mark.sandbox
def test_the_trusted_side_never_touches_cuda(monkeypatch):
    # A later design forks the grader from a warm parent: CUDA there would poison every child.
    def refuse(*args, **kwargs):
        raise AssertionError("the trusted side asked CUDA")

    for name in ("is_available", "init", "_lazy_init", "device_count"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    report = check_notebook(SOURCE, seed=12)  # the runner, its own process, may ask
    assert report.score == 10.0 and report.devices["gpu-ready"] == "passed"


@needs_nbgrader
def test_a_cpu_only_lin_grad_loses_its_device_points_only(make_notebook):
    from tests.conftest import check_report, target_mistakes, target_points

    code, report = check_report(make_notebook({"lin_grad": CPU_ONLY_LIN_GRAD}))
    assert code == 1
    failing = [c for c in report["checks"] if not c["passed"]]
    assert [c["id"] for c in failing] == ["lin_grad/gpu-ready"]
    assert failing[0]["mistakes"] == ["lin_grad.wrong_device"]
    assert target_points(report) == {"mse_grad": 2.0, "relu_grad": 2.0, "lin_grad": 2.7,
                                     "module_backward": 3.0}
    assert "lin_grad.wrong_device" in target_mistakes(report, "lin_grad")
    assert report["devices"]["gpu-ready"] == "failed"
    assert report["devices"]["stand-in"] == "failed"
    assert any(n.startswith("not yet ready for a GPU") for n in report["notes"])


@pytest.mark.sandbox
@needs_cli
def test_device_cpu_never_asks_for_a_gpu_and_scores_the_same():
    done = check_cli(str(SOURCE), "--json", "--device", "cpu", "--seed", "3")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["score"] == 10.0
    assert report["devices"]["cuda"] == "not requested"
    assert report["devices"]["gpu-ready"] == "passed"


@pytest.mark.sandbox
@needs_cli
def test_an_unknown_device_is_one_line_and_exit_2():
    done = check_cli(str(SOURCE), "--device", "tpu")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.sandbox
@needs_cli
@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_is_unusable_with_one_line():
    done = check_cli(str(SOURCE), "--json", "--device", "cuda")
    assert done.returncode == 2
    assert "no CUDA GPU" in json.loads(done.stdout)["error"]  # --json: the error, as JSON
    assert "no CUDA GPU" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# --- real CUDA: run on a GPU machine with `python -m pytest -m cuda tests/judge/test_devices.py` -----

@pytest.mark.cuda
@needs_cuda
def test_cuda_the_reference_solution_matches_on_the_gpu_with_tf32_off():
    solutions = vars(load_solutions())
    for target in ("mse_grad", "relu_grad", "lin_grad"):
        results = run_lane(solutions, target, "cuda")
        assert {p.case.dtype for p, _, _ in results} == {"float64", "float32"}
        for planned, meta, verdict in results:
            assert verdict.passed, verdict
            assert all(meta.g(n).device.startswith("cuda") for n in planned.call.collect)
    assert torch.backends.cuda.matmul.allow_tf32 is False


@pytest.mark.cuda
@needs_cuda
def test_cuda_a_cpu_only_lin_grad_is_wrong_device_on_the_gpu():
    results = run_lane(namespace_of(CPU_ONLY_LIN_GRAD), "lin_grad", "cuda")
    assert results and all(v.mistakes == ("lin_grad.wrong_device",) for _, _, v in results)


@pytest.mark.cuda
@needs_cuda
def test_cuda_check_notebook_on_the_gpu(tmp_path):
    report = check_notebook(SOURCE, device="cuda")
    assert report.score == 10.0 and report.devices["cuda"] == "passed"
    wrong = check_notebook(fill_source({"lin_grad": CPU_ONLY_LIN_GRAD}, tmp_path), device="cuda")
    failing = [c for c in wrong.checks if not c.passed]
    assert [c.id for c in failing] == ["lin_grad/gpu-ready"]
    assert "lin_grad.wrong_device" in failing[0].mistakes
    assert wrong.devices["cuda"] == "failed" and wrong.devices["cpu"] == "passed"


@pytest.mark.cuda
@needs_cuda
@needs_cli
def test_cuda_autograder_check_device_cuda(tmp_path):
    done = check_cli(str(SOURCE), "--json", "--device", "cuda")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["devices"]["cuda"] == "passed"
    path = fill_source({"lin_grad": CPU_ONLY_LIN_GRAD}, tmp_path)
    done = check_cli(path, "--json", "--device", "cuda")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert "lin_grad.wrong_device" in {m for c in report["checks"] for m in c["mistakes"]}
