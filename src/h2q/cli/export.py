"""``h2q export milvus`` and the ``--milvus`` mode of ``h2q search``.

Milvus errors (a server that cannot be reached, a refused request) become ``ValueError`` so
that :func:`h2q.cli.main.main` prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from .._io import numpy_read_error
from ..embeddings import FOLDS
from ..exceptions import FileFormatError
from ..quantizers import load_quantizer
from ._args import STAGE2_THREADS, add_threads_option, positive_int
from ._errors import user_input
from ._paths import check_outputs


def register(subparsers: Any) -> None:
    """Add ``export`` (with its engine ``milvus``) to the ``h2q`` parser."""
    p = subparsers.add_parser(
        "export",
        help="export codes to a search engine (Milvus)",
        description="Export packed codes, or embeddings encoded with a fitted quantizer, to a "
        "search engine.",
    )
    engines = p.add_subparsers(dest="engine", metavar="ENGINE", required=True)
    m = engines.add_parser(
        "milvus",
        help="codes into a Milvus collection (Milvus Lite file or server)",
        description="Write codes into a Milvus collection of binary vectors (BIN_FLAT, exact "
        "Hamming). URI is a local file ending in .db (Milvus Lite) or http://host:19530 "
        "(a Milvus server or cluster). Give --codes, or --embeddings with --quantizer (the "
        "quantizer's checksum is then stored with the collection, and `h2q search --milvus` "
        "refuses embeddings encoded with another one).",
    )
    m.add_argument("uri", metavar="URI", help="Milvus Lite file (.db) or http://host:19530")
    m.add_argument("--collection", required=True, help="collection name")
    m.add_argument("--codes", metavar="CODES.npy", help="packed codes written by `h2q encode`")
    m.add_argument("--embeddings", metavar="EMBEDDINGS", help=".npy matrix or embeddings .npz")
    m.add_argument("--fold", choices=FOLDS, help="fold of an embeddings .npz")
    m.add_argument("--quantizer", metavar="QUANTIZER.npz", help="file written by `h2q fit`")
    m.add_argument("--ids", metavar="IDS.npy", help="integer ids, one per code (default 0..n-1)")
    m.add_argument("--bits", type=positive_int, help="bits per code (default 8 * bytes)")
    m.add_argument(
        "--force",
        action="store_true",
        help="replace an existing collection: the new codes go into a fresh collection, and "
        "the name switches to it (the old one is dropped) only once it is complete",
    )
    m.add_argument("--batch-size", type=positive_int, default=10_000, help="rows per insert")
    add_threads_option(m, STAGE2_THREADS, "encoding is a small matrix product")
    m.set_defaults(func=_run_export_milvus)


@contextlib.contextmanager
def _milvus_errors() -> Iterator[None]:
    """Turn pymilvus's exceptions into one-line ``ValueError`` messages, and keep pymilvus's
    own error log lines off the terminal unless ``-v`` (the message says it once)."""
    from pymilvus.exceptions import MilvusException

    logger = logging.getLogger("pymilvus")
    level = logger.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.CRITICAL)
    try:
        with user_input():  # the library's TypeErrors here are about the inputs
            yield
    except MilvusException as exc:
        raise ValueError(f"Milvus refused the request: {exc.message}") from None
    finally:
        logger.setLevel(level)


def _milvus_module() -> Any:
    try:
        from ..integrations import milvus
    except ImportError as exc:
        raise ImportError(str(exc).splitlines()[0]) from None
    return milvus


def _database_is_not_an_input(uri: str, inputs: list[str | None]) -> None:
    """A Milvus Lite file is written in place: it may not be one of the command's inputs."""
    if "://" not in uri:
        check_outputs(inputs, {"URI": uri}, force=True)


