"""Stage-2 commands: ``h2q fit``, ``h2q encode`` and ``h2q search`` (and ``h2q evaluate``,
registered from :mod:`h2q.cli._evaluate`).

Every command checks its inputs, its output paths (see :mod:`h2q.cli._paths`: an output is
never an input, and an existing output needs ``--force``) and the sizes of what it will
allocate before any long computation, and writes its outputs atomically (a temporary file
renamed into place), so a failing command leaves the output paths as they were.

The chain keeps the paper's tie-breaking: ``h2q encode --out X.npz`` stores the rotated
features beside the codes, and ``h2q search`` re-ranks Hamming ties by them when both files
hold features.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from ..embeddings import FOLDS, load_embeddings
from ..quantizers import load_quantizer
from ._args import STAGE2_THREADS, add_threads_option
from ._common import (
    LOSSES,
    METHODS,
    SOLVERS,
    check_bits,
    check_k_fits,
    check_memory,
    embeddings,
    fit_progress_bar,
    load_codes,
    load_matrix,
    make_quantizer,
)
from ._errors import UsageError
from ._paths import add_force_option, check_outputs

_THREADS_WHY = "small stage-2 problems run fastest on one thread, above all on a busy machine"


def register(subparsers: Any) -> None:
    """Add ``fit``, ``encode``, ``search`` and ``evaluate`` to the ``h2q`` parser."""
    from . import _evaluate

    _add_fit(subparsers)
    _add_encode(subparsers)
    _add_search(subparsers)
    _evaluate.add_parser(subparsers)


# ----------------------------------------------------------------------------------------------
# h2q fit


def _add_fit(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit a stage-2 quantizer (H²Q, ITQ or sign) on embeddings",
        description="Fit a stage-2 quantizer on embeddings and save it to a .npz file. "
        "EMBEDDINGS is a .npy matrix or an embeddings .npz (its 'train' fold, and its 'val' "
        "fold for iterate selection when present). An existing --out is refused unless "
        "--force; --out may never be an input.",
    )
    p.add_argument("embeddings", metavar="EMBEDDINGS", help=".npy matrix or embeddings .npz")
    p.add_argument("--out", required=True, metavar="QUANTIZER.npz", help="output file")
    p.add_argument("--val", metavar="VAL.npy", help="validation embeddings (overrides 'val')")
    p.add_argument("--method", default="h2q", choices=METHODS[::-1], help="default: h2q")
    p.add_argument("--bits", type=int, metavar="N", help="code length (default: the width)")
    p.add_argument("--loss", choices=LOSSES, help="H²Q loss (default: l2)")
    p.add_argument("--solver", choices=SOLVERS, help="H²Q solver (default: gd)")
    p.add_argument("--pca", action="store_true", help="project to --bits dimensions by PCA")
    p.add_argument(
        "--center",
        action="store_true",
        help="subtract the training mean first (for embeddings of a general-purpose model, "
        "such as a sentence encoder; leave it off for embeddings trained for hashing; --pca "
        "always centres)",
    )
    p.add_argument(
        "--max-iter",
        type=int,
        metavar="N",
        help="iterations (h2q gd: 200, h2q paper: 300 epochs, itq: 50 by default)",
    )
    p.add_argument("--seed", type=int, default=0, help="random state (default: 0)")
    add_force_option(p)
    add_threads_option(p, STAGE2_THREADS, _THREADS_WHY)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_fit)


def _run_fit(args: argparse.Namespace) -> int:
    out = check_outputs([args.embeddings, args.val], {"--out": args.out}, force=args.force)["--out"]
    source = Path(args.embeddings)
    data = load_embeddings(source, required=("train",))
    X = embeddings(data.train, f"train ({source.name})")
    if args.val is not None:
        X_val = load_matrix(args.val, "val" if Path(args.val).suffix != ".npy" else None, "--val")
    elif data.val is not None:
        X_val = embeddings(data.val, f"val ({source.name})")
    else:
        X_val = None
    if X_val is not None and X_val.shape[1] != X.shape[1]:
        raise ValueError(
            f"validation embeddings have {X_val.shape[1]} features but the training ones have "
            f"{X.shape[1]}; pass both from the same model."
        )
    if args.pca and args.bits is None:
        raise ValueError("--pca needs --bits N (the number of PCA dimensions and bits).")
    check_bits(args.bits, X.shape[1], str(source), pca=args.pca)
    quantizer = make_quantizer(
        args.method,
        args.bits,
        pca=args.pca,
        center=args.center,
        seed=args.seed,
        loss=args.loss,
        solver=args.solver,
        max_iter=args.max_iter,
    )
    bar = fit_progress_bar(args.method, quantizer, args.no_progress)
    fit_kw: dict[str, Any] = {}
    if bar is not None:

        def callback(iteration: int, train_loss: float, val_loss: float | None) -> bool:
            bar.update(iteration - bar.n)
            post = {"train": f"{train_loss:.4f}"}
            if val_loss is not None:
                post["val"] = f"{val_loss:.4f}"
            bar.set_postfix(post, refresh=False)
            return False

        fit_kw["callback"] = callback
    start = time.perf_counter()
    try:
        quantizer.fit(X, X_val=X_val, **fit_kw)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    quantizer.save(out)

    loss = args.loss or "l2"
    losses = f"train {loss} loss {quantizer.quantization_loss(X, loss):.4f}"
    if X_val is not None:
        losses += f", val {loss} loss {quantizer.quantization_loss(X_val, loss):.4f}"
    pca = f" (PCA from {X.shape[1]})" if args.pca else ""
    pca += ", centred" if args.center else ""
    print(
        f"{args.method} ({type(quantizer).__name__}): {quantizer.n_bits_} bits{pca}, "
        f"{len(X)} training embeddings, fit {elapsed:.2f} s, {losses} -> {out}"
    )
    return 0


# ----------------------------------------------------------------------------------------------
# h2q encode


def _add_encode(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "encode",
        help="encode embeddings into packed binary codes with a fitted quantizer",
        description="Encode embeddings into packed uint8 codes (faiss layout, bit = 1 where "
        "the rotated value is >= 0). A .npz --out holds 'codes' and the rotated 'features' "
        "that `h2q search` uses to break Hamming ties (the paper's protocol); a .npy --out "
        "holds the codes only (ties are then broken by id). An existing --out is refused "
        "unless --force; --out may never be an input.",
    )
    p.add_argument("quantizer", metavar="QUANTIZER.npz", help="file written by `h2q fit`")
    p.add_argument("embeddings", metavar="EMBEDDINGS", help=".npy matrix or embeddings .npz")
    p.add_argument(
        "--out",
        required=True,
        metavar="CODES.npz",
        help="output: .npz (codes + features, for tie-breaking) or .npy (codes only)",
    )
    p.add_argument("--fold", choices=FOLDS, help="fold of an embeddings .npz to encode")
    p.add_argument(
        "--no-features",
        action="store_true",
        help="with a .npz --out, store the codes only (smaller; ties then go by id)",
    )
    p.add_argument(
        "--features-out",
        metavar="FEATURES.npy",
        help="also save the transformed (rotated) features to a separate .npy",
    )
    add_force_option(p)
    add_threads_option(p, STAGE2_THREADS, _THREADS_WHY)
    p.set_defaults(func=_run_encode)


def _run_encode(args: argparse.Namespace) -> int:
    outputs = check_outputs(
        [args.quantizer, args.embeddings],
        {"--out": args.out, "--features-out": args.features_out},
        force=args.force,
    )
    out, features_out = outputs["--out"], outputs.get("--features-out")
    if out.suffix not in (".npz", ".npy"):
        raise UsageError(f"--out {out} must end in .npz (codes and features) or .npy (codes only).")
    bundle = out.suffix == ".npz"
    if args.no_features and not bundle:
        raise UsageError("--no-features applies to a .npz --out; a .npy holds codes only.")
    quantizer = load_quantizer(args.quantizer)
    X = load_matrix(args.embeddings, args.fold, "EMBEDDINGS", fold_option="--fold")
    if X.shape[1] != quantizer.n_features_in_:
        raise ValueError(
            f"{args.embeddings} has {X.shape[1]} features, but the quantizer {args.quantizer} "
            f"was fitted on {quantizer.n_features_in_}. Pass embeddings from the same model, "
            "or refit with `h2q fit`."
        )
    codes = quantizer.encode(X)
    want_features = features_out is not None or (bundle and not args.no_features)
    features = np.asarray(quantizer.transform(X)) if want_features else None
    if bundle:
        payload = {"codes": codes}
        if not args.no_features:
            payload["features"] = features
        _io.atomic_write(out, lambda f: np.savez(f, **payload))
    else:
        _io.save_npy(out, codes)
    if features_out is not None:
        _io.save_npy(features_out, features)
    kept = "codes and features" if bundle and not args.no_features else "codes"
    print(
        f"encoded {len(codes)} embeddings into {quantizer.n_bits_}-bit codes "
        f"({codes.shape[1]} bytes each; {kept}) -> {out}"
    )
    if not bundle and features_out is None:
        print(
            "note: a .npy holds the codes only, so `h2q search` will break Hamming ties by id; "
            "write a .npz to keep the features for the paper's tie-breaking.",
            file=sys.stderr,
        )
    return 0


# ----------------------------------------------------------------------------------------------
# h2q search


def _add_search(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "search",
        help="exact Hamming k-nearest-neighbour search over packed codes",
        description="Search the k nearest database codes of each query code in Hamming "
        "distance and save D (distances) and I (database ids) to a .npz file. Ties are "
        "re-ranked by the distance of the L2-normalised features when both code files hold "
        "features (as `h2q encode --out X.npz` writes them) or both feature options are "
        "given, else broken by database id. An existing --out is refused unless --force; "
        "--out may never be an input.",
    )
    p.add_argument(
        "--database", metavar="DB_CODES.npz", help=".npz or .npy (required unless --milvus)"
    )
    p.add_argument("--queries", required=True, metavar="Q_CODES.npz", help=".npz or .npy")
    p.add_argument("-k", "--k", type=int, required=True, help="neighbours per query")
    p.add_argument("--out", required=True, metavar="RESULT.npz")
    p.add_argument("--backend", default="auto", choices=("auto", "numba", "numpy", "faiss"))
    p.add_argument(
        "--database-features",
        metavar="DB_FEATURES.npy",
        help="continuous features of the database items, to re-rank Hamming ties (overrides "
        "those stored in --database)",
    )
    p.add_argument("--query-features", metavar="Q_FEATURES.npy", help="same, for the queries")
    p.add_argument(
        "--no-tie-break",
        action="store_true",
        help="ignore stored features: break Hamming ties by database id (faster)",
    )
    add_force_option(p)
    add_threads_option(p, STAGE2_THREADS, _THREADS_WHY)
    from .export import add_milvus_search_options  # the Milvus mode

    add_milvus_search_options(p)
    p.set_defaults(func=_run_search)


def _run_search(args: argparse.Namespace) -> int:
    from ..search import HammingIndex
    from .export import check_not_milvus, run_milvus_search

    if args.milvus is not None:
        return run_milvus_search(args)
    check_not_milvus(args)
    inputs = [args.database, args.queries, args.database_features, args.query_features]
    out = check_outputs(inputs, {"--out": args.out}, force=args.force)["--out"]
    if (args.database_features is None) != (args.query_features is None):
        raise ValueError(
            "tie re-ranking needs both --database-features and --query-features; pass both, "
            "or neither."
        )
    if args.no_tie_break and args.database_features is not None:
        raise UsageError("--no-tie-break contradicts --database-features; pass one of them.")
    if args.k < 1:
        raise ValueError(f"-k must be a positive integer, got {args.k}.")
    db_codes, db_features = load_codes(args.database, "--database")
    q_codes, q_features = load_codes(args.queries, "--queries")
    if db_codes.shape[1] != q_codes.shape[1]:
        raise ValueError(
            f"--database codes have {db_codes.shape[1]} bytes ({8 * db_codes.shape[1]} bits) "
            f"but --queries codes have {q_codes.shape[1]}; encode both with the same quantizer."
        )
    check_k_fits(args.k, len(db_codes))
    check_memory(
        12 * len(q_codes) * args.k,  # D int32 + I int64
        f"the result of {len(q_codes)} queries x {args.k} neighbours",
        "Lower -k, or search fewer queries at a time.",
    )
    db_features, q_features = _tie_features(args, db_features, q_features)
    index = HammingIndex(8 * db_codes.shape[1], backend=args.backend)
    index.add(db_codes, db_features)
    D, I = index.search(q_codes, args.k, q_features)
    _io.atomic_write(out, lambda f: np.savez(f, D=D, I=I))
    rerank = ", ties re-ranked by features" if db_features is not None else ", ties by id"
    print(
        f"searched {len(q_codes)} queries in {len(db_codes)} codes, k={args.k} "
        f"({index.backend}{rerank}) -> {out}"
    )
    return 0


def _tie_features(
    args: argparse.Namespace, db_stored: np.ndarray | None, q_stored: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The features that re-rank ties: the options', else those stored with the codes."""
    if args.database_features is not None:
        return (
            load_matrix(args.database_features, None, "--database-features"),
            load_matrix(args.query_features, None, "--query-features"),
        )
    if args.no_tie_break:
        return None, None
    if (db_stored is None) != (q_stored is None):
        has, lacks = ("--database", "--queries")
        if db_stored is None:
            has, lacks = lacks, has
        raise UsageError(
            f"{has} holds features for tie-breaking but {lacks} does not; encode both to "
            ".npz with `h2q encode`, or pass --no-tie-break to break ties by id."
        )
    if db_stored is not None and db_stored.shape[1] != q_stored.shape[1]:
        raise ValueError(
            f"--database features have {db_stored.shape[1]} columns but --queries features "
            f"have {q_stored.shape[1]}; encode both with the same quantizer."
        )
    return db_stored, q_stored
