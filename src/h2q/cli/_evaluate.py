"""``h2q evaluate``: sign, ITQ and H²Q side by side on one embeddings file, or fitted
quantizer files scored as they are (``--quantizer``); on unlabelled embeddings (or with
``--unsupervised``), recall of the exact float neighbours for five methods."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from .._validation import check_labels
from ..embeddings import FOLDS, EmbeddingFolds, load_embeddings
from ..quantizers import load_quantizer
from ._args import STAGE2_THREADS, add_threads_option
from ._common import METHODS, check_bits, embeddings, make_quantizer
from ._errors import UsageError, user_input
from ._paths import add_force_option, check_outputs

_LABELS = ("y_query", "y_database")
_PLOT = "precision_recall.png"
#: Every file ``--out`` receives; all count as outputs (an old plot too, with --no-plot).
_OUT_FILES = ("table.md", "table.csv", "results.json", _PLOT)


def add_parser(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="fit sign, ITQ and H²Q on embeddings (or load fitted quantizers) and compare "
        "their retrieval scores",
        description="Fit each quantizer on the 'train' fold (with 'val' for iterate "
        "selection when present), or load fitted ones with --quantizer, encode 'query' and "
        "'database', rank the database by Hamming distance with ties broken by the distance "
        "of the L2-normalised transformed features (the paper's protocol), and print mAP@k "
        "(top-k relevant denominator, empty queries score 0), mAP over the whole database, "
        "mAP within a Hamming radius, precision@k, the L2 quantization loss and the fit time "
        "as a Markdown table. With --out, files of an earlier evaluation in the folder are "
        "refused unless --force, which replaces them all (an old plot is removed with "
        "--no-plot) once the new results are complete.",
    )
    p.add_argument(
        "embeddings",
        metavar="EMBEDDINGS.npz",
        help="embeddings file with train, query, database, y_query and y_database (and "
        "optionally val), as written by `h2q train`; train is not needed with --quantizer",
    )
    p.add_argument(
        "--quantizer",
        action="append",
        metavar="QUANTIZER.npz",
        help="score this fitted quantizer (from `h2q fit`) instead of fitting; repeat to "
        "compare several (named by file stem)",
    )
    p.add_argument(
        "--bits", type=int, metavar="N", help="code length; PCA is used when N < the width"
    )
    p.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated methods among {', '.join(METHODS)} (default: all)",
    )
    p.add_argument("-k", "--k", type=int, default=5000, help="mAP@k cut-off (default: 5000)")
    p.add_argument("--radius", type=int, default=2, help="Hamming radius (default: 2)")
    p.add_argument(
        "--out", metavar="DIR", help="write table.md, table.csv, results.json and a PR plot"
    )
    p.add_argument("--no-plot", action="store_true", help="with --out, skip the PNG plot")
    p.add_argument(
        "--no-tie-break",
        action="store_true",
        help="break Hamming ties by database id instead of the feature distance (faster)",
    )
    p.add_argument("--seed", type=int, default=0, help="random state (default: 0)")
    p.add_argument(
        "--no-asymmetric",
        action="store_true",
        help="skip the asymmetric columns (float queries scored against the codes by "
        "RaBitQ's estimator, beside Hamming ranking)",
    )
    _add_unsupervised_options(p)
    add_force_option(
        p,
        "replace the files of an earlier evaluation in --out (without it they are refused; "
        "an input file is never overwritten)",
    )
    add_threads_option(p, STAGE2_THREADS, "small stage-2 problems run fastest on one thread")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _add_unsupervised_options(p: argparse.ArgumentParser) -> None:
    """The options of the unsupervised evaluation (recall of the exact float neighbours)."""
    u = p.add_argument_group(
        "unsupervised evaluation (a file without y_query/y_database, or --unsupervised)",
        "recall@10 and @100 of the exact float top-k for sign, centred sign, random "
        "rotation, ITQ and H2Q. A .npy matrix (or a .npz without query/database) is split "
        "into --queries seeded random queries and the rest as database; the quantizers are "
        "fitted on 'train' when the file has query and database folds besides it, else on "
        "the database.",
    )
    u.add_argument(
        "--unsupervised", action="store_true", help="score recall even when labels are present"
    )
    u.add_argument(
        "--rescore",
        type=int,
        default=100,
        metavar="R",
        help="shortlist of the rescored column: Hamming top R re-ordered by the float score "
        "(default: 100)",
    )
    u.add_argument(
        "--metric",
        choices=("ip", "l2"),
        default="ip",
        help="float score of the exact neighbours and of rescoring (default: ip, the cosine "
        "for the unit-length vectors of sentence encoders)",
    )
    u.add_argument(
        "--queries",
        type=int,
        default=1000,
        metavar="N",
        help="queries taken from a single matrix (default: 1000)",
    )
    u.add_argument(
        "--max-database",
        type=int,
        metavar="N",
        help="score against a seeded random subset of N database items (quicker)",
    )


def parse_methods(text: str) -> list[str]:
    """Comma-separated names of :data:`METHODS` -> a list (``sign,itq`` -> ``[sign, itq]``),
    with clear errors for unknown or repeated names."""
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"unknown method(s) {unknown or [text]} in --methods; choose among "
            f"{', '.join(METHODS)} (comma-separated)."
        )
    repeated = sorted({m for m in methods if methods.count(m) > 1})
    if repeated:
        raise ValueError(f"--methods lists {', '.join(repeated)} more than once.")
    return methods


def _check_out_dir(args: argparse.Namespace) -> Path | None:
    """The --out folder, checked against the output policy before any work."""
    if args.out is None:
        return None
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a folder; pass a folder.")
    if out_dir.is_dir():
        inputs = [args.embeddings, *(args.quantizer or [])]
        outputs = {f"--out {out_dir}: {name}": out_dir / name for name in _OUT_FILES}
        check_outputs(inputs, outputs, force=args.force)
    if not args.no_plot:
        _require_matplotlib()
    return out_dir


def run(args: argparse.Namespace) -> int:
    """Run ``h2q evaluate``; every check happens before the (long) evaluation."""
    from ..evaluation import evaluate_quantizers, render_markdown

    source = Path(args.embeddings)
    data = load_embeddings(source)
    if args.unsupervised or not all(data.get(key) is not None for key in _LABELS):
        return _run_unsupervised(args, data, source)
    out_dir = _check_out_dir(args)
    if args.k < 1:
        raise ValueError(f"-k must be a positive integer, got {args.k}.")
    if args.radius < 0:
        raise ValueError(f"--radius must be >= 0, got {args.radius}.")
    refit = not args.quantizer
    folds = ("train",) if refit else ()
    missing = [key for key in (*folds, "query", "database") if data.get(key) is None]
    if missing:
        raise ValueError(
            f"{source} has keys {sorted(data.keys())} but lacks {missing}. Pass a file with those "
            "folds (h2q train writes them all), or --unsupervised to split a single matrix."
        )
    width = embeddings(data.train if refit else data.query, f"({source.name})").shape[1]
    for fold in ("train", "val", "query", "database"):
        X = data.get(fold)
        if X is not None and (X.ndim != 2 or X.shape[1] != width):
            raise ValueError(
                f"{source}: fold {fold!r} has shape {X.shape}, but the others have "
                f"{width} features; every fold must come from the same model."
            )
    with user_input():
        for fold, labels in (("query", "y_query"), ("database", "y_database")):
            check_labels(data.get(labels), len(data.get(fold)), f"{labels} ({source.name})")
    quantizers, settings = (
        _new_quantizers(args, width, source) if refit else _loaded_quantizers(args)
    )
    n_db = len(data.database)
    if args.k > n_db:  # the library clamps; say so rather than print mAP@n_db silently
        print(
            f"note: -k {args.k} is more than the {n_db} database items; mAP@{n_db} and "
            f"P@{n_db} (the whole ranking) are reported.",
            file=sys.stderr,
        )
    bars = _Bars(disable=args.no_progress)
    try:
        result = evaluate_quantizers(
            quantizers,
            data if refit else data.replace(train=None),
            k=args.k,
            radius=args.radius,
            tie_break=not args.no_tie_break,
            progress=bars,
            refit=refit,
            asymmetric=_asymmetric_wanted(args),
        )
    finally:
        bars.close()
    table = render_markdown(result)
    print(table, end="")
    if out_dir is not None:
        settings["embeddings"] = str(source)
        settings["quantizers"] = {m: q.get_params() for m, q in quantizers.items()}
        _write_outputs(out_dir, result, table, settings, args.no_plot, source.stem)
    return 0


def _run_unsupervised(args: argparse.Namespace, data: EmbeddingFolds, source: Path) -> int:
    """``h2q evaluate`` on unlabelled embeddings: recall of the exact float neighbours."""
    from ..evaluation.unsupervised import (
        UNSUPERVISED_METHODS,
        baseline_quantizers,
        evaluate_recall,
        render_recall_csv,
        render_recall_markdown,
    )

    if args.quantizer:
        raise UsageError(
            "--quantizer scores fitted quantizers on labelled data; the unsupervised "
            "evaluation fits its own. Drop --quantizer, or pass a file with labels."
        )
    args.no_plot = True
    out_dir = _check_out_dir(args)
    for name in ("rescore", "queries", "max_database"):
        value = getattr(args, name)
        if value is not None and value < 1:
            option = "--" + name.replace("_", "-")
            raise ValueError(f"{option} must be a positive integer, got {value}.")
    folds = _unsupervised_folds(args, data, source)
    width = folds["database"].shape[1]
    pca = args.bits is not None and args.bits < width
    check_bits(args.bits, width, str(source), pca=pca)
    methods = None
    if args.methods is not None:
        methods = tuple(m.strip().lower() for m in args.methods.split(",") if m.strip())
        if not methods or any(m not in UNSUPERVISED_METHODS for m in methods):
            raise ValueError(
                f"--methods {args.methods!r}: the unsupervised evaluation knows "
                f"{', '.join(UNSUPERVISED_METHODS)} (comma-separated)."
            )
    quantizers = baseline_quantizers(args.bits, pca=pca, seed=args.seed, methods=methods)
    result = evaluate_recall(
        quantizers,
        folds["fit"],
        folds.get("val"),
        folds["query"],
        folds["database"],
        rescore_size=args.rescore,
        metric=args.metric,
        asymmetric=_asymmetric_wanted(args),
    )
    table = render_recall_markdown(result)
    print(table, end="")
    if out_dir is not None:
        report = result.to_dict()
        report["settings"] = {
            "embeddings": str(source),
            "bits": args.bits,
            "pca": pca,
            "seed": args.seed,
            "queries": args.queries,
            "max_database": args.max_database,
            "quantizers": {m: q.get_params() for m, q in quantizers.items()},
        }
        files = {
            "table.md": table,
            "table.csv": render_recall_csv(result),
            "results.json": json.dumps(report, indent=2) + "\n",
        }
        _write_files(out_dir, {k: v.encode("utf-8") for k, v in files.items()}, no_plot=True)
    return 0


def _unsupervised_folds(
    args: argparse.Namespace, data: EmbeddingFolds, source: Path
) -> dict[str, np.ndarray]:
    """``fit``, ``query``, ``database`` (and ``val``) matrices of an unlabelled file."""
    rng = np.random.default_rng(args.seed)
    present = [f for f in FOLDS if data.get(f) is not None]
    if data.query is not None and data.database is not None:
        folds = {f: embeddings(data.get(f), f"{f} ({source.name})") for f in present}
        folds["fit"] = folds.pop("train", folds["database"])
    else:
        if len(present) != 1:
            raise ValueError(
                f"{source} holds {present}: pass both 'query' and 'database' folds, or a single "
                "matrix (a .npy, or a .npz with one fold) to split into queries and database."
            )
        X = embeddings(data.get(present[0]), f"{present[0]} ({source.name})")
        if args.queries >= len(X):
            raise ValueError(
                f"--queries {args.queries} leaves no database in the {len(X)} rows of {source}; "
                f"pass --queries < {len(X)}."
            )
        order = rng.permutation(len(X))
        folds = {"query": X[np.sort(order[: args.queries])]}
        folds["database"] = folds["fit"] = X[np.sort(order[args.queries :])]
    if args.max_database is not None and args.max_database < len(folds["database"]):
        keep = np.sort(rng.choice(len(folds["database"]), args.max_database, replace=False))
        fit_is_db = folds["fit"] is folds["database"]
        folds["database"] = folds["database"][keep]
        if fit_is_db:
            folds["fit"] = folds["database"]
    widths = {f: M.shape[1] for f, M in folds.items()}
    if len(set(widths.values())) != 1:
        raise ValueError(
            f"{source}: the folds have different widths {widths}; every fold must come from "
            "the same model."
        )
    return folds


def _new_quantizers(
    args: argparse.Namespace, width: int, source: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    methods = parse_methods(args.methods if args.methods is not None else ",".join(METHODS))
    pca = args.bits is not None and args.bits < width
    check_bits(args.bits, width, str(source), pca=pca)
    quantizers = {m: make_quantizer(m, args.bits, pca=pca, seed=args.seed) for m in methods}
    return quantizers, {"methods": methods, "bits": args.bits, "pca": pca, "seed": args.seed}


def _loaded_quantizers(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    if args.methods is not None or args.bits is not None:
        option = "--methods" if args.methods is not None else "--bits"
        raise UsageError(
            f"{option} chooses quantizers to fit; --quantizer scores fitted ones. Pass one of them."
        )
    quantizers: dict[str, Any] = {}
    for path in args.quantizer:
        name = Path(path).stem
        if name in quantizers:
            raise UsageError(
                f"two --quantizer files are named {name!r}; rename one so the table can tell "
                "them apart."
            )
        quantizers[name] = load_quantizer(path)
    return quantizers, {"methods": list(quantizers), "quantizer_files": list(args.quantizer)}


def _write_outputs(
    out_dir: Path, result: Any, table: str, settings: dict, no_plot: bool, stem: str
) -> None:
    """Render everything in memory, write it atomically, then drop a stale plot."""
    from ..evaluation import plot_precision_recall, render_csv

    report = result.to_dict()
    report["settings"] = settings
    files = {
        "table.md": table.encode("utf-8"),
        "table.csv": render_csv(result).encode("utf-8"),
        "results.json": (json.dumps(report, indent=2) + "\n").encode("utf-8"),
    }
    if not no_plot:
        png = io.BytesIO()
        bits = result.rows[0].n_bits
        title = f"{stem}: precision-recall, {bits} bits"
        plot_precision_recall(result.pr_curves(), png, title=title)
        files[_PLOT] = png.getvalue()
    _write_files(out_dir, files, no_plot)


def _write_files(out_dir: Path, files: dict[str, bytes], no_plot: bool) -> None:
    """Write each file atomically; with ``no_plot``, then drop a stale plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        _io.atomic_write(out_dir / name, lambda f, payload=payload: f.write(payload))
    if no_plot:  # a plot of an earlier evaluation must not sit beside the new tables
        with contextlib.suppress(FileNotFoundError):
            (out_dir / _PLOT).unlink()
    print(f"wrote {', '.join(files)} -> {out_dir}")