def _run_export_milvus(args: argparse.Namespace) -> int:
    from ._common import load_codes, load_matrix

    milvus = _milvus_module()
    if (args.codes is None) == (args.embeddings is None):
        raise ValueError("give either --codes or --embeddings (with --quantizer), not both.")
    inputs = [args.codes, args.embeddings, args.quantizer, args.ids]
    _database_is_not_an_input(args.uri, inputs)
    quantizer = None if args.quantizer is None else load_quantizer(args.quantizer)
    if args.embeddings is not None:
        if quantizer is None:
            raise ValueError("--embeddings needs --quantizer QUANTIZER.npz to encode them.")
        X = load_matrix(args.embeddings, args.fold, "--embeddings", fold_option="--fold")
        codes = quantizer.encode(X)
    else:
        codes, _ = load_codes(args.codes, "--codes")
        if quantizer is not None and codes.shape[1] != (quantizer.n_bits_ + 7) // 8:
            raise ValueError(
                f"--codes have {codes.shape[1]} bytes per code, but --quantizer makes "
                f"{quantizer.n_bits_}-bit codes; pass codes encoded with that quantizer."
            )
    n_bits = args.bits or (quantizer.n_bits_ if quantizer is not None else 8 * codes.shape[1])
    ids = None if args.ids is None else _load_ids(args.ids, len(codes))
    with _milvus_errors():
        if not args.force and milvus.collection_exists(args.uri, args.collection):
            raise ValueError(
                f"collection {args.collection!r} exists in {args.uri}; pass --force to replace "
                "it, or choose another --collection."
            )
        index = milvus.MilvusHammingIndex.build(
            args.uri,
            args.collection,
            codes,
            n_bits=n_bits,
            ids=ids,
            quantizer=quantizer,
            replace=args.force,
            batch_size=args.batch_size,
        )
        with index:
            total = index.ntotal
    print(f"exported {total} {n_bits}-bit codes -> {args.uri} [{args.collection}]")
    return 0


def _load_ids(path: str, n: int) -> np.ndarray:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such ids file: {path}")
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as exc:
        message = numpy_read_error(path, exc, f"{path} is not a readable .npy")
        raise FileFormatError(message) from exc
    if ids.ndim != 1 or len(ids) != n or ids.dtype.kind not in "iu":
        raise ValueError(
            f"--ids {path} holds {ids.dtype} of shape {ids.shape}; one integer id per code "
            f"(shape ({n},)) is expected."
        )
    return ids


# ----------------------------------------------------------------------------------------------
# h2q search --milvus


def add_milvus_search_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--milvus URI``, ``--collection``, ``--quantizer`` and ``--fold`` to ``h2q search``
    (whose ``--database`` is then optional: with ``--milvus`` the collection is the
    database)."""
    group = parser.add_argument_group("search a Milvus collection instead of --database")
    group.add_argument("--milvus", metavar="URI", help="Milvus Lite file (.db) or server URI")
    group.add_argument("--collection", help="collection written by `h2q export milvus`")
    group.add_argument(
        "--quantizer",
        metavar="QUANTIZER.npz",
        help="--queries are embeddings: encode them with this quantizer (checked against the "
        "collection's)",
    )
    group.add_argument(
        "--fold",
        choices=FOLDS,
        help="with --quantizer: the fold of an embeddings .npz given as --queries",
    )


def check_not_milvus(args: argparse.Namespace) -> None:
    """For a plain ``h2q search``: ``--database`` given, the Milvus options absent."""
    if args.database is None:
        raise ValueError("give --database DB_CODES.npy, or --milvus URI --collection NAME.")
    if args.collection is not None or args.quantizer is not None or args.fold is not None:
        raise ValueError("--collection, --quantizer and --fold apply only with --milvus URI.")


def run_milvus_search(args: argparse.Namespace) -> int:
    """Run ``h2q search --milvus``: the collection is the database, and the database file is
    one of the inputs (``--out`` may never name it). A missing database is not created."""
    from ._common import check_k_fits, load_codes, load_matrix

    if args.database is not None:
        raise ValueError("--milvus searches the collection; drop --database.")
    if args.collection is None:
        raise ValueError("--milvus needs --collection NAME.")
    if args.database_features is not None or args.query_features is not None:
        raise ValueError("feature re-ranking is not available with --milvus; drop the features.")
    if args.fold is not None and args.quantizer is None:
        raise ValueError("--fold picks embeddings to encode; give --quantizer QUANTIZER.npz too.")
    if args.k < 1:
        raise ValueError(f"-k must be a positive integer, got {args.k}.")
    inputs = [args.queries, args.quantizer, args.milvus]
    out = check_outputs(inputs, {"--out": args.out}, force=args.force)["--out"]
    milvus = _milvus_module()
    quantizer = None if args.quantizer is None else load_quantizer(args.quantizer)
    with _milvus_errors():
        with milvus.MilvusHammingIndex(args.milvus, args.collection) as index:
            index.check_complete()  # before k: an interrupted write's count means nothing
            check_k_fits(args.k, index.ntotal)
            if quantizer is None:
                D, I = index.search(load_codes(args.queries, "--queries")[0], args.k)
            else:
                X = load_matrix(args.queries, args.fold, "--queries", fold_option="--fold")
                D, I = index.search_embeddings(X, args.k, quantizer)
    _io.atomic_write(out, lambda f: np.savez(f, D=D, I=I))
    print(f"searched {len(D)} queries in {args.milvus} [{args.collection}], k={args.k} -> {out}")
    return 0
