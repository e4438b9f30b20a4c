"""``h2q reproduce``: the paper's grid of methods x strategies x bits x seeds, end to end.

Runs (or resumes) a grid with :func:`h2q.experiments.run_grid` and writes the tables,
statistics, plots and ``report.md`` with :func:`h2q.experiments.write_outputs`. Bad settings
are rejected before any long computation (exit status 2, one-line message).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from typing import Any

from ._args import add_precision_option, positive_int, run_options

_PRESET_HELP = {
    "default": "Fashion-MNIST subset, frozen EfficientNet-Lite0 at 64 px, DPSH/DCH/HyP², "
    "16/32/64 bits, three seeds (0, 1, 2), mAP@1000; sized for 2 CPU cores (the kept run, its "
    "machine and its time: docs/results.md)",
    "full": "every method, 16/32/48/64 bits, 4 seeds, paper-sized folds, mAP@5000 (GPU)",
    "quick": "seconds on scikit-learn digits (tests, smoke runs)",
}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from None


def _flatten(values: list[list[Any]] | None) -> tuple[Any, ...] | None:
    if values is None:
        return None
    return tuple(v for group in values for v in group)


def register(subparsers: Any) -> None:
    """Add ``reproduce`` to the ``h2q`` parser."""
    from ..data import available_datasets
    from ..losses import LOSSES
    from ..models import BACKBONES

    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's grid (methods x strategies x bits x seeds) and write a report",
        description="Train stage-1 models for each method and strategy (lambda = 0, +lambda "
        "with lambda chosen on validation mAP, +HSWD), quantize the lambda = 0 embeddings with "
        "ITQ and H²Q (four losses), score every cell with mAP@k, and write tables, statistics, "
        "plots and report.md to --out. Interrupted runs resume: finished stage-1 runs and cells "
        "are reused (run the same command again). Without --full or --quick it runs the main "
        f"job: {_PRESET_HELP['default']}.",
    )
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--full", action="store_true", help=_PRESET_HELP["full"])
    preset.add_argument("--quick", action="store_true", help=_PRESET_HELP["quick"])
    p.add_argument(
        "--dataset",
        help=f"data set name: {', '.join(available_datasets())} (default: the preset's)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        type=_names,
        metavar="M",
        help=(
            f"stage-1 methods, space- or comma-separated ({', '.join(LOSSES)}, "
            "pml:<LossName>; adsh as a reference row)"
        ),
    )
    p.add_argument("--bits", nargs="+", type=_ints, metavar="B", help="code lengths")
    p.add_argument("--seeds", nargs="+", type=_ints, metavar="S", help="seeds (e.g. 0 1 2 3)")
    p.add_argument(
        "--backbone",
        help=f"{', '.join(BACKBONES)} (default: the preset's)",
    )
    p.add_argument(
        "--finetune",
        action="store_true",
        help="train the pretrained backbone too (default: keep it frozen, cache its features)",
    )
    p.add_argument("--image-size", type=positive_int, help="backbone input side in pixels")
    p.add_argument("--epochs", type=positive_int, help="maximum stage-1 epochs")
    add_precision_option(p, None, "the preset's; the main job's is auto")
    p.add_argument("--max-database", type=positive_int, help="cap on the database fold")
    p.add_argument("--k", type=positive_int, help="cut-off of mAP@k")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="stage-1 device (default: auto = CUDA when available; stage 2 runs on the CPU)",
    )
    p.add_argument("--root", help="data folder (for data sets that are not installed system-wide)")
    p.add_argument(
        "--cache-dir",
        help="cache root: of the frozen backbone's features for images (default: "
        "$H2Q_CACHE_DIR/features), of the sentence embeddings for texts (default: "
        "$H2Q_CACHE_DIR/text, the default of `h2q embed`; pass the --cache-dir given to `h2q "
        "embed` to reuse its embeddings: they are found by model and texts, and computed when "
        "missing)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes; (method, bits) groups run in parallel (default: 2, or 1 on "
        "one CPU)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads per process (default: 1, the fastest measured on 2 cores for "
        "these small networks)",
    )
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the checkpoints of finished stage-1 runs (default: delete them once a run "
        "is complete; an unfinished run keeps its own, to resume)",
    )
    p.add_argument(
        "--redo-stage2",
        action="store_true",
        help="compute the stage-2 cells (+ITQ and the H²Q rows) again even when finished, "
        "reusing the stage-1 runs of --out (e.g. after a change of the stage-2 solver); a "
        "folder of other evaluation settings (--k, solver) is then accepted, and its other "
        "cells are recomputed too; an interrupted redo is finished by the next call on "
        "--out, with or without this option",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the grid described by ``args``; print where the results are and the verdict."""
    from ..experiments.config import get_config
    from ..experiments.grid import run_grid
    from ..experiments.report import write_outputs
    from ..experiments.rows import ROW_BY_KEY
    from ..models import BACKBONES, PRETRAINED_BACKBONES

    preset = "full" if args.full else "quick" if args.quick else "default"
    if importlib.util.find_spec("matplotlib") is None:  # the plots come last: check first
        raise ImportError(
            "h2q reproduce draws its plots with matplotlib, which is not installed. Install the "
            "extra: pip install 'h2q[plot]'."
        )
    if args.backbone is not None and args.backbone.lower() not in BACKBONES:
        raise ValueError(
            f"unknown --backbone {args.backbone!r}; choose one of {', '.join(BACKBONES)}."
        )
    overrides: dict[str, Any] = {
        "dataset": args.dataset,
        "methods": _flatten(args.methods),
        "bits": _flatten(args.bits),
        "seeds": _flatten(args.seeds),
        "backbone": None if args.backbone is None else args.backbone.lower(),
        "image_size": args.image_size,
        "epochs": args.epochs,
        "precision": args.precision,
        "max_database": args.max_database,
        "k": args.k,
    }
    if overrides["methods"] is not None:
        overrides["methods"] = tuple(m.lower() for m in overrides["methods"])
    config = get_config(preset, **overrides)
    backbone = config.train.backbone
    if args.finetune:
        config = config.replace(frozen=False)
    elif config.train.frozen and backbone is not None and backbone not in PRETRAINED_BACKBONES:
        config = config.replace(frozen=False)  # backbones trained from scratch cannot be frozen
    if args.dataset is not None and args.dataset != get_config(preset).train.dataset:
        config = config.replace(name=f"{preset}, {args.dataset}")

    start = time.perf_counter()
    result = run_grid(
        config,
        args.out,
        **run_options(args),
        jobs=args.jobs,
        threads=args.threads,
        keep_checkpoints=args.keep_checkpoints,
        redo=[k for k, row in ROW_BY_KEY.items() if row.is_stage2] if args.redo_stage2 else (),
    )
    files = write_outputs(result)
    elapsed = time.perf_counter() - start
    print((result.out_dir / "table.md").read_text(encoding="utf-8"))
    print((result.out_dir / "verdict.md").read_text(encoding="utf-8"), end="")
    for failure in result.failures:
        print(f"warning: {failure['what']}: {failure['reason']}", file=sys.stderr)
    print(
        f"\n{len(result.computed)} cells computed, {len(result.trained)} stage-1 runs trained "
        f"in {elapsed:.0f} s. Report: {files['report.md']}"
    )
    return 0
