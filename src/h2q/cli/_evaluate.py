"""``h2q evaluate``: sign, ITQ and H²Q side by side on one embeddings file."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from .. import _io
from .._validation import check_embeddings
from ..embeddings import load_embeddings
from .quantize import METHODS, check_bits, make_quantizer

_REQUIRED = ("train", "query", "database", "y_query", "y_database")


def add_parser(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="fit sign, ITQ and H²Q on embeddings and compare their retrieval scores",
        description="Fit each quantizer on the 'train' fold (with 'val' for iterate "
        "selection when present), encode 'query' and 'database', rank the database by "
        "Hamming distance with ties broken by the distance of the L2-normalised transformed "
        "features (the paper's protocol), and print mAP@k (top-k relevant denominator, empty "
        "queries score 0), mAP over the whole database, mAP within a Hamming radius, "
        "precision@k, the L2 quantization loss and the fit time as a Markdown table.",
    )
    p.add_argument(
        "embeddings",
        metavar="EMBEDDINGS.npz",
        help="embeddings file with train, query, database, y_query and y_database (and "
        "optionally val), as written by `h2q train`",
    )
    p.add_argument(
        "--bits", type=int, metavar="N", help="code length; PCA is used when N < the width"
    )
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
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
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def parse_methods(text: str) -> list[str]:
    """``"sign,itq"`` -> ``["sign", "itq"]``, with clear errors for unknown or repeated names."""
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


def run(args: argparse.Namespace) -> int:
    """Run ``h2q evaluate``; every check happens before the (long) evaluation."""
    from ..evaluation import (
        evaluate_quantizers,
        plot_precision_recall,
        render_csv,
        render_markdown,
    )

    methods = parse_methods(args.methods)
    out_dir = None if args.out is None else Path(args.out)
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise ValueError(f"--out {out_dir} exists and is not a folder; pass a folder.")
        if not args.no_plot:
            _require_matplotlib()
    if args.k < 1:
        raise ValueError(f"-k must be a positive integer, got {args.k}.")
    if args.radius < 0:
        raise ValueError(f"--radius must be >= 0, got {args.radius}.")

    source = Path(args.embeddings)
    data = load_embeddings(source, required=_REQUIRED)
    width = check_embeddings(data["train"], f"train ({source.name})", allow_torch=False).shape[1]
    for fold in ("val", "query", "database"):
        if fold in data and (data[fold].ndim != 2 or data[fold].shape[1] != width):
            raise ValueError(
                f"{source}: fold {fold!r} has shape {data[fold].shape}, but 'train' has "
                f"{width} features; every fold must come from the same model."
            )
    pca = args.bits is not None and args.bits < width
    check_bits(args.bits, width, str(source), pca=pca)
    quantizers = {m: make_quantizer(m, args.bits, pca=pca, seed=args.seed) for m in methods}

    bars = _Bars(disable=args.no_progress)
    try:
        result = evaluate_quantizers(
            quantizers,
            data["train"],
            data.get("val"),
            data["query"],
            data["y_query"],
            data["database"],
            data["y_database"],
            k=args.k,
            radius=args.radius,
            tie_break=not args.no_tie_break,
            progress=bars,
        )
    finally:
        bars.close()
    table = render_markdown(result)
    print(table, end="")
    if out_dir is None:
        return 0

    # Render everything in memory first, then write: a failure leaves no partial output.
    report = result.to_dict()
    report["settings"] = {
        "embeddings": str(source),
        "methods": methods,
        "bits": args.bits,
        "pca": pca,
        "seed": args.seed,
        "quantizers": {m: q.get_params() for m, q in quantizers.items()},
    }
    files = {
        "table.md": table.encode("utf-8"),
        "table.csv": render_csv(result).encode("utf-8"),
        "results.json": (json.dumps(report, indent=2) + "\n").encode("utf-8"),
    }
    if not args.no_plot:
        png = io.BytesIO()
        bits = result.rows[0].n_bits
        plot_precision_recall(result, png, title=f"{source.stem}: precision-recall, {bits} bits")
        files["precision_recall.png"] = png.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        _io.atomic_write(out_dir / name, lambda f, payload=payload: f.write(payload))
    print(f"wrote {', '.join(files)} -> {out_dir}")
    return 0


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
