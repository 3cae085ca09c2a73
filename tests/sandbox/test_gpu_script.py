"""scripts/gpu-check.sh, the CUDA lane's one prepared run, as a machine without a GPU
runs it: the CUDA parts skip, the rest must pass, and it says which."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.sandbox


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the script is run by hand")
def test_the_gpu_check_skips_its_cuda_parts_cleanly_without_a_gpu(tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu-check.sh"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    said = done.stdout
    assert "GPU: none" in said and "skipped" in said
    assert "solution: 10 / 10" in said
    assert "failing: lin_grad/gpu-ready ['lin_grad.wrong_device']" in said
    assert said.rstrip().endswith(f"the CUDA parts skipped (logs in {tmp_path})")
