"""scripts/gpu_check.sh runs the venv's Python (made by setup.sh), not whatever python3 is on
the PATH, and says what to do when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"


def test_default_python_is_the_venvs():
    text = SCRIPT.read_text(encoding="utf-8")
    assert "python=${PYTHON:-.venv/bin/python}" in text
    assert "python3" not in text.replace("python3 ", "").split("set -euo pipefail")[1]


def test_a_missing_python_is_a_clear_error(tmp_path):
    env = {**os.environ, "PYTHON": str(tmp_path / "no-venv" / "python"), "OUT": str(tmp_path)}
    proc = subprocess.run([shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "run `bash scripts/setup.sh` first (or set PYTHON)" in proc.stderr