def _asymmetric_wanted(args: argparse.Namespace) -> bool:
    """The asymmetric columns unless --no-asymmetric; skipped (with a note) without numba,
    whose compiled kernels they need to run at a useful speed."""
    from ..search._jit import numba_available

    if args.no_asymmetric:
        return False
    if not numba_available():
        print(
            "note: the asymmetric columns need numba (pip install 'h2q[fast]'); skipped.",
            file=sys.stderr,
        )
        return False
    return True


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the precision-recall plot needs matplotlib, which is not installed. Install it "
            "(pip install 'h2q[plot]'), or pass --no-plot."
        ) from exc


class _Bars:
    """tqdm bars for :func:`h2q.evaluation.evaluate_quantizers`'s progress callback."""

    def __init__(self, disable: bool) -> None:
        self.disable = disable
        self.bars: dict[tuple[str, str], Any] = {}

    def __call__(self, method: str, stage: str, done: int, total: int | None) -> None:
        if self.disable:
            return
        from tqdm.auto import tqdm

        key = (method, stage)
        bar = self.bars.get(key)
        if bar is None:
            unit = "it" if stage == "fit" else "query"
            bar = tqdm(
                total=total,
                desc=f"{stage} {method}",
                unit=unit,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
            self.bars[key] = bar
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
