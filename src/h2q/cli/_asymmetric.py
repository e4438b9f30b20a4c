"""The asymmetric-scoring part of ``h2q index build`` and ``h2q index search``.

``build --scoring asymmetric`` encodes float vectors with a fitted quantizer into an
:class:`h2q.AsymmetricIndex`; ``search`` on such an index takes float query vectors.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from .. import _io
from ._args import positive_int
from ._common import check_k_fits, load_matrix
from ._errors import UsageError


def add_build_options(p: Any) -> None:
    """Options of ``index build`` for ``--scoring asymmetric``."""
    g = p.add_argument_group(
        "asymmetric scoring (--scoring asymmetric)",
        "float queries scored against the codes by RaBitQ's estimator; see docs/asymmetric.md",
    )
    g.add_argument("--vectors", metavar="DB_VECTORS.npy", help="float vectors of the items")
    g.add_argument("--quantizer", metavar="QUANTIZER.npz", help="a fitted quantizer (h2q fit)")
    g.add_argument("--index-metric", default="ip", choices=("ip", "l2"), help="score estimated")
    g.add_argument("--query-bits", type=positive_int, default=4, help="bits per query dim")
    g.add_argument("--bits-per-dim", type=positive_int, default=1, help="bits per item dim")
    g.add_argument("--centroids", type=positive_int, default=64, help="k-means centroids, 1 to 256")
    g.add_argument(
        "--keep-vectors", action="store_true", help="store the float vectors, for --rescore"
    )


def build(args: argparse.Namespace, out: Any) -> int:
    """Build and save an :class:`h2q.AsymmetricIndex` (``index build --scoring asymmetric``)."""
    from ..quantizers import load_quantizer
    from ..search import AsymmetricIndex

    if args.vectors is None or args.quantizer is None:
        raise UsageError(
            "--scoring asymmetric needs --vectors DB_VECTORS.npy and --quantizer QUANTIZER.npz "
            "(float vectors and a fitted quantizer); pass both."
        )
    if args.codes is not None or args.features is not None:
        raise UsageError("--scoring asymmetric encodes --vectors itself; drop --codes/--features.")
    quantizer = load_quantizer(args.quantizer)
    X = load_matrix(args.vectors, None, "--vectors")
    start = time.perf_counter()
    index = AsymmetricIndex(
        quantizer,
        args.index_metric,
        args.query_bits,
        args.bits_per_dim,
        keep_vectors=args.keep_vectors,
        n_centroids=args.centroids,
    )
    index.add(X)
    index.save(out)
    print(
        f"built an asymmetric index of {index.ntotal} items ({index.n_bits} dimensions, "
        f"{index.bits_per_dim} bit(s) each, {index.bytes_per_item():.0f} bytes per item) in "
        f"{time.perf_counter() - start:.1f} s -> {out}"
    )
    return 0


def add_search_options(p: Any) -> None:
    """Options of ``index search`` for an asymmetric index."""
    p.add_argument(
        "--candidates",
        type=positive_int,
        metavar="C",
        help="asymmetric index: score only the Hamming top C of the sign codes",
    )


def search(args: argparse.Namespace, index: Any, out: Any) -> int:
    """``index search`` on an :class:`h2q.AsymmetricIndex`: float queries in, (D, I) out."""
    if args.radius is not None or args.query_features is not None:
        raise UsageError(
            "an asymmetric index takes -k (not --radius) and no --query-features; drop them."
        )
    check_k_fits(args.k, index.ntotal)
    Xq = load_matrix(args.queries, None, "--queries")
    start = time.perf_counter()
    D, I = index.search(Xq, args.k, rescore=args.rescore, candidates=args.candidates)
    _io.atomic_write(out, lambda f: np.savez(f, D=D, I=I))
    print(
        f"searched {len(Xq)} float queries in {index.ntotal} items (k={args.k}, asymmetric) "
        f"in {time.perf_counter() - start:.2f} s -> {out}"
    )
    return 0
