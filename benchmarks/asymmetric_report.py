"""Targets and the Markdown table of the asymmetric-scoring benchmark, from its JSON record.

Targets (checked per data set, each against its anchor in the same run):

- ``1bit_default_ge_rabitq_qb4``: the default :class:`h2q.AsymmetricIndex` R@10 (no
  rescoring) >= faiss RaBitQ (qb 4);
- ``1bit_best_ge_rabitq_qb4_plus_1``: the best 1-bit asymmetric variant >= that + 1 point;
- ``1bit_qps_ge_1.5x_fastscan``: the fastest 1-bit asymmetric variant with R@10 >= the
  FastScan index's has qps@10 >= 1.5x FastScan's;
- ``1bit_bytes_le_faiss``: the default's bytes per item <= faiss RaBitQ's;
- ``{2,4}bit_ge_faiss``: the best asymmetric variant at 2 / 4 bits per dim >= faiss's best
  (qb 4 or 8) at that width;
- ``pca{64,128}_ge_faiss``: the best asymmetric variant at that width >= faiss PCA + RR + RaBitQ;
- ``rescore50_ge_99``: the default's R@10 after rescoring the top 50 >= 99
  (``rescore50_best_ge_99``: the best 1-bit asymmetric variant's).

A target is ``None`` when a system it needs is missing from the run.
"""

from __future__ import annotations

from typing import Any

from asymmetric_specs import ANCHOR, DEFAULT, FASTSCAN, G1, G2, G4

Row = dict[str, Any]


def _by_name(rows: list[Row]) -> dict[str, Row]:
    return {r["name"]: r for r in rows}


def _best(rows: list[Row], family: str, group: str, key: str = "R@10") -> Row | None:
    cands = [r for r in rows if r["family"] == family and r["group"] == group and key in r]
    return max(cands, key=lambda r: r[key]) if cands else None


def _ge(a: Row | None, b: Row | None, key: str = "R@10", plus: float = 0.0) -> bool | None:
    if a is None or b is None or key not in a or key not in b:
        return None
    return bool(a[key] >= b[key] + plus)


def _qps_target(rows: list[Row]) -> tuple[bool | None, float | None]:
    fs = _by_name(rows).get(FASTSCAN)
    if fs is None or "qps@10" not in fs:
        return None, None
    ok = [
        r
        for r in rows
        if r["family"] == "asym" and r["group"] == G1 and "qps@10" in r and r["R@10"] >= fs["R@10"]
    ]
    if not ok:
        return (False, None) if any(r["family"] == "asym" for r in rows) else (None, None)
    ratio = max(r["qps@10"] for r in ok) / fs["qps@10"]
    return ratio >= 1.5, ratio


def dataset_targets(rows: list[Row]) -> dict[str, Any]:
    """The targets of one data set's rows (see the module notes)."""
    by = _by_name(rows)
    default, anchor = by.get(DEFAULT), by.get(ANCHOR[G1])
    out: dict[str, Any] = {
        "1bit_default_ge_rabitq_qb4": _ge(default, anchor),
        "1bit_best_ge_rabitq_qb4_plus_1": _ge(_best(rows, "asym", G1), anchor, plus=1.0),
    }
    out["1bit_qps_ge_1.5x_fastscan"], out["1bit_qps_ratio_vs_fastscan"] = _qps_target(rows)
    out["1bit_bytes_le_faiss"] = _ge(anchor, default, key="bytes_per_item")
    for bits, group in ((2, G2), (4, G4)):
        out[f"{bits}bit_ge_faiss"] = _ge(_best(rows, "asym", group), _best(rows, "faiss", group))
    for b in (64, 128):
        group = f"{b} bits (PCA)"
        out[f"pca{b}_ge_faiss"] = _ge(_best(rows, "asym", group), by.get(ANCHOR[group]))
    r50 = default.get("R@10 rescore 50") if default else None
    out["rescore50_ge_99"] = None if r50 is None else bool(r50 >= 99.0)
    best50 = _best(rows, "asym", G1, key="R@10 rescore 50")
    out["rescore50_best_ge_99"] = (
        None if best50 is None else bool(best50["R@10 rescore 50"] >= 99.0)
    )
    return out


