"""``h2q train``: stage 1 (similarity learning) from a data set name to an embeddings file.

Example::

    h2q train --dataset digits --method dpsh --bits 32 --out runs/digits-dpsh-32
    h2q train --dataset fashion-mnist --method hyp2 --bits 64 --backbone efficientnet-lite0 \\
        --frozen --max-database 5000 --out runs/fm-hyp2-64

The output folder layout is described in :mod:`h2q.training.run`; ``embeddings.npz`` there is
the input of ``h2q fit`` (stage 2). An ``--out`` folder that holds files is refused unless
``--resume`` (continue the run there, same settings) or ``--force`` (replace it; the new run is
built aside and swapped in when complete). Every option but the run options
(:data:`RUN_OPTIONS`) is a setting of :class:`h2q.training.TrainConfig`
(:meth:`~h2q.training.TrainConfig.setting_names`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._args import (
    add_precision_option,
    add_threads_option,
    positive_int,
    run_options,
    train_threads,
)

_DEVICES = ("auto", "cpu", "cuda")
#: Fields of :class:`h2q.training.TrainConfig` whose option has another name.
_OPTION_OF = {"n_bits": "bits", "weights_path": "weights"}
#: Options that say where and how a run executes, not what it trains (not in TrainConfig).
RUN_OPTIONS = (
    "out",
    "root",
    "device",
    "cache_dir",
    "threads",
    "threads_default",
    "no_progress",
    "resume",
    "force",
)


def _method(value: str) -> str:
    from ..losses import LOSSES, canonical_loss_name
    from ..training.config import REFERENCE_METHODS

    if value.lower() in REFERENCE_METHODS:
        return value.lower()
    try:
        return canonical_loss_name(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown method {value!r}; choose one of "
            f"{', '.join(sorted([*LOSSES, *REFERENCE_METHODS]))}, or pml:<ClassName> for a "
            "pytorch-metric-learning loss (e.g. pml:ContrastiveLoss)."
        ) from None


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value!r}")
    return number


def _positive_float(value: str) -> float:
    number = _non_negative_float(value)
    if number == 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _hidden(value: str) -> tuple[int, ...]:
    if value.strip() in ("", "none"):
        return ()
    try:
        return tuple(positive_int(v) for v in value.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive widths such as 512 or 1024,512, got {value!r}"
        ) from None


def _loss_kwargs(value: str) -> dict[str, Any]:
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r} ({exc})") from None
    if not isinstance(obj, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r}")
    return obj


def register(subparsers: Any) -> None:
    """Add the ``train`` sub-command to the ``h2q`` parser."""
    from ..data import available_datasets
    from ..losses import LAMBDA0, LOSSES, STRATEGIES
    from ..models import BACKBONES
    from ..training.config import REFERENCE_METHODS

    p = subparsers.add_parser(
        "train",
        help="stage 1: train a deep hashing network and write its embeddings",
        description="Train a stage-1 embedding network (backbone + hash layer) with a deep "
        "hashing or metric-learning loss, early stopping on validation mAP, and write "
        "config.json, split.npz, checkpoints/, history.csv, embeddings.npz and summary.json to "
        "--out. --method adsh trains ADSH with its own schedule (outer iterations that learn "
        "the codes of the training fold, its database, then train the network on them; "
        "settings in --loss-kwargs, e.g. '{\"iterations\": 20}') and also writes codes.npy: "
        "those learned codes, in {-1, +1}, one row per training item.",
    )
    p.add_argument(
        "--dataset", required=True, help=f"data set name: {', '.join(available_datasets())}"
    )
    p.add_argument(
        "--method",
        required=True,
        type=_method,
        help=f"stage-1 loss: {', '.join(LOSSES)}, or pml:<ClassName>; or "
        f"{', '.join(REFERENCE_METHODS)} (its own schedule)",
    )
    p.add_argument("--bits", required=True, type=positive_int, help="code length (n_bits)")
    p.add_argument(
        "--strategy",
        default=LAMBDA0,
        choices=STRATEGIES,
        help="quantization strategy: lambda0 (H2Q stage 1, default), penalty (+lambda), hswd",
    )
    p.add_argument(
        "--lam", type=_non_negative_float, default=None, help="penalty weight (--strategy penalty)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--backbone",
        choices=BACKBONES,
        default=None,
        help="network under the hash layer (default: mlp for digits, small-cnn for 28x28 "
        "grey images, efficientnet-lite0 otherwise)",
    )
    p.add_argument(
        "--frozen",
        action="store_true",
        help="keep a pretrained backbone frozen: cache its features, train only an MLP head",
    )
    p.add_argument("--epochs", type=positive_int, default=100, help="maximum epochs (100)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (128)")
    p.add_argument("--patience", type=positive_int, default=20, help="early-stopping patience")
    p.add_argument("--eval-every", type=positive_int, default=1, help="validate every N epochs")
    p.add_argument(
        "--val-k",
        type=positive_int,
        default=None,
        help="cut-off of the validation mAP (default: the whole training fold)",
    )
    p.add_argument(
        "--lr-backbone", type=_positive_float, default=1e-5, help="pretrained backbone lr (1e-5)"
    )
    p.add_argument(
        "--lr-head",
        type=_positive_float,
        default=None,
        help="lr of the hash layer and new layers (default 1e-4 when fine-tuning a pretrained "
        "backbone, as in the paper; 1e-3 when everything trains from scratch or --frozen)",
    )
    p.add_argument("--weight-decay", type=_non_negative_float, default=5e-4, help="(5e-4)")
    p.add_argument("--device", choices=_DEVICES, default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and training")
    p.add_argument("--root", default=None, help="data folder (for data sets read from disk)")
    p.add_argument("--image-size", type=positive_int, default=None, help="backbone input side")
    p.add_argument("--weights", default=None, help="pretrained weights file for the backbone")
    p.add_argument(
        "--hidden", type=_hidden, default=(512,), help="MLP hidden widths, e.g. 512 or 1024,512"
    )
    add_precision_option(p, "float32", "float32")
    p.add_argument("--scheme", default=None, help="split scheme name (default: the data set's own)")
    p.add_argument(
        "--max-database", type=positive_int, default=None, help="cap on the database fold"
    )
    p.add_argument(
        "--loss-kwargs",
        type=_loss_kwargs,
        default=None,
        help="loss hyperparameters as JSON, e.g. '{\"pair_weight\": 0.75}'; for adsh its "
        "schedule: iterations, epochs_per_iteration, samples, lr, decay_at, gamma, balance",
    )
    _add_run_options(p)
    p.set_defaults(func=run)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """How the run runs: feature cache, threads, progress bars, resume or replace."""
    p.add_argument("--cache-dir", default=None, help="feature cache folder (--frozen)")
    add_threads_option(p, train_threads(), "half the cores: on a busy machine fewer run faster")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the run --out holds (the new run is built aside and swapped in when done)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``h2q train`` with parsed arguments; print a one-line summary."""
    from ..losses import PENALTY
    from ..training import run_training

    if args.lam is not None and args.strategy != PENALTY:
        raise ValueError(
            f"--lam is the weight of the quantization penalty and needs --strategy penalty "
            f"(got --strategy {args.strategy})."
        )
    _refuse_out_that_is_an_input(args)
    config = config_from_args(args)
    try:
        result = run_training(
            config,
            args.out,
            **run_options(args),
            resume=args.resume,
            overwrite=args.force,
        )
    except FloatingPointError as exc:
        print(f"h2q train: error: {exc}", file=sys.stderr)
        return 1
    s = result.summary
    best = "n/a" if s["best_val_map"] is None else f"{s['best_val_map']:.4f}"
    unit = "outer iteration" if "codes" in s["files"] else "epoch"
    wrote = ", ".join(
        str(result.out_dir / s["files"][k]) for k in ("embeddings", "codes") if k in s["files"]
    )
    print(
        f"best val mAP {best} at {unit} {s['best_epoch']} ({s['epochs_run']} {unit}s, "
        f"{s['seconds']['total']:.1f} s); wrote {wrote}"
    )
    return 0


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`h2q.training.TrainConfig` of parsed ``h2q train`` arguments (validated)."""
    from ..training import TrainConfig

    options = {name: _OPTION_OF.get(name, name) for name in TrainConfig.setting_names()}
    return TrainConfig.from_dict({name: getattr(args, option) for name, option in options.items()})


def _refuse_out_that_is_an_input(args: argparse.Namespace) -> None:
    """--out must not be (or lie inside, or contain) the data, weights or cache it reads."""
    from pathlib import Path

    out = Path(args.out).resolve()
    for option, value in (("--root", args.root), ("--weights", args.weights)):
        if value is None:
            continue
        path = Path(value).resolve()
        if out == path or path in out.parents or out in path.parents:
            raise ValueError(
                f"--out {args.out} overlaps {option} {value}, which this run reads; write the run "
                "to another folder."
            )
