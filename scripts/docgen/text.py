"""Tables of binary codes of MiniLM text embeddings: recall of the float neighbours.

Made from ``benchmarks/results/bench_text.json`` alone (written by ``benchmarks/bench_text.py``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

#: Rows of the tables, in order (methods absent from the JSON are skipped).
METHODS = (
    "sign",
    "centred sign",
    "PCA sign",
    "PCA + random rotation",
    "ITQ",
    "H2Q",
    "ITQ, no PCA",
    "ITQ, no PCA, centred",
    "H2Q, no PCA",
    "H2Q, no PCA, centred",
)


def _recall_table(rows: list[dict], tie: str) -> list[str]:
    bits = sorted({r["bits"] for r in rows})
    lines = [
        "| method | " + " | ".join(f"{b} bits" for b in bits) + " |",
        "|---|" + "---|" * len(bits),
    ]
    for method in METHODS:
        cells = []
        for b in bits:
            r = next((r for r in rows if r["bits"] == b and r["method"] == method), None)
            cells.append(
                "-"
                if r is None
                else f"{r[f'recall@10_tie_{tie}']:.1f} / {r[f'recall@100_tie_{tie}']:.1f}"
            )
        if any(c != "-" for c in cells):
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _time_table(results: dict) -> list[str]:
    lines = [
        "| bits | ITQ fit s | H²Q fit s | H²Q / ITQ | H²Q iterations (best) |",
        "|---|---|---|---|---|",
    ]
    for b, times in results["fit_times"].items():
        h2q = next(r for r in results["rows"] if r["bits"] == int(b) and r["method"] == "H2Q")
        t_itq, t_h2q = statistics.median(times["ITQ"]), statistics.median(times["H2Q"])
        lines.append(
            f"| {b} | {t_itq:.2f} | {t_h2q:.2f} | {t_h2q / t_itq:.2f} | "
            f"{h2q.get('n_iter', '-')} ({h2q.get('best_iteration', '-')}) |"
        )
    return lines


def render_result(result: dict) -> list[str]:
    """The tables from a ``bench_text.py`` JSON record."""
    r = result["results"]
    env = result["environment"]
    repeats = len(next(iter(r["fit_times"].values()))["ITQ"])
    return [
        f"On {env['cpu_model']} ({env['cpus']} CPUs): {r['n_query']:,} queries against "
        f"{r['n_database']:,} database items, quantizers fitted on {r['n_fit']:,}; recall@10 / "
        "recall@100 x100, Hamming ties broken by the float distance of the original embeddings:",
        "",
        *_recall_table(r["rows"], "float"),
        "",
        "and by database id (what a plain Hamming index returns):",
        "",
        *_recall_table(r["rows"], "id"),
        "",
        f"Fit times (median of {repeats} interleaved fits each, {env['threads']} thread, "
        f"load average {result['loadavg_before'][0]:g} before and "
        f"{result['loadavg_after'][0]:g} after, other jobs sharing the machine):",
        "",
        *_time_table(r),
    ]


def render(repo: Path, page_dir: Path) -> list[str]:
    """The tables of ``benchmarks/results/bench_text.json`` under ``repo``."""
    path = repo / "benchmarks" / "results" / "bench_text.json"
    return render_result(json.loads(path.read_text(encoding="utf-8")))
