"""Asymmetric scoring of binary and multi-bit codes against faiss's RaBitQ, same process.

A float query is scored against the database codes by an inner-product estimator
(:class:`h2q.AsymmetricIndex`); the anchors are faiss 1.15's RaBitQ indexes, each behind a
seeded random rotation (``RR{d},RaBitQ``: faiss's ``IndexRaBitQ`` applies none of its own),
and h2q's Hamming ranking of H²Q / ITQ codes. Every system is fitted on the data set's
``fit`` rows, fills its index with the ``database`` rows, and is searched with the queries.

Metrics, per system:

- ``R@10``: recall of the exact inner-product top 10 (``faiss.IndexFlatIP``) in the returned
  top 10, x100; ``R@10 rescore R``: the same after re-ranking the returned top ``R``
  (20, 50, 100) by the float inner product (:func:`h2q.search.rescore`);
- ``qps@10`` / ``qps@100``: queries per second of a search for the top 10 / 100 of all
  queries in one call (query encoding included), best of ``--repeats`` calls, at each thread
  count of ``--threads`` (faiss's OpenMP and h2q's pools limited together); the best thread
  count is reported with it;
- bytes per item of the index (codes and per-item factors; faiss: ``code_size``);
- labelled sets: ``mAP@5000`` of the returned top 5,000 (Hamming vs asymmetric).

Data sets (``--datasets``; built and cached under ``--cache-dir`` by
``asymmetric_data.py``):

- ``wordnet``: all-MiniLM-L6-v2 embeddings of WordNet glosses, 2,000 queries, 58,000 items;
- ``effnet``: EfficientNet-Lite0 features (1280-d, 64 px, not normalised) of the default
  experiment's Fashion-MNIST items: 1,000 queries, 16,000 items (R@10 only);
- ``stage1-16``, ``stage1-64``: 16- / 64-bit stage-1 embeddings of a 10-epoch ``h2q train``
  (DPSH, ``lambda0``) on those features (labelled: mAP@5000 beside R@10);
- ``speed``: 10^6 items, the WordNet rows tiled with Gaussian noise (norm 0.3), 1,000
  queries: recall and queries/s only;
- ``synthetic``: a small clustered Gaussian set (the test's; nothing to build).

Results go to ``benchmarks/results/<name>.{json,md}`` (default ``bench_asymmetric``; with
``--quick``: ``bench_asymmetric_quick``), the table generated from the JSON.

    python benchmarks/bench_asymmetric.py --cache-dir DIR
    python benchmarks/bench_asymmetric.py --quick --datasets synthetic   # < 1 minute, idle

Data sets can be run separately into one results file (``--append``; ``--merge-from`` takes
in the data sets of other results files), ``--only`` / ``--time`` pick the systems to run /
to time, and ``--embedded-only`` runs WordNet on the glosses embedded so far (the sizes in
the table say how many). Each data set records its load averages, CPU, library versions and
the commit of the h2q under test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asymmetric_data  # noqa: E402
from asymmetric_report import markdown, targets  # noqa: E402
from asymmetric_specs import specs_for  # noqa: E402
from asymmetric_systems import Spec, asym_available, asym_options, build  # noqa: E402
from bench_encode import environment  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESCORE = (20, 50, 100)
MAP_K = 5000


def exact_top(Q: np.ndarray, D: np.ndarray, k: int = 10) -> np.ndarray:
    """Ids of the exact inner-product top ``k`` (``faiss.IndexFlatIP``), ``(n_queries, k)``."""
    import faiss

    index = faiss.IndexFlatIP(D.shape[1])
    index.add(np.ascontiguousarray(D, dtype=np.float32))
    return index.search(np.ascontiguousarray(Q, dtype=np.float32), k)[1]


def recall10(I: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top 10 among ``I[:, :10]``, x100."""
    hits = [np.intersect1d(r[:10], t[:10]).size for r, t in zip(I, truth, strict=True)]
    return 100.0 * float(np.mean(hits)) / 10


class Threads:
    """Limit faiss's OpenMP and h2q's pools (torch, BLAS, numba) to ``n`` threads together."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> Threads:
        import faiss

        from h2q._threads import thread_limit

        self._old = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.n)
        self._limit = thread_limit(self.n)
        self._limit.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        import faiss

        self._limit.__exit__(*exc)
        faiss.omp_set_num_threads(self._old)


def queries_per_second(search: Any, Q: np.ndarray, k: int, repeats: int) -> float:
    """Queries/s of ``search(Q, k)`` on all of ``Q`` in one call, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        search(Q, k)
        best = min(best, time.perf_counter() - t0)
    return len(Q) / best


