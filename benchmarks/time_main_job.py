"""The README's main-job command from a fresh clone: an anchor commit against a candidate.

For each commit, one after the other on the same machine: ``git clone`` this repository into
``--work/<role>-<commit>`` (``anchor-...``, ``candidate-...``, so that a commit may be timed
against itself, which shows the machine's noise), check the commit out, then time ``bash
scripts/setup.sh`` and ``.venv/bin/h2q reproduce --out results/default`` (the README's
command) with an empty feature cache of its own (``H2Q_CACHE_DIR``), as on a new machine.
Reports the wall time of the set-up, of the job and of both, the CPU seconds of each (user +
system, of every child process), the ratio anchor / candidate, the machine and its load, and
whether the two runs gave the same numbers (every column of ``cells.csv`` and ``stage1.csv``
but times, and every ``embeddings.npz``). The results folders stay in ``--work``
(``scripts/keep_results.py --from`` keeps one). Writes
``benchmarks/results/time_main_job.{json,md}``.

The machine is shared: run it when nothing else runs, and read the ratio, not the times.

Usage::

    python benchmarks/time_main_job.py --anchor 7ded275 --candidate HEAD --work /tmp/mainjob
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

REPO = Path(__file__).resolve().parents[1]
#: The README's main-job command, after the set-up.
JOB = (".venv/bin/h2q", "reproduce", "--out", "results/default")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, float]:
    """Run ``command`` in ``cwd`` (output to ``log``); its wall and CPU seconds."""
    cpu, wall = _children_cpu(), time.perf_counter()
    with log.open("ab") as handle:
        subprocess.run(command, cwd=cwd, env=env, stdout=handle, stderr=handle, check=True)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": _children_cpu() - cpu}


def run_commit(commit: str, work: Path, role: str) -> dict[str, Any]:
    """Clone ``commit`` into ``work/<role>-<commit>``, set it up and run the main job there;
    its times and results folder (a folder per role, so a commit can be timed against
    itself)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", commit],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    name = f"{role}-{sha}"
    clone = work / name
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", sha], cwd=clone, check=True)
    cache = work / f"{name}-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "H2Q_CACHE_DIR": str(cache)}
    log = work / f"{name}.log"
    log.unlink(missing_ok=True)
    load = list(os.getloadavg())
    setup = timed(["bash", "scripts/setup.sh"], clone, env, log)
    job = timed(list(JOB), clone, env, log)
    return {
        "commit": sha,
        "setup": setup,
        "job": job,
        "total_wall_s": setup["wall_s"] + job["wall_s"],
        "total_cpu_s": setup["cpu_s"] + job["cpu_s"],
        "load_average_start": load,
        "results": str(clone / "results" / "default"),
    }


def _rows_without_times(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            {k: v for k, v in row.items() if "time" not in k and "second" not in k}
            for row in csv.DictReader(handle)
        ]


def same_numbers(a: Path, b: Path) -> dict[str, bool]:
    """Whether two results folders hold the same scores and embeddings, bit for bit."""
    same = {
        name: _rows_without_times(a / name) == _rows_without_times(b / name)
        for name in ("cells.csv", "stage1.csv")
    }
    embeddings = sorted(p.relative_to(a) for p in a.glob("runs/**/embeddings.npz"))
    equal = True
    for rel in embeddings:
        with np.load(a / rel) as x, np.load(b / rel) as y:
            equal &= sorted(x.files) == sorted(y.files) and all(
                np.array_equal(x[k], y[k]) for k in x.files
            )
    same[f"embeddings.npz ({len(embeddings)})"] = bool(equal and embeddings)
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", required=True)
    parser.add_argument("--candidate", default="HEAD")
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    load_start = list(os.getloadavg())
    runs = {
        role: run_commit(c, args.work, role)
        for role, c in (("anchor", args.anchor), ("candidate", args.candidate))
    }
    record = {
        "runs": runs,
        "same_numbers": same_numbers(
            Path(runs["anchor"]["results"]), Path(runs["candidate"]["results"])
        ),
        "environment": cpu_environment(load_start, torch_threads=None),
    }
    table = markdown(record)
    write_results("time_main_job", record, table)
    print(table)
    return 0


def _minutes(seconds: float) -> str:
    """``"7 min 05.3 s"``, rounded to a tenth first (so 479.98 s is 8 min 00.0 s)."""
    tenths = round(seconds * 10)
    return f"{tenths // 600} min {tenths % 600 / 10:04.1f} s"


def markdown(record: dict[str, Any]) -> str:
    runs = record["runs"]
    anchor, candidate = runs["anchor"], runs["candidate"]
    null_pair = (
        ["- a null pair (one commit twice): the ratio is the machine's noise and the order's bias"]
        if anchor["commit"] == candidate["commit"]
        else []
    )
    lines = [
        "# The main job from a fresh clone (set-up + `h2q reproduce`), anchor vs candidate",
        "",
        hardware_line(record["environment"]),
        f"- anchor {anchor['commit']}, then candidate {candidate['commit']}, one after the "
        "other; each with an empty feature cache",
        "- same numbers, bit for bit: "
        + ", ".join(f"{k} {v}" for k, v in record["same_numbers"].items()),
        *null_pair,
        "",
        "| phase | anchor wall | candidate wall | anchor / candidate | anchor CPU s | "
        "candidate CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for phase, key in (("set-up", "setup"), ("h2q reproduce", "job")):
        a, c = anchor[key], candidate[key]
        lines.append(
            f"| {phase} | {_minutes(a['wall_s'])} | {_minutes(c['wall_s'])} | "
            f"{a['wall_s'] / c['wall_s']:.2f} | {a['cpu_s']:.0f} | {c['cpu_s']:.0f} |"
        )
    lines.append(
        f"| **total** | **{_minutes(anchor['total_wall_s'])}** | "
        f"**{_minutes(candidate['total_wall_s'])}** | "
        f"{anchor['total_wall_s'] / candidate['total_wall_s']:.2f} | "
        f"{anchor['total_cpu_s']:.0f} | {candidate['total_cpu_s']:.0f} |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
