"""Benchmark: packed sign codes of rotated embeddings, h2q.encode_sign vs plain numpy.

Anchor (same run, same data):
    np.packbits(X @ R.T >= 0, axis=1, bitorder="little")
Ours:
    h2q.codes.encode_sign(X, rotation=R)

Data: 1,000,000 x 64 float32 Gaussian embeddings and a random 64 x 64 orthogonal matrix
(``--quick``: 100,000 rows). Seeded. One warm-up call each, then ``--repeats`` interleaved
rounds (ours, anchor, ours, anchor, ...), so that load from other processes hits both alike.
Reports the median and spread of each, the ratio of medians, and the peak memory of each
method relative to the input size, measured two ways:

- ``tracemalloc``: the peak of numpy/Python allocations during one call (in this process);
- peak RSS: a fresh subprocess builds the input, warms up, then runs the method once; the
  rise of its resident-set high-water mark (``VmHWM``, else ``ru_maxrss``) over the resident
  size just before the call, relative to the input size.

Targets: ours no slower than the anchor (ratio of medians <= 1) and peak (input + extra)
under 3x the input. Results go to ``benchmarks/results/bench_encode.{json,md}``.

Usage::

    python benchmarks/bench_encode.py [--quick] [--repeats 7] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ENV_VARS = [
    "OPENBLAS_CORETYPE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOTO_NUM_THREADS",
]


# ----------------------------------------------------------------------------------------------
# Helpers shared with bench_search.py (which imports them from here)


def environment() -> dict[str, Any]:
    """Hardware, library versions and threading environment of this run."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("faiss", "torch", "h2q"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    blas = None
    try:
        config = np.show_config(mode="dicts")
        blas_info = config.get("Build Dependencies", {}).get("blas", {})
        blas = f"{blas_info.get('name')} {blas_info.get('version')}"
    except Exception:  # older numpy: no dict mode
        pass
    return {
        "cpu": cpu,
        "n_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions,
        "numpy_blas": blas,
        "env": {name: os.environ.get(name) for name in ENV_VARS},
        "load_average_start": list(os.getloadavg()),
    }


def summarize(times: list[float]) -> dict[str, Any]:
    """Median and spread of a list of timings in seconds."""
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) > 1 else (times[0],) * 3
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "iqr_s": q3 - q1,
        "repeats": len(times),
        "times_s": times,
    }


def interleaved_timings(
    methods: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, dict[str, Any]]:
    """One warm-up call per method, then ``repeats`` rounds calling each method once."""
    for fn in methods.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: summarize(values) for name, values in times.items()}


