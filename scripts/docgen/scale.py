"""Tables of exact Hamming search: the flat scan's back ends and search at scale.

Made from ``benchmarks/results/bench_flat.json`` (the flat scan's back ends, interleaved in one
process) and ``benchmarks/results/bench_scale_CASE.json`` (one file per case, written by
``benchmarks/bench_scale.py --only CASE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The bench_scale cases shown, in this order (a case without a result file is left out).
CASES = (
    "uniform-1000000-64",
    "clustered-1000000-64",
    "uniform-1000000-256",
    "clustered-1000000-256",
    "clustered-10000000-64",
    "uniform-10000000-64",
)
_FLAT = "h2q flat (numba)"


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        message = f"cannot read {path} ({exc}); rerun the benchmark that writes it."
        raise ValueError(message) from None


def _load_avg(start: list[float], end: list[float]) -> str:
    return f"{start[0]:.1f} -> {end[0]:.1f}"


def _power(n: int) -> str:
    text = f"{n:,}"
    exponent = len(str(n)) - 1
    return f"10^{exponent}" if n == 10**exponent else text


def flat_table(record: dict[str, Any]) -> list[str]:
    """The bench_flat table: every back end, each width and k."""
    env = record["environment"]
    first = record["cases"][0]["config"]
    lines = [
        f"Flat scan on {machine(env)}, interleaved in one process (`benchmarks/bench_flat.py`: "
        f"{_power(first['n_db'])} uniform codes, {first['n_queries']:,} queries, 2 threads, "
        f"medians of {record['repeats']} runs; load average "
        f"{_load_avg(env['load_average_start'], env['load_average_end'])}):",
        "",
        "| bits | k | method | queries/s | vs faiss IndexBinaryFlat | identical D, I |",
        "|---|---|---|---|---|---|",
    ]
    for case in record["cases"]:
        c = case["config"]
        for name, row in case["methods"].items():
            lines.append(
                f"| {c['n_bits']} | {c['k']} | {name} | {row['queries_per_s']:,.0f} | "
                f"{row['speedup_vs_faiss_flat']:.2f}x | {'yes' if row['identical_D_I'] else 'no'} |"
            )
    return lines


def _exact(row: dict[str, Any]) -> str:
    if "share_within_exact_kth" in row:
        return f"no ({row['share_within_exact_kth']:.1%} within the exact k-th)"
    return "yes" if row["exact"] else "no"


def _scale_rows(case: dict[str, Any]) -> list[str]:
    c = case["config"]
    label = f"{c['kind']} {_power(c['n_db'])} x {c['n_bits']} ({c['n_queries']:,})"
    lines = []
    groups = [(f"k={k}", case[f"k{k}"], _FLAT) for k in c["ks"]]
    groups.append(("r <= 2", case["range_r2"], "h2q flat range"))
    for search, rows, flat_name in groups:
        flat_s = rows[flat_name]["median_s"]
        for name, row in rows.items():
            if not isinstance(row, dict):
                continue
            vs_flat = f"{flat_s / row['median_s']:.2f}x" if name.startswith("h2q") else ""
            lines.append(
                f"| {label} | {search} | {name} | {row['queries_per_s']:,.0f} | "
                f"{row['speedup_vs_faiss_flat']:.2f}x | {vs_flat} | {_exact(row)} |"
            )
    return lines


def _scale_note(case: dict[str, Any]) -> str:
    c = case["config"]
    return (
        f"- {c['kind']} {_power(c['n_db'])} x {c['n_bits']}: MIH m = {case['mih_substrings']}, "
        f"build {case['mih_build_s']:.1f} s (faiss IndexBinaryMultiHash "
        f"{case['faiss']['multihash_build_s']:.1f} s), memory "
        f"{case['mih_memory_bytes'] / 2**20:.0f} MiB = "
        f"{case['mih_memory_bytes'] / case['flat_index_bytes']:.2f}x the flat index (codes + "
        f"ids); median k-th distance at k=100: {case['k100']['median_kth_distance']:.0f}; "
        f"{case['range_r2']['mean_results_per_query']:.1f} results within radius 2 per query; "
        f"{case['repeats']} runs; load average "
        f"{_load_avg(case['load_average_start'], case['load_average_end'])}."
    )


def scale_table(results: Path) -> list[str]:
    """The bench_scale table over every kept case, then one note per case."""
    cases = []
    for name in CASES:
        path = results / f"bench_scale_{name}.json"
        if path.exists():
            record = _load(path)
            for case in record["cases"]:
                cases.append(
                    {
                        **case,
                        "repeats": record["repeats"],
                        "machine": machine(record["environment"]),
                    }
                )
    if not cases:
        raise ValueError(f"no bench_scale_*.json in {results}; run benchmarks/bench_scale.py.")
    names = " and ".join(dict.fromkeys(case["machine"] for case in cases))
    out = [
        f"Search at scale on {names} (`benchmarks/bench_scale.py`, one case at a time; "
        "faiss in its own process right before h2q; 'vs h2q flat' compares with h2q's flat "
        "scan of the same run):",
        "",
        "| codes (queries) | search | method | queries/s | vs faiss IndexBinaryFlat "
        "| vs h2q flat | exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        out += _scale_rows(case)
    out.append("")
    out += [_scale_note(case) for case in cases]
    return out


def machine(env: dict[str, Any]) -> str:
    """``"AMD EPYC (2 CPUs)"`` from a benchmark's ``environment`` record."""
    cpus = env.get("n_cpus", env.get("cpus", env.get("cpu_count", "?")))
    return f"{env.get('cpu', env.get('cpu_model', 'an unrecorded CPU'))} ({cpus} CPUs)"


def render(repo: Path, page_dir: Path) -> list[str]:
    """Both tables and the notes on each case."""
    results = repo / "benchmarks" / "results"
    return [*flat_table(_load(results / "bench_flat.json")), "", *scale_table(results)]
