"""Benchmark: packed codes of 10^6 x 64 embeddings, h2q against numpy's matmul + packbits.

Anchor (same run, same data, same rotation):
    np.packbits(X @ R.T >= 0, axis=1, bitorder="little")
Ours:
    quantizer.encode(X)                  a fitted HouseholderQuantizer (rescale=True, R its
                                         rotation_): the library's entry point
    h2q.codes.encode_sign(X, rotation=R) the packing routine alone

Data: 1,000,000 x 64 float32 Gaussian embeddings (``--quick``: 100,000 rows); the quantizer is
fitted on 10,000 of them and saved, seeded. Timings include the first call: ``--repeats``
interleaved rounds (ours, anchor, ...) with no warm-up, median and spread reported, so that
load from other processes hits all alike. The first call of a process is timed apart, in
fresh subprocesses (import h2q, load the saved quantizer, build the data, time one call),
``--repeats`` per method, interleaved; the median is reported. Peak memory of each method
relative to the input size, measured two ways:

- ``tracemalloc``: the peak of numpy/Python allocations during one call (in this process);
- peak RSS: a fresh subprocess builds the input, warms up, then runs the method once; the
  rise of its resident-set high-water mark (``VmHWM``, else ``ru_maxrss``) over the resident
  size just before the call, relative to the input size.

Targets: quantizer.encode no slower than the anchor (ratio of medians <= 1, and of first
calls <= 1), identical codes, and peak (input + extra) under 3x the input. Results go to
``benchmarks/results/bench_encode.{json,md}``.

Usage::

    python benchmarks/bench_encode.py [--quick] [--repeats 3] [--seed 0]
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
import tempfile
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
    return timings_first_included(methods, repeats)


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


def fit_quantizer(X: np.ndarray, seed: int, path: Path) -> None:
    """Fit an H²Q quantizer on 10,000 rows of X and save it to ``path``."""
    from h2q.quantizers import HouseholderQuantizer

    HouseholderQuantizer(random_state=seed).fit(X[:10_000]).save(path)


def load_quantizer(path: Path) -> Any:
    from h2q.quantizers import HouseholderQuantizer

    return HouseholderQuantizer.load(path)


def anchor(X: np.ndarray, q: Any) -> np.ndarray:
    return np.packbits(X @ q.rotation_.astype(np.float32).T >= 0, axis=1, bitorder="little")


def quantizer_encode(X: np.ndarray, q: Any) -> np.ndarray:
    return q.encode(X)


def encode_sign(X: np.ndarray, q: Any) -> np.ndarray:
    from h2q.codes import encode_sign as encode

    return encode(X, rotation=q.rotation_.astype(np.float32))


METHODS = {"quantizer.encode": quantizer_encode, "encode_sign": encode_sign, "anchor": anchor}


def timings_first_included(
    methods: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, dict[str, Any]]:
    """``repeats`` interleaved rounds calling each method once, the first round included."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: summarize(values) for name, values in times.items()}


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


