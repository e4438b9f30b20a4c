"""Benchmark: ``h2q train --dataset digits --method adsh --bits 16`` end to end.

Runs the command in a fresh subprocess (default settings, ``--no-progress``), records its wall
time and CPU time (user + system, from the child's resource usage), whether it wrote
``embeddings.npz`` and ``codes.npy``, and its validation mAP. Target: within 120 s.
Results go to ``benchmarks/results/bench_adsh_train.{json,md}`` with the load average.

Usage::

    python benchmarks/bench_adsh_train.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import environment, environment_markdown, write_results  # noqa: E402

COMMAND = ["train", "--dataset", "digits", "--method", "adsh", "--bits", "16", "--no-progress"]


def one_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        command = [sys.executable, "-m", "h2q.cli.main", *COMMAND, "--out", str(out)]
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = json.loads((out / "summary.json").read_text())
        return {
            "wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "wrote_embeddings": (out / "embeddings.npz").is_file(),
            "wrote_codes": (out / "codes.npy").is_file(),
            "best_val_map": summary["best_val_map"],
            "load_average_end": list(os.getloadavg()),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    env = environment()
    runs = [one_run() for _ in range(args.repeats)]
    env["load_average_end"] = list(os.getloadavg())
    worst = max(r["wall_s"] for r in runs)
    record = {
        "benchmark": "bench_adsh_train",
        "command": "h2q " + " ".join(COMMAND),
        "runs": runs,
        "targets": {
            "within_120_s": worst <= 120,
            "wrote_embeddings_and_codes": all(
                r["wrote_embeddings"] and r["wrote_codes"] for r in runs
            ),
        },
        "environment": env,
    }
    rows = "\n".join(
        f"| {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['wrote_embeddings']} | {r['wrote_codes']} | "
        f"{r['best_val_map']:.4f} | {r['load_average_end'][0]:.1f} |"
        for r in runs
    )
    table = (
        f"# `{record['command']}`\n\n"
        "| wall s | CPU s | embeddings.npz | codes.npy | val mAP | load (1 min) at end |\n"
        "|---|---|---|---|---|---|\n" + rows + "\n\n"
        f"- Targets met: {record['targets']}\n" + environment_markdown(env)
    )
    write_results("bench_adsh_train", record, table)
    print(table)


if __name__ == "__main__":
    main()