def speed(search: Any, Q: np.ndarray, threads: tuple[int, ...], repeats: int) -> dict:
    """``qps@10`` and ``qps@100`` per thread count, and the best of each."""
    out: dict[str, Any] = {"qps@10_by_threads": {}, "qps@100_by_threads": {}}
    for n in threads:
        with Threads(n):
            search(Q[: min(len(Q), 64)], 10)  # warm-up (compilation, caches)
            for k in (10, 100):
                out[f"qps@{k}_by_threads"][str(n)] = queries_per_second(search, Q, k, repeats)
    for k in (10, 100):
        by = out[f"qps@{k}_by_threads"]
        best = max(by, key=by.get)
        out[f"qps@{k}"], out[f"threads@{k}"] = by[best], int(best)
    return out


def quality(I: np.ndarray, data: dict, truth: np.ndarray) -> dict:
    """R@10, R@10 after rescoring the top 20/50/100, and mAP@5000 when labelled."""
    from h2q.search import rescore

    Q, D = data["query"], data["database"]
    out = {"R@10": recall10(I, truth)}
    for r in RESCORE:
        if I.shape[1] >= r:
            out[f"R@10 rescore {r}"] = recall10(rescore(I[:, :r], Q, D, 10)[1], truth)
    if "y_query" in data and I.shape[1] >= min(MAP_K, len(D)):
        from h2q.evaluation.metrics import mean_average_precision

        out["mAP@5000"] = 100.0 * mean_average_precision(
            I[:, :MAP_K], data["y_query"], data["y_database"], k=min(MAP_K, len(D))
        )
    return out


def evaluate(spec: Spec, data: dict, truth: np.ndarray, args: argparse.Namespace) -> dict:
    """Build ``spec``, measure its quality and speed; one JSON row."""
    row: dict[str, Any] = {
        "name": spec.name,
        "family": spec.family,
        "group": spec.group,
        "params": spec.params,
    }
    with Threads(max(args.threads)):
        built = build(spec, data, args.seed)
        k = MAP_K if "y_query" in data else max(RESCORE)
        I = built.search(data["query"], min(k, len(data["database"])))
    row.update(bytes_per_item=built.bytes_per_item, build_s=built.build_s, info=built.info)
    row.update(quality(np.asarray(I), data, truth))
    timed = args.time is None or any(w in spec.name for w in args.time)
    if timed and not args.no_speed:
        row.update(speed(built.search, data["query"], tuple(args.threads), args.repeats))
    return row


def load_data(name: str, args: argparse.Namespace) -> dict:
    """The arrays of data set ``name`` (subsets with ``--quick``)."""
    cache = Path(args.cache_dir)
    if name == "synthetic":
        return asymmetric_data.synthetic(seed=args.seed)
    if name == "wordnet":
        data = asymmetric_data.wordnet_minilm(cache, embedded_only=args.embedded_only)
    elif name == "effnet":  # R@10 only: a general image embedding, searched by inner product
        data = asymmetric_data.fashion_effnet(cache)
        data = {k: data[k] for k in ("fit", "query", "database")}
    elif name.startswith("stage1-"):
        data = asymmetric_data.stage1(cache, bits=int(name.split("-")[1]))
    elif name == "speed":
        base = asymmetric_data.wordnet_minilm(cache, embedded_only=args.embedded_only)
        n = 100_000 if args.quick else args.speed_items
        data = {
            "fit": base["fit"],
            "query": base["query"][: args.speed_queries],
            "database": asymmetric_data.tiled(base["database"], n, seed=args.seed),
        }
    else:
        raise ValueError(
            f"unknown data set {name!r}; use wordnet, effnet, stage1-<bits>, speed, synthetic."
        )
    return subset(data, args) if args.quick and name != "speed" else data


def subset(data: dict, args: argparse.Namespace) -> dict:
    """``--quick``: the first 200 queries and a seeded 5,000-row database sample."""
    rng = np.random.default_rng(args.seed)
    n = len(data["database"])
    keep = np.sort(rng.choice(n, min(n, 5_000), replace=False))
    out = {
        "fit": data["fit"][:5_000],
        "query": data["query"][:200],
        "database": data["database"][keep],
    }
    if "y_query" in data:
        out["y_query"], out["y_database"] = data["y_query"][:200], data["y_database"][keep]
    return out


