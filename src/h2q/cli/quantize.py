"""Stage-2 commands: ``h2q fit``, ``h2q encode``, ``h2q search`` and ``h2q evaluate``.

Every command checks its inputs and output paths before any long computation, and writes
its outputs atomically (a temporary file renamed into place), so a failing command leaves
the output paths as they were. Expected failures raise ``ValueError``, ``FileNotFoundError``
or ``ImportError``, which :func:`h2q.cli.main.main` turns into a one-line message and exit
status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from .._validation import check_embeddings
from ..embeddings import FOLDS, load_embeddings
from ..exceptions import FileFormatError
from ..quantizers import (
    BaseQuantizer,
    HouseholderQuantizer,
    ITQQuantizer,
    SignQuantizer,
    load_quantizer,
)

#: Method names of the CLI, in the order of the evaluation table.
METHODS = ("sign", "itq", "h2q")
_LOSSES = ("l2", "l1", "min_entry", "bit_var")
_SOLVERS = ("gd", "paper")


def register(subparsers: Any) -> None:
    """Add ``fit``, ``encode``, ``search`` and ``evaluate`` to the ``h2q`` parser."""
    from . import _evaluate

    _add_fit(subparsers)
    _add_encode(subparsers)
    _add_search(subparsers)
    _evaluate.add_parser(subparsers)


# ----------------------------------------------------------------------------------------------
# Shared helpers


def make_quantizer(
    method: str,
    n_bits: int | None,
    *,
    pca: bool = False,
    seed: int = 0,
    loss: str | None = None,
    solver: str | None = None,
    max_iter: int | None = None,
) -> BaseQuantizer:
    """The quantizer behind a CLI method name (``"h2q"``, ``"itq"`` or ``"sign"``)."""
    projection = "pca" if pca else None
    if method != "h2q" and (loss is not None or solver is not None):
        option = "--loss" if loss is not None else "--solver"
        raise ValueError(f"{option} applies only to --method h2q, not to --method {method}.")
    if max_iter is not None and max_iter < 1:
        raise ValueError(f"--max-iter must be a positive integer, got {max_iter}.")
    if method == "h2q":
        return HouseholderQuantizer(
            n_bits,
            loss=loss or "l2",
            solver=solver or "gd",
            projection=projection,
            max_iter=max_iter,
            random_state=seed,
        )
    if method == "itq":
        return ITQQuantizer(
            n_bits, projection=projection, max_iter=max_iter or 50, random_state=seed
        )
    if method == "sign":
        if max_iter is not None:
            raise ValueError("--max-iter applies to --method h2q or itq, not to sign.")
        return SignQuantizer(n_bits, projection=projection)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def check_bits(bits: int | None, width: int, source: str, *, pca: bool) -> None:
    """Validate ``--bits`` against the embedding width (PCA needed when narrower)."""
    if bits is None:
        return
    if bits < 1:
        raise ValueError(f"--bits must be a positive integer, got {bits}.")
    if bits > width:
        raise ValueError(
            f"--bits {bits} is larger than the embedding width {width} of {source}: a "
            f"rotation cannot make more bits than dimensions. Use --bits <= {width}, or train "
            f"the embedding model with {bits} outputs."
        )
    if bits < width and not pca:
        raise ValueError(
            f"--bits {bits} is smaller than the embedding width {width} of {source}. Add --pca "
            f"to project to {bits} dimensions first, or train the embedding model with {bits} "
            "outputs (the paper's setting)."
        )


def load_matrix(path: str | os.PathLike, fold: str | None, what: str) -> np.ndarray:
    """A float matrix from a ``.npy`` file, or fold ``fold`` of an embeddings ``.npz``.

    With a ``.npz`` and no ``fold``, the file must hold exactly one fold.
    """
    path = Path(path)
    if path.suffix == ".npy":
        if fold is not None:
            raise ValueError(
                f"--fold {fold} applies to an embeddings .npz, but {path} is a .npy matrix; "
                "drop --fold."
            )
        data = load_embeddings(path)
        key = "train"
    else:
        data = load_embeddings(path)
        present = [f for f in FOLDS if f in data]
        if fold is None:
            if len(present) != 1:
                raise ValueError(
                    f"{path} holds the folds {present}; choose one with --fold ({'|'.join(FOLDS)})."
                )
            fold = present[0]
        if fold not in data:
            raise ValueError(
                f"{path} has no fold {fold!r} (it holds {sorted(data)}); pass --fold with one "
                f"of {present}."
            )
        key = fold
    return check_embeddings(data[key], f"{what} ({path.name}:{key})", allow_torch=False)


def load_codes(path: str | os.PathLike, what: str) -> np.ndarray:
    """Packed ``uint8`` codes of shape (n, n_bytes) from a ``.npy`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such codes file: {path}. Pass a .npy written by `h2q encode`.")
    try:
        codes = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FileFormatError(
            f"{path} is not a readable .npy file ({exc}). Pass a .npy written by `h2q encode`."
        ) from exc
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8 or codes.ndim != 2:
        shape = getattr(codes, "shape", "?")
        dtype = getattr(codes, "dtype", type(codes).__name__)
        raise ValueError(
            f"{what} {path} holds {dtype} of shape {shape}, but packed binary codes (uint8, "
            "shape (n, n_bits / 8)) are expected. Encode embeddings first with `h2q encode`."
        )
    if len(codes) == 0 or codes.shape[1] == 0:
        raise ValueError(f"{what} {path} is empty (shape {codes.shape}).")
    return codes


def check_output_file(path: str | os.PathLike) -> Path:
    """Fail early (before any work) when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; pass a file name.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {path}: folder {parent} does not exist. Create it first."
        )
    return path


def fit_progress_bar(method: str, quantizer: BaseQuantizer, disable: bool) -> Any:
    """A tqdm bar driven by the quantizer's fit callback (None when it has no callback)."""
    import inspect

    from tqdm.auto import tqdm

    from ..evaluation import _planned_iterations

    if disable or "callback" not in inspect.signature(quantizer.fit).parameters:
        return None
    return tqdm(
        total=_planned_iterations(quantizer),
        desc=f"fit {method}",
        unit="it",
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )


# ----------------------------------------------------------------------------------------------
# h2q fit


def _add_fit(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit a stage-2 quantizer (H²Q, ITQ or sign) on embeddings",
        description="Fit a stage-2 quantizer on embeddings and save it to a .npz file. "
        "EMBEDDINGS is a .npy matrix or an embeddings .npz (its 'train' fold, and its 'val' "
        "fold for iterate selection when present).",
    )
    p.add_argument("embeddings", metavar="EMBEDDINGS", help=".npy matrix or embeddings .npz")
    p.add_argument("--out", required=True, metavar="QUANTIZER.npz", help="output file")
    p.add_argument("--val", metavar="VAL.npy", help="validation embeddings (overrides 'val')")
    p.add_argument("--method", default="h2q", choices=METHODS[::-1], help="default: h2q")
    p.add_argument("--bits", type=int, metavar="N", help="code length (default: the width)")
    p.add_argument("--loss", choices=_LOSSES, help="H²Q loss (default: l2)")
    p.add_argument("--solver", choices=_SOLVERS, help="H²Q solver (default: gd)")
    p.add_argument("--pca", action="store_true", help="project to --bits dimensions by PCA")
    p.add_argument(
        "--max-iter",
        type=int,
        metavar="N",
        help="iterations (h2q gd: 200, h2q paper: 300 epochs, itq: 50 by default)",
    )
    p.add_argument("--seed", type=int, default=0, help="random state (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_fit)


def _run_fit(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    source = Path(args.embeddings)
    data = load_embeddings(source, required=("train",))
    X = check_embeddings(data["train"], f"train ({source.name})", allow_torch=False)
    if args.val is not None:
        X_val = load_matrix(args.val, "val" if Path(args.val).suffix != ".npy" else None, "--val")
    elif "val" in data:
        X_val = check_embeddings(data["val"], f"val ({source.name})", allow_torch=False)
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
        quantizer.fit(X, X_val, **fit_kw)
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
        "the rotated value is >= 0) and save them as a .npy file.",
    )
    p.add_argument("quantizer", metavar="QUANTIZER.npz", help="file written by `h2q fit`")
    p.add_argument("embeddings", metavar="EMBEDDINGS", help=".npy matrix or embeddings .npz")
    p.add_argument("--out", required=True, metavar="CODES.npy", help="output codes file")
    p.add_argument("--fold", choices=FOLDS, help="fold of an embeddings .npz to encode")
    p.add_argument(
        "--features-out",
        metavar="FEATURES.npy",
        help="also save the transformed (rotated) features, for `h2q search` tie-breaking",
    )
    p.set_defaults(func=_run_encode)


def _run_encode(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    features_out = None if args.features_out is None else check_output_file(args.features_out)
    if features_out is not None and features_out.resolve() == out.resolve():
        raise ValueError("--out and --features-out name the same file; pass two paths.")
    quantizer = load_quantizer(args.quantizer)
    X = load_matrix(args.embeddings, args.fold, "EMBEDDINGS")
    if X.shape[1] != quantizer.n_features_in_:
        raise ValueError(
            f"{args.embeddings} has {X.shape[1]} features, but the quantizer {args.quantizer} "
            f"was fitted on {quantizer.n_features_in_}. Pass embeddings from the same model, "
            "or refit with `h2q fit`."
        )
    codes = quantizer.encode(X)
    features = None if features_out is None else np.asarray(quantizer.transform(X))
    _io.save_npy(out, codes)
    if features_out is not None:
        _io.save_npy(features_out, features)
    print(
        f"encoded {len(codes)} embeddings into {quantizer.n_bits_}-bit codes "
        f"({codes.shape[1]} bytes each) -> {out}"
    )
    return 0


# ----------------------------------------------------------------------------------------------
# h2q search


def _add_search(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "search",
        help="exact Hamming k-nearest-neighbour search over packed codes",
        description="Search the k nearest database codes of each query code in Hamming "
        "distance (ties by database id, or by the feature distance when features are given) "
        "and save D (distances) and I (database ids) to a .npz file.",
    )
    p.add_argument("--database", required=True, metavar="DB_CODES.npy")
    p.add_argument("--queries", required=True, metavar="Q_CODES.npy")
    p.add_argument("-k", "--k", type=int, required=True, help="neighbours per query")
    p.add_argument("--out", required=True, metavar="RESULT.npz")
    p.add_argument("--backend", default="auto", choices=("auto", "numba", "numpy", "faiss"))
    p.add_argument(
        "--database-features",
        metavar="DB_FEATURES.npy",
        help="continuous features of the database items, to re-rank Hamming ties",
    )
    p.add_argument("--query-features", metavar="Q_FEATURES.npy", help="same, for the queries")
    p.set_defaults(func=_run_search)


def _run_search(args: argparse.Namespace) -> int:
    from ..search import HammingIndex

    out = check_output_file(args.out)
    if (args.database_features is None) != (args.query_features is None):
        raise ValueError(
            "tie re-ranking needs both --database-features and --query-features; pass both, "
            "or neither."
        )
    if args.k < 1:
        raise ValueError(f"-k must be a positive integer, got {args.k}.")
    db_codes = load_codes(args.database, "--database")
    q_codes = load_codes(args.queries, "--queries")
    if db_codes.shape[1] != q_codes.shape[1]:
        raise ValueError(
            f"--database codes have {db_codes.shape[1]} bytes ({8 * db_codes.shape[1]} bits) "
            f"but --queries codes have {q_codes.shape[1]}; encode both with the same quantizer."
        )
    db_features = q_features = None
    if args.database_features is not None:
        db_features = load_matrix(args.database_features, None, "--database-features")
        q_features = load_matrix(args.query_features, None, "--query-features")
    index = HammingIndex(8 * db_codes.shape[1], backend=args.backend)
    index.add(db_codes, db_features)
    D, I = index.search(q_codes, args.k, q_features)
    _io.atomic_write(out, lambda f: np.savez(f, D=D, I=I))
    rerank = ", ties re-ranked by features" if db_features is not None else ""
    print(
        f"searched {len(q_codes)} queries in {len(db_codes)} codes, k={args.k} "
        f"({index.backend}{rerank}) -> {out}"
    )
    return 0
