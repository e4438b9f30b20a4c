"""The README's three headline figures: the paper's result, search speed, binary recall."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from . import grids
from .grids import JOBS
from .scale import machine


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _improvements(kept: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(kept / "improvements.csv", encoding="utf-8", newline="") as handle:
        return {(r["row"], r["baseline"]): r for r in csv.DictReader(handle)}


def paper_result(repo: Path) -> str:
    """H²Q (L2) against λ = 0 and +λ in the main job, from its kept ``improvements.csv``."""
    kept = repo / JOBS["default"]
    summary = _json(kept / "summary.json")
    rows = _improvements(kept)
    sign, penalty = rows[("h2q-l2", "lambda0")], rows[("h2q-l2", "penalty")]
    cpus = " and ".join(summary.get("cpus") or ["an unrecorded CPU"])

    def interval(r: dict[str, str]) -> str:
        return f"95% interval {float(r['ci_low']):+.2f} to {float(r['ci_high']):+.2f}"

    return (
        f"- **The paper's result**: after a stage-1 training with no quantization penalty, H²Q "
        f"codes raised mAP@{summary['k']} over the plain signs of the same embeddings by "
        f"**{float(sign['mean']):+.2f} points** on average ({interval(sign)}; higher in "
        f"{sign['higher']} of {sign['cells']} (method, bits) cells), and differed from a "
        f"trained quantization penalty by {float(penalty['mean']):+.2f} ({interval(penalty)}) "
        f"({summary['setup']}; {grids.duration(summary['wall_seconds'])} of grid wall time "
        f"on {cpus}; `docs/results/default/`)."
    )


def _bench_flat(record: dict[str, Any], n_bits: int, k: int) -> dict[str, Any]:
    case = next(
        c for c in record["cases"] if (c["config"]["n_bits"], c["config"]["k"]) == (n_bits, k)
    )
    return case["methods"]["h2q flat (numba)"]


def search_speed(repo: Path) -> str:
    """The flat scan against faiss (``bench_flat.json``) and MIH at 10^7 codes."""
    results = repo / "benchmarks" / "results"
    flat = _json(results / "bench_flat.json")
    row = _bench_flat(flat, 64, 10)
    scale = _json(results / "bench_scale_clustered-10000000-64.json")
    mih = scale["cases"][0]["k10"]["h2q MIH"]
    return (
        f"- **Search speed**: exact Hamming top-10 over 10^6 64-bit codes at "
        f"**{row['queries_per_s']:,.0f} queries/s**, {row['speedup_vs_faiss_flat']:.1f}x "
        f"faiss's `IndexBinaryFlat` with identical results; multi-index hashing over 10^7 "
        f"clustered codes at {mih['queries_per_s']:,.0f} queries/s, exact "
        f"({machine(flat['environment'])}, 2 threads; `benchmarks/results/bench_flat.json`, "
        "`bench_scale_clustered-10000000-64.json`)."
    )


def binary_recall(repo: Path) -> str:
    """Recall of the float top-10 with 384-bit codes of MiniLM embeddings (``bench_text``)."""
    record = _json(repo / "benchmarks" / "results" / "bench_text.json")
    rows = {(r["method"], r["bits"]): r for r in record["results"]["rows"]}
    h2q, sign = rows[("H2Q", 384)], rows[("sign", 384)]
    env = record["environment"]
    return (
        f"- **Binary recall**: 384-bit H²Q codes of all-MiniLM-L6-v2 sentence embeddings put "
        f"**{h2q['recall@10_tie_float']:.1f}%** of each query's exact top-10 in their Hamming "
        f"top-10 (raw sign bits: {sign['recall@10_tie_float']:.1f}%), over "
        f"{record['results']['n_database']:,} WordNet glosses ({env['cpu_model']}; "
        "`benchmarks/results/bench_text.json`)."
    )


def render(repo: Path, page_dir: Path) -> list[str]:
    """The three headline lines."""
    return [paper_result(repo), search_speed(repo), binary_recall(repo)]