def child(method: str, n: int, d: int, seed: int, quantizer: Path, first: bool) -> None:
    """Subprocess entry: the first call's time (``first``) or the memory figures of one call."""
    import h2q.codes  # noqa: F401  (import cost and torch happen before the baseline)

    q = load_quantizer(quantizer)
    X, _ = make_data(n, d, seed)
    if first:
        start = time.perf_counter()
        METHODS[method](X, q)
        print(json.dumps({"first_call_s": time.perf_counter() - start}))
        return
    # Warm up on a tenth of the rows: OpenBLAS allocates its per-thread buffers (tens of MiB)
    # on the first large product, which would otherwise count against whichever method ran.
    METHODS[method](X[: n // 10], q)
    figures = {"rss_before": _current_rss_bytes(), "peak_before": _peak_rss_bytes()}
    METHODS[method](X, q)
    figures["peak_after"] = _peak_rss_bytes()
    print(json.dumps(figures))


def run_child(method: str, n: int, seed: int, quantizer: Path, first: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", method, "--n", str(n), "--seed", str(seed)]
    command += ["--quantizer", str(quantizer)] + (["--first"] if first else [])
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    if not first:
        figures["extra_bytes"] = max(0, figures["peak_after"] - figures["rss_before"])
    return figures


def first_calls(n: int, seed: int, path: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Each method's first call in ``repeats`` fresh processes, interleaved; median and all."""
    times: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(repeats):
        for name in METHODS:
            times[name].append(run_child(name, n, seed, path, True)["first_call_s"])
    return {
        name: {"first_call_s": statistics.median(values), "times_s": values}
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--quantizer", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    d = 64
    n = args.n or (100_000 if args.quick else 1_000_000)
    if args.child:
        child(args.child, n, d, args.seed, args.quantizer, args.first)
        return
    if args.repeats < 3:
        parser.error("--repeats must be >= 3")

    env = environment()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h2q.npz"
        X, _ = make_data(n, d, args.seed)
        fit_quantizer(X, args.seed, path)
        del X
        # Subprocess figures first, while this process is still small.
        first = first_calls(n, args.seed, path, args.repeats)
        rss = {name: run_child(name, n, args.seed, path, False) for name in METHODS}
        q = load_quantizer(path)
    X, _ = make_data(n, d, args.seed)
    input_bytes = X.nbytes
    timings = timings_first_included(
        {name: (lambda fn=fn: fn(X, q)) for name, fn in METHODS.items()}, args.repeats
    )
    reference = anchor(X, q)
    identical = {name: bool(np.array_equal(fn(X, q), reference)) for name, fn in METHODS.items()}
    memory = {}
    for name, fn in METHODS.items():
        traced = tracemalloc_peak(lambda fn=fn: fn(X, q))
        memory[name] = {
            "tracemalloc_peak_bytes": traced,
            "tracemalloc_peak_over_input": traced / input_bytes,
            "peak_with_input_over_input": (input_bytes + traced) / input_bytes,
            "peak_rss": rss[name],
            "peak_rss_extra_over_input": rss[name]["extra_bytes"] / input_bytes,
        }
    base = timings["anchor"]["median_s"]
    ratios = {name: timings[name]["median_s"] / base for name in METHODS}
    first_ratios = {
        name: first[name]["first_call_s"] / first["anchor"]["first_call_s"] for name in METHODS
    }
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
            "quantizer": "HouseholderQuantizer(random_state=seed) fitted on 10,000 rows",
        },
        "identical_codes": identical,
        "timings": timings,
        "ratio_of_medians_over_anchor": ratios,
        "first_call": first,
        "first_call_ratio_over_anchor": first_ratios,
        "memory": memory,
        "targets": {
            "encode_no_slower_than_anchor": ratios["quantizer.encode"] <= 1.0,
            "encode_first_call_no_slower_than_anchor": first_ratios["quantizer.encode"] <= 1.0,
            "identical_codes": all(identical.values()),
            "peak_under_3x_input": memory["quantizer.encode"]["peak_with_input_over_input"] < 3.0,
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
            f"{t['max_s'] * 1e3:.1f} | {record['ratio_of_medians_over_anchor'][name]:.3f} | "
            f"{record['first_call'][name]['first_call_s'] * 1e3:.1f} | "
            f"{record['first_call_ratio_over_anchor'][name]:.3f} | "
            f"{record['identical_codes'][name]} | "
            f"{m['peak_with_input_over_input']:.2f} | {m['peak_rss_extra_over_input'] + 1:.2f} |"
        )
    return (
        f"# bench_encode: {cfg['n']:,} x {cfg['d']} float32 -> {cfg['n_bits']}-bit codes\n\n"
        'Anchor: `np.packbits(X @ R.T >= 0, axis=1, bitorder="little")` with R the rotation of '
        f"{cfg['quantizer']}; ours: its `encode(X)`, and `h2q.codes.encode_sign(X, rotation=R)`. "
        f"Interleaved, {cfg['repeats']} rounds, first call included, seed {cfg['seed']}; first "
        f"call of a fresh process timed apart (median of {cfg['repeats']} processes). "
        f"Input: {cfg['input_bytes'] / 2**20:.0f} MiB.\n\n"
        "| method | median ms | min - max ms | median / anchor | first call ms | "
        "first / anchor's first | codes identical to anchor | (input + tracemalloc peak) / "
        "input | (input + RSS extra) / input |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"- Targets met: {record['targets']}\n" + environment_markdown(record["environment"])
    )


if __name__ == "__main__":
    main()