def write_results(name: str, record: dict[str, Any], table: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md``, each atomically."""
    from h2q._io import atomic_write

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{name}.json"
    md_path = RESULTS_DIR / f"{name}.md"
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(json_path, lambda f: f.write(text.encode()))
    atomic_write(md_path, lambda f: f.write(table.encode()))
    return json_path, md_path


def environment_markdown(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    threads = ", ".join(f"{k}={v}" for k, v in env["env"].items() if v is not None) or "none set"
    return (
        f"- CPU: {env['cpu']} ({env['n_cpus']} logical CPUs); {env['platform']}\n"
        f"- Versions: {versions}; numpy BLAS: {env['numpy_blas']}\n"
        f"- Threading environment: {threads}\n"
        f"- Load average (1, 5, 15 min) at start {env['load_average_start']}, "
        f"at end {env.get('load_average_end')} (a shared machine: other processes ran)\n"
    )


# ----------------------------------------------------------------------------------------------
# This benchmark


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)  # no float64 temporary
    R = np.linalg.qr(rng.standard_normal((d, d)))[0].astype(np.float32)
    return X, R


def anchor(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    return np.packbits(X @ R.T >= 0, axis=1, bitorder="little")


def ours(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    from h2q.codes import encode_sign

    return encode_sign(X, rotation=R)


METHODS = {"encode_sign": ours, "anchor": anchor}


def tracemalloc_peak(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _peak_rss_bytes() -> int:
    """High-water mark of this process's resident set size.

    ``VmHWM`` from /proc belongs to the current address space only; ``ru_maxrss`` can carry
    the parent's peak over fork + exec on Linux, so it is the fallback, not the first choice.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(method: str, n: int, d: int, seed: int) -> None:
    """Subprocess entry: build the input, run ``method`` once, print memory figures."""
    import h2q.codes  # noqa: F401  (import cost and torch happen before the baseline)

    X, R = make_data(n, d, seed)
    # Warm up on a tenth of the rows: OpenBLAS allocates its per-thread buffers (tens of MiB)
    # on the first large product, which would otherwise count against whichever method ran.
    METHODS[method](X[: n // 10], R)
    figures = {"rss_before": _current_rss_bytes(), "peak_before": _peak_rss_bytes()}
    METHODS[method](X, R)
    figures["peak_after"] = _peak_rss_bytes()
    print(json.dumps(figures))


def peak_rss_figures(method: str, n: int, d: int, seed: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", method, "--n", str(n), "--seed", str(seed)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures["extra_bytes"] = max(0, figures["peak_after"] - figures["rss_before"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    d = 64
    n = args.n or (100_000 if args.quick else 1_000_000)
    if args.child:
        child(args.child, n, d, args.seed)
        return
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")

    env = environment()
    # Subprocess memory figures first, while this process is still small.
    rss = {name: peak_rss_figures(name, n, d, args.seed) for name in METHODS}
    X, R = make_data(n, d, args.seed)
    input_bytes = X.nbytes
    identical = bool(np.array_equal(ours(X, R), anchor(X, R)))
    timings = interleaved_timings(
        {name: (lambda fn=fn: fn(X, R)) for name, fn in METHODS.items()}, args.repeats
    )
    memory = {}
    for name, fn in METHODS.items():
        traced = tracemalloc_peak(lambda fn=fn: fn(X, R))
        memory[name] = {
            "tracemalloc_peak_bytes": traced,
            "tracemalloc_peak_over_input": traced / input_bytes,
            "peak_with_input_over_input": (input_bytes + traced) / input_bytes,
            "peak_rss": rss[name],
            "peak_rss_extra_over_input": rss[name]["extra_bytes"] / input_bytes,
        }
    ratio = timings["encode_sign"]["median_s"] / timings["anchor"]["median_s"]
    record = {
        "benchmark": "bench_encode",
        "config": {
            "n": n,
            "d": d,
            "n_bits": d,
            "dtype": "float32",
            "seed": args.seed,
            "repeats": args.repeats,
            "quick": args.quick,
            "input_bytes": input_bytes,
        },
        "identical_codes": identical,
        "timings": timings,
        "ratio_of_medians_ours_over_anchor": ratio,
        "memory": memory,
        "targets": {
            "no_slower_than_anchor": ratio <= 1.0,
            "peak_under_3x_input": memory["encode_sign"]["peak_with_input_over_input"] < 3.0,
        },
        "environment": env,
    }
    record["environment"]["load_average_end"] = list(os.getloadavg())
    table = markdown(record)
    name = "bench_encode" + ("_quick" if args.quick else "")
    json_path, md_path = write_results(name, record, table)
    print(table)
    print(f"wrote {json_path} and {md_path}")


def markdown(record: dict[str, Any]) -> str:
    cfg = record["config"]
    rows = []
    for name in METHODS:
        t = record["timings"][name]
        m = record["memory"][name]
        rows.append(
            f"| {name} | {t['median_s'] * 1e3:.1f} | {t['min_s'] * 1e3:.1f} - "
            f"{t['max_s'] * 1e3:.1f} | {t['iqr_s'] * 1e3:.1f} | "
            f"{m['tracemalloc_peak_bytes'] / 2**20:.1f} | {m['peak_with_input_over_input']:.2f} | "
            f"{m['peak_rss']['extra_bytes'] / 2**20:.1f} | "
            f"{m['peak_rss_extra_over_input'] + 1:.2f} |"
        )
    return (
        f"# bench_encode: {cfg['n']:,} x {cfg['d']} float32 -> {cfg['n_bits']}-bit codes\n\n"
        'Anchor: `np.packbits(X @ R.T >= 0, axis=1, bitorder="little")`; ours: '
        "`h2q.codes.encode_sign(X, rotation=R)`. Interleaved, 1 warm-up + "
        f"{cfg['repeats']} repeats, seed {cfg['seed']}. Input: {cfg['input_bytes'] / 2**20:.0f} "
        "MiB.\n\n"
        "| method | median ms | min - max ms | IQR ms | tracemalloc peak MiB | "
        "(input + peak) / input | RSS extra MiB | (input + RSS extra) / input |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"- Ratio of medians (ours / anchor): **{record['ratio_of_medians_ours_over_anchor']:.3f}**"
        " (target <= 1)\n"
        f"- Codes identical to the anchor: {record['identical_codes']}\n"
        f"- Targets met: {record['targets']}\n" + environment_markdown(record["environment"])
    )


if __name__ == "__main__":
    main()
