"""``h2q index build`` and ``h2q index search``: build a search index once, query it many times.

``build`` reads packed codes (``h2q encode``), builds a multi-index hashing index (exact,
sub-linear on clustered codes) or a flat one, and saves it atomically. ``search`` loads it and
runs k-NN (optionally rescored with float vectors) or a range search, saving the result.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from .. import _io
from . import _asymmetric
from ._args import STAGE2_THREADS, add_threads_option, positive_int
from ._common import check_k_fits, load_codes, load_matrix
from ._errors import UsageError
from ._paths import add_force_option, check_outputs

_THREADS_WHY = "one thread: the compiled scan is fastest alone on a busy machine"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "index",
        help="build and query a saved Hamming search index (multi-index hashing or flat)",
        description="Build a search index over packed codes and query it. Results are exact "
        "and identical for both index kinds (ties by database id).",
    )
    sub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    _add_build(sub)
    _add_search(sub)


def _add_build(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "build",
        help="build an index from packed codes and save it",
        description="Build an index over packed codes (a .npy from `h2q encode`) and save it "
        "to a .npz file.",
    )
    p.add_argument("--codes", metavar="DB_CODES.npy", help="packed codes (Hamming scoring)")
    p.add_argument("--out", required=True, metavar="INDEX.npz")
    p.add_argument(
        "--method",
        default="mih",
        choices=("mih", "flat"),
        help="mih: exact multi-index hashing (default); flat: a brute-force scan",
    )
    p.add_argument(
        "--substrings",
        type=positive_int,
        metavar="M",
        help="mih substrings (default: n_bits / log2(n), the paper's choice)",
    )
    p.add_argument(
        "--bits",
        type=positive_int,
        help="bits per code when not a multiple of 8 (default: 8 x bytes per code)",
    )
    p.add_argument(
        "--features",
        metavar="DB_FEATURES.npy",
        help="continuous features of the items, to re-rank Hamming ties at search time",
    )
    p.add_argument(
        "--scoring",
        default="hamming",
        choices=("hamming", "asymmetric"),
        help="hamming: codes ranked by Hamming distance (default); asymmetric: float "
        "queries scored against codes made from --vectors",
    )
    _asymmetric.add_build_options(p)
    add_force_option(p)
    add_threads_option(p, STAGE2_THREADS, _THREADS_WHY)
    p.set_defaults(func=_run_build)


def _add_search(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "search",
        help="k-NN or range search in a saved index",
        description="Search a saved index: the k nearest codes of each query (-k), or every "
        "code within a Hamming radius (--radius). Saves D and I (and lims for a range search, "
        "as faiss lays them out) to a .npz file.",
    )
    p.add_argument("--index", required=True, metavar="INDEX.npz")
    p.add_argument(
        "--queries", required=True, metavar="Q_CODES.npy", help="codes (float vectors: asymmetric)"
    )
    p.add_argument("--out", required=True, metavar="RESULT.npz")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("-k", "--k", type=positive_int, help="neighbours per query")
    what.add_argument("--radius", type=int, help="return every item within this distance")
    p.add_argument("--query-features", metavar="Q_FEATURES.npy", help="re-rank Hamming ties")
    p.add_argument(
        "--rescore",
        type=positive_int,
        metavar="R",
        help="take the Hamming top R and re-order it by the exact float score",
    )
    p.add_argument("--query-vectors", metavar="Q_VECTORS.npy", help="float vectors (rescore)")
    p.add_argument("--database-vectors", metavar="DB_VECTORS.npy", help="float vectors (rescore)")
    p.add_argument("--metric", default="ip", choices=("ip", "l2"), help="rescore score")
    _asymmetric.add_search_options(p)
    add_force_option(p)
    add_threads_option(p, STAGE2_THREADS, _THREADS_WHY)
    p.set_defaults(func=_run_search)


def _run_build(args: argparse.Namespace) -> int:
    from ..search import HammingIndex, MultiIndexHammingIndex

    if args.scoring == "asymmetric":
        inputs = [args.vectors, args.quantizer]
        out = check_outputs(inputs, {"--out": args.out}, force=args.force)["--out"]
        return _asymmetric.build(args, out)
    if args.codes is None:
        raise UsageError("--codes DB_CODES.npy is required (or --scoring asymmetric --vectors).")
    inputs = [args.codes, args.features]
    out = check_outputs(inputs, {"--out": args.out}, force=args.force)["--out"]
    codes, features = load_codes(args.codes, "--codes")  # features: those `h2q encode` stored
    n_bits = 8 * codes.shape[1] if args.bits is None else args.bits
    if args.features is not None:
        features = load_matrix(args.features, None, "--features")
    start = time.perf_counter()
    if args.method == "mih":
        index: Any = MultiIndexHammingIndex(n_bits, args.substrings)
    else:
        if args.substrings is not None:
            raise ValueError("--substrings applies to --method mih only; drop it for flat.")
        index = HammingIndex(n_bits)
    index.add(codes, features)
    index.save(out)
    detail = f", m={index.substrings}" if args.method == "mih" else ""
    print(
        f"built a {args.method} index of {index.ntotal} {n_bits}-bit codes{detail} "
        f"(about {index.memory_bytes() / 2**20:.1f} MiB in memory) in "
        f"{time.perf_counter() - start:.1f} s -> {out}"
    )
    return 0


def _load_index(path: str) -> Any:
    from ..search import AsymmetricIndex, HammingIndex, MultiIndexHammingIndex

    kind = _io.read_kind(path)
    if kind == "AsymmetricIndex":
        return AsymmetricIndex.load(path)
    if kind == "MultiIndexHammingIndex":
        return MultiIndexHammingIndex.load(path)
    if kind == "HammingIndex":
        return HammingIndex.load(path)
    raise ValueError(
        f"--index {path} holds a {kind}, not a search index; pass a file of `h2q index build`."
    )


def _run_search(args: argparse.Namespace) -> int:
    inputs = [args.index, args.queries, args.query_features, args.query_vectors]
    out = check_outputs(inputs + [args.database_vectors], {"--out": args.out}, force=args.force)[
        "--out"
    ]
    index = _load_index(args.index)
    if type(index).__name__ == "AsymmetricIndex":
        return _asymmetric.search(args, index, out)
    queries, stored_features = load_codes(args.queries, "--queries")
    start = time.perf_counter()
    if args.radius is not None:
        if args.rescore is not None or args.query_features is not None:
            raise ValueError("--radius takes neither --rescore nor --query-features; drop them.")
        lims, D, I = index.range_search(queries, args.radius)
        _io.atomic_write(out, lambda f: np.savez(f, lims=lims, D=D, I=I))
        found = f"{len(I)} items within radius {args.radius}"
    else:
        qf = stored_features if index.has_features else None
        if args.query_features is not None:
            qf = load_matrix(args.query_features, None, "--query-features")
        vectors = {}
        if args.rescore is not None:
            if args.query_vectors is None or args.database_vectors is None:
                raise ValueError("--rescore needs --query-vectors and --database-vectors.")
            vectors = {
                "rescore": args.rescore,
                "query_vectors": load_matrix(args.query_vectors, None, "--query-vectors"),
                "database_vectors": load_matrix(args.database_vectors, None, "--database-vectors"),
                "metric": args.metric,
            }
        check_k_fits(args.k, index.ntotal)
        D, I = index.search(queries, args.k, qf, **vectors)
        _io.atomic_write(out, lambda f: np.savez(f, D=D, I=I))
        found = f"k={args.k}" + (f", rescored from the top {args.rescore}" if vectors else "")
    print(
        f"searched {len(queries)} queries in {index.ntotal} codes ({found}) in "
        f"{time.perf_counter() - start:.2f} s -> {out}"
    )
    return 0