def targets(record: dict[str, Any]) -> dict[str, Any]:
    """Targets per data set; labelled sets also say whether Hamming ranking of H²Q codes has
    the higher mAP@5000 than the default asymmetric index (where Hamming stays the default)."""
    out = {}
    for name, ds in record["datasets"].items():
        rows = ds["rows"]
        out[name] = dataset_targets(rows)
        if ds["labelled"]:
            by = _by_name(rows)
            ham, asym = by.get("h2q H2Q Hamming"), by.get(DEFAULT)
            out[name]["hamming_map_ge_default_asym_map"] = _ge(ham, asym, key="mAP@5000")
    return out


def _cell(row: Row, key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else ""


def table(ds: dict[str, Any]) -> list[str]:
    """One Markdown table of a data set's rows, grouped by code size."""
    cols = ["R@10", "R@10 rescore 20", "R@10 rescore 50", "R@10 rescore 100"]
    if ds["labelled"]:
        cols.append("mAP@5000")
    head = [
        "group",
        "system",
        "bytes/item",
        *cols,
        "qps@10 (threads)",
        "qps@100 (threads)",
        "build s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = [G1, G2, G4, "64 bits (PCA)", "128 bits (PCA)"]
    for row in sorted(ds["rows"], key=lambda r: order.index(r["group"])):
        cells = [row["group"], row["name"], f"{row['bytes_per_item']:.0f}"]
        cells += [_cell(row, c, ".1f") for c in cols]
        for k in (10, 100):
            cells.append(
                f"{row[f'qps@{k}']:,.0f} ({row[f'threads@{k}']})" if f"qps@{k}" in row else ""
            )
        cells.append(f"{row['build_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(record: dict[str, Any]) -> str:
    """The whole results page: per data set its table, targets and environment."""
    lines = [
        "# Asymmetric scoring vs faiss RaBitQ",
        "",
        "Generated by benchmarks/bench_asymmetric.py from bench_asymmetric JSON. R@10: recall "
        "of the exact inner-product top 10, x100; rescore R: after re-ranking the top R by "
        "the float inner product; mAP@5000 on labelled sets. qps: queries/s of one call on "
        "all queries, best of the repeats, at the best thread count (in brackets).",
        "",
    ]
    for name, ds in record["datasets"].items():
        sizes = ", ".join(f"{k} {v[0]:,} x {v[1]}" for k, v in ds["sizes"].items())
        lines += [f"## {name} ({sizes})", "", *table(ds), ""]
        if not ds["asymmetric_index"]:
            lines += ["h2q.AsymmetricIndex was not importable in this run: anchors only.", ""]
        checks = record["targets"].get(name, {})
        shown = (f"{k} = {round(v, 2) if isinstance(v, float) else v}" for k, v in checks.items())
        lines += ["Targets: " + "; ".join(shown) + ".", "", _environment(ds), ""]
    return "\n".join(lines)


def _environment(ds: dict[str, Any]) -> str:
    env, args = ds["environment"], ds["args"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    return (
        f"CPU: {env['cpu']} ({env['n_cpus']} logical CPUs); {versions}. Threads tried "
        f"{args['threads']}, {args['repeats']} timed call(s) each. Load average at start "
        f"{[round(x, 2) for x in env['load_average_start']]}, at end "
        f"{[round(x, 2) for x in env['load_average_end']]} (a machine shared with other jobs); "
        f"{ds['seconds']:.0f} s. h2q from commit {str(ds['h2q_source'].get('commit'))[:10]}"
        f"{' (with uncommitted changes)' if ds['h2q_source'].get('dirty') else ''}."
    )
