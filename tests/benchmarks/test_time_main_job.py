"""benchmarks/time_main_job.py: its comparison of two results folders, its table and its
minute format (the clone, set-up and job themselves take minutes and run by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import time_main_job  # noqa: E402


def _results(folder: Path, score: str, embedding: float) -> Path:
    (folder / "runs" / "dpsh" / "b16").mkdir(parents=True)
    (folder / "cells.csv").write_text(f"method,map_at_k,fit_time_s\ndpsh,{score},0.5\n")
    (folder / "stage1.csv").write_text("method,best_val_map,seconds\ndpsh,0.8,12.0\n")
    np.savez(folder / "runs" / "dpsh" / "b16" / "embeddings.npz", train=np.full((2, 3), embedding))
    return folder


def test_same_numbers_ignores_times_and_sees_a_changed_score_or_embedding(tmp_path):
    a = _results(tmp_path / "a", "0.75", 1.0)
    same = _results(tmp_path / "b", "0.75", 1.0)
    (same / "cells.csv").write_text("method,map_at_k,fit_time_s\ndpsh,0.75,9.9\n")
    assert all(time_main_job.same_numbers(a, same).values())
    score = _results(tmp_path / "c", "0.76", 1.0)
    assert time_main_job.same_numbers(a, score) == {
        "cells.csv": False,
        "stage1.csv": True,
        "embeddings.npz (1)": True,
    }
    embedding = _results(tmp_path / "d", "0.75", 1.0 + 1e-7)
    assert time_main_job.same_numbers(a, embedding)["embeddings.npz (1)"] is False


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (479.98, "8 min 00.0 s"),
        (443.84, "7 min 23.8 s"),
        (59.96, "1 min 00.0 s"),
        (5, "0 min 05.0 s"),
    ],
)
def test_minutes_rounds_before_splitting(seconds, text):
    assert time_main_job._minutes(seconds) == text


def _record(anchor: str, candidate: str) -> dict:
    def run(commit: str, setup: float, job: float) -> dict:
        return {
            "commit": commit,
            "setup": {"wall_s": setup, "cpu_s": setup},
            "job": {"wall_s": job, "cpu_s": 2 * job},
            "total_wall_s": setup + job,
            "total_cpu_s": setup + 2 * job,
        }

    return {
        "runs": {"anchor": run(anchor, 40.0, 480.0), "candidate": run(candidate, 20.0, 400.0)},
        "same_numbers": {"cells.csv": True},
        "environment": {
            "cpu": "test CPU",
            "cpu_count": 2,
            "load_average_start": [0, 0, 0],
            "load_average_end": [1, 1, 1],
        },
    }


def test_table_gives_ratios_and_names_a_null_pair():
    table = time_main_job.markdown(_record("abc1234", "def5678"))
    assert "| set-up | 0 min 40.0 s | 0 min 20.0 s | 2.00 | 40 | 20 |" in table
    assert "| **total** | **8 min 40.0 s** | **7 min 00.0 s** | 1.24 |" in table
    assert "null pair" not in table
    null = time_main_job.markdown(_record("abc1234", "abc1234"))
    assert "- a null pair (one commit twice)" in null
