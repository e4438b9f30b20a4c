"""The prepared GPU check (benchmarks/gpu_check.py) stays runnable: its CPU mode, tiny sizes.

On a CPU the device-vs-CPU comparisons are trivial; what this guards is that every check
still runs against the current API and writes its JSON. The script has not been run on a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def test_gpu_check_runs_on_cpu_in_tiny_mode(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--epochs", "1", "--out", out],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    checks = ("environment", "training", "features", "stage2", "search", "reduced_full")
    assert all(result[name]["ok"] for name in checks), {n: result[n] for n in checks}
    assert result["all_ok"] and result["tiny"]
    assert result["training"]["val_map_device"] == result["training"]["val_map_cpu"]
    assert result["features"]["max_abs_diff_vs_cpu"] == 0.0
    assert result["reduced_full"]["stage1_runs"] >= 1
    assert result["reduced_full"]["full_stage1_runs"] == 624


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal needs a machine without CUDA")
def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", tmp_path / "g.json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3 and "CUDA is not available" in proc.stderr
    assert not (tmp_path / "g.json").exists()