def run_dataset(name: str, args: argparse.Namespace) -> dict:
    """All systems of one data set: its sizes and one row per system."""
    data = load_data(name, args)
    truth = exact_top(data["query"], data["database"])
    specs = specs_for(name, data["database"].shape[1], args.quick, asym_options())
    if args.only:
        specs = [s for s in specs if any(w in s.name for w in args.only)]
    rows = []
    for spec in specs:
        row = evaluate(spec, data, truth, args)
        rows.append(row)
        print(f"[{name}] {_line(row)}  load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    sizes = {k: list(v.shape) for k, v in data.items() if k in ("fit", "query", "database")}
    return {"sizes": sizes, "labelled": "y_query" in data, "rows": rows}


def _line(row: dict) -> str:
    keys = ("R@10", "R@10 rescore 50", "mAP@5000", "qps@10", "bytes_per_item")
    return row["name"] + ": " + ", ".join(f"{k} {row[k]:.1f}" for k in keys if k in row)


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def h2q_source() -> dict[str, Any]:
    """Where the h2q under test was imported from, and that checkout's commit (+ "dirty")."""
    import subprocess

    import h2q

    folder = Path(h2q.__file__).resolve().parent
    git = ["git", "-C", str(folder)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "src"], capture_output=True, text=True
        )
    except OSError:
        return {"path": str(folder), "commit": None}
    return {
        "path": str(folder),
        "commit": commit.stdout.strip() or None,
        "dirty": bool(dirty.stdout.strip()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--datasets", nargs="*", default=["wordnet", "effnet", "stage1-16", "stage1-64", "speed"]
    )
    p.add_argument(
        "--cache-dir",
        default=os.environ.get("H2Q_BENCH_CACHE", "bench-cache"),
        help="where the data sets are built and cached",
    )
    p.add_argument("--quick", action="store_true", help="subsets, fewer systems (< 1 minute)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=2, help="timed calls per measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed-items", type=int, default=1_000_000)
    p.add_argument("--speed-queries", type=int, default=1_000)
    p.add_argument(
        "--embedded-only",
        action="store_true",
        help="WordNet: use the glosses embedded so far (a shorter database), embed nothing",
    )
    p.add_argument("--only", nargs="+", help="keep the systems whose name holds one of these")
    p.add_argument("--no-speed", action="store_true", help="quality only")
    p.add_argument("--time", nargs="+", help="time only the systems whose name holds one of these")
    p.add_argument("--name", help="results name (default bench_asymmetric[_quick])")
    p.add_argument("--append", action="store_true", help="keep the other data sets of the file")
    p.add_argument("--merge-from", nargs="+", help="results files whose data sets to take in")
    p.add_argument("--out-dir", help="results folder (default benchmarks/results)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the data sets of ``argv`` and write the results after each one (see the module
    notes); with ``--append`` the data sets already in the results file are kept."""
    args = parse_args(argv)
    name = args.name or ("bench_asymmetric_quick" if args.quick else "bench_asymmetric")
    folder = Path(args.out_dir) if args.out_dir else RESULTS_DIR
    record: dict[str, Any] = {"datasets": {}}
    for path in args.merge_from or ():
        record["datasets"].update(json.loads(Path(path).read_text())["datasets"])
    for ds in args.datasets:
        env = environment()
        env["versions"]["numba"] = _version("numba")
        source = h2q_source()  # before the run: the code it imports
        t0 = time.perf_counter()
        result = run_dataset(ds, args)
        env["load_average_end"] = list(os.getloadavg())
        result.update(environment=env, seconds=time.perf_counter() - t0, args=vars(args))
        result["asymmetric_index"] = asym_available()
        result["h2q_source"] = source
        record["datasets"][ds] = result
        write(folder, name, record, args.append)
    if not args.datasets:
        write(folder, name, record, args.append)
    return record


def write(folder: Path, name: str, record: dict, append: bool) -> None:
    """``folder/<name>.json`` and the table generated from it, ``<name>.md``, each atomic.
    With ``append``, the data sets in the file that ``record`` lacks are kept (re-read at
    each write, so that runs of other data sets in parallel do not drop each other's)."""
    from h2q._io import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    if append and path.is_file():
        old = json.loads(path.read_text())["datasets"]
        record = {"datasets": {**old, **record["datasets"]}}
    record["targets"] = targets(record)
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    atomic_write(folder / f"{name}.md", lambda f: f.write(markdown(record).encode()))


if __name__ == "__main__":
    main()
