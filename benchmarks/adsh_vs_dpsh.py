"""ADSH against DPSH (lambda = 0) on the default data, several seeds and bit lengths.

Each stage-1 run is the one ``h2q reproduce`` makes with its default preset (Fashion-MNIST,
frozen EfficientNet-Lite0 features at 64 px, a 512-unit MLP head, the seeded split with
``max_database=10,000``): DPSH with the common loop and strategy lambda0; ADSH with its own
schedule (``--adsh`` JSON: its settings, e.g. the learning rate chosen on the validation split
by ``adsh_lr_sweep.py``). Both are scored as the grid scores its lambda0 row: query fold
against the database fold, codes = sign of the written embeddings, mAP@1000, Hamming ranking
with ties broken by the continuous features (``h2q.evaluation.evaluate_quantizers``).

Targets: mean ADSH mAP >= mean DPSH - 10 points at 32 bits and >= DPSH - 5 at 64 bits.
Results go to ``benchmarks/results/adsh_vs_dpsh.{json,md}``; run folders to ``--work``.

Usage::

    H2Q_CACHE_DIR=... python benchmarks/adsh_vs_dpsh.py --work /tmp/adsh-runs \\
        [--bits 32,64] [--seeds 0,1,2] [--adsh '{"lr": 0.01}'] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import environment, environment_markdown, write_results  # noqa: E402

#: Points (x100) by which ADSH may trail DPSH, per bit length.
MARGINS = {32: 10.0, 64: 5.0}


def run_folder(method: str, bits: int, seed: int, adsh: dict[str, Any], work: Path) -> Any:
    """The run's TrainConfig, the default grid, and its folder (named after its settings)."""
    from h2q.experiments.config import get_config, settings_hash
    from h2q.experiments.records import Stage1Run
    from h2q.experiments.runner import stage1_config

    grid = get_config("default", method_options={"adsh": adsh})
    run = Stage1Run(method, "lambda0", None, bits, seed)
    config = stage1_config(grid, run, grid.train.dataset)
    return config, grid, work / f"{method}-b{bits}-s{seed}" / settings_hash(config.identity())


def one_run(method: str, bits: int, seed: int, adsh: dict[str, Any], work: Path) -> dict:
    """Train one stage-1 run as the default grid would and score its query fold."""
    import torch

    from h2q.embeddings import load_embeddings
    from h2q.evaluation import evaluate_quantizers
    from h2q.experiments.rows import BASELINE, ROW_BY_KEY
    from h2q.training import run_training

    torch.set_num_threads(1)
    config, grid, out = run_folder(method, bits, seed, adsh, work)
    start = time.perf_counter()
    if (out / "summary.json").is_file():  # a finished run of the same settings: reused
        summary = json.loads((out / "summary.json").read_text())
    else:
        summary = run_training(
            config, out, progress=False, overwrite=True, keep_checkpoints=False
        ).summary
    e = load_embeddings(out / "embeddings.npz")
    scored = evaluate_quantizers(
        {BASELINE: ROW_BY_KEY[BASELINE].make_quantizer(seed)}, e, k=grid.k, tie_break=grid.tie_break
    )
    return {
        "method": method,
        "bits": bits,
        "seed": seed,
        "val_map": summary["best_val_map"],
        "run_seconds": summary["seconds"]["total"],
        "map_at_k": scored.rows[0].map_at_k,
        "k": scored.k,
        "seconds": time.perf_counter() - start,
        "load_average_end": list(os.getloadavg()),
    }


def run_all(jobs: list[list[str]], parallel: int) -> list[dict[str, Any]]:
    """Run the child commands, ``parallel`` at a time; their JSON results in order."""
    results, active = [], []
    pending = list(jobs)
    while pending or active:
        while pending and len(active) < parallel:
            active.append(subprocess.Popen(pending.pop(0), stdout=subprocess.PIPE, text=True))
        proc = active.pop(0)
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a run failed (exit {proc.returncode}): {proc.args}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def summarize(runs: list[dict[str, Any]], bits: list[int]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for b in bits:
        row: dict[str, Any] = {}
        for method in ("dpsh", "adsh"):
            values = [r["map_at_k"] for r in runs if r["method"] == method and r["bits"] == b]
            if not values:
                continue
            row[method] = {
                "mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "per_seed": values,
            }
        if len(row) < 2:
            continue
        seeds = sorted(r["seed"] for r in runs if r["method"] == "adsh" and r["bits"] == b)
        row["seeds"] = seeds
        gap = 100 * (row["adsh"]["mean"] - row["dpsh"]["mean"])
        row["adsh_minus_dpsh_points"] = gap
        row["target_met"] = gap >= -MARGINS.get(b, 0.0)
        table[str(b)] = row
    return table


def markdown(record: dict[str, Any]) -> str:
    rows = []
    for b, row in record["table"].items():
        d, a = row["dpsh"], row["adsh"]
        rows.append(
            f"| {b} | {row['seeds']} | {100 * d['mean']:.2f} ± {100 * d['std']:.2f} | "
            f"{100 * a['mean']:.2f} ± {100 * a['std']:.2f} | "
            f"{row['adsh_minus_dpsh_points']:+.2f} | -{MARGINS.get(int(b), 0):g} | "
            f"{row['target_met']} |"
        )
    cfg = record["config"]
    return (
        "# ADSH vs DPSH (lambda = 0), default data\n\n"
        f"mAP@{record['runs'][0]['k']} x100, query fold vs database fold, mean ± std over the "
        f"seeds listed; ADSH settings {json.dumps(cfg['adsh'])}.\n\n"
        "| bits | seeds | DPSH λ=0 | ADSH | ADSH - DPSH | allowed | met |\n"
        "|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + environment_markdown(record["environment"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the run folders")
    parser.add_argument("--bits", default="32,64")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--adsh", default="{}", help="ADSH settings as JSON")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--only-finished",
        action="store_true",
        help="score only the (method, bits, seed) runs already finished in --work; train none",
    )
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "BITS", "SEED"))
    args = parser.parse_args()
    adsh = json.loads(args.adsh)
    if args.child:
        method, bits, seed = args.child
        print(json.dumps(one_run(method, int(bits), int(seed), adsh, args.work)))
        return
    env = environment()
    bits = [int(b) for b in args.bits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    base = [sys.executable, __file__, "--work", str(args.work), "--adsh", args.adsh, "--child"]
    todo = [(m, b, s) for s in seeds for b in bits for m in ("adsh", "dpsh")]
    if args.only_finished:  # both methods' runs of a (bits, seed) pair, or neither
        done = {
            (m, b, s)
            for m, b, s in todo
            if (run_folder(m, b, s, adsh, args.work)[2] / "summary.json").is_file()
        }
        todo = [(m, b, s) for m, b, s in todo if {("adsh", b, s), ("dpsh", b, s)} <= done]
    jobs = [[*base, m, str(b), str(s)] for m, b, s in todo]
    runs = run_all(jobs, args.jobs)
    env["load_average_end"] = list(os.getloadavg())
    record = {
        "benchmark": "adsh_vs_dpsh",
        "config": {
            "bits": bits,
            "seeds": seeds,
            "adsh": adsh,
            "data": "default preset",
            "only_finished": args.only_finished,
        },
        "runs": runs,
        "table": summarize(runs, bits),
        "environment": env,
    }
    table = markdown(record)
    json_path, md_path = write_results("adsh_vs_dpsh", record, table)
    print(table)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
