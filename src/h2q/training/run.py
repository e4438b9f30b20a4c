"""``run_training``: data set name in, a folder of stage-1 results out.

Output folder layout (every file written atomically)::

    <out_dir>/
        config.json       settings of the run, resolved (backbone, scheme, versions, ...)
        split.npz         the seeded train/query/val/database folds (h2q.data.Split.save);
                          reused when the folder already holds one for the same settings
        checkpoints/
            last.pt       state after the last finished epoch (for resume=True)
            best.pt       model and objective of the best validation epoch
        history.csv       epoch, loss, val_map (empty when not evaluated), time_s
        embeddings.npz    continuous outputs of the best model for the four folds with their
                          labels (h2q.embeddings layout: train/val/query/database, y_<fold>)
        summary.json      best epoch, best validation mAP and its definition, timings

What ``embeddings.npz`` holds: the continuous features the model was trained with,
``objective.output_transform(u)``: the raw hash-layer outputs ``u`` for the ``lambda0``
(H²Q stage 1) and ``hswd`` strategies, ``tanh(u)`` (HashNet: ``tanh(beta u)``) for the
``penalty`` strategy. In every case the codes are their signs, which equal ``sign(u)`` (bit =
1 where the value is >= 0), and H²Q's stage 2 rescales them to norm sqrt(n_bits) anyway.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from .._version import __version__
from ..data import Dataset, Split, load_dataset, make_split
from ..data.split import (
    SCHEMES,
    ListScheme,
    PerClassScheme,
    StratifiedScheme,
    TotalScheme,
    get_scheme,
)
from ..embeddings import save_embeddings
from ..features import cached_features
from ..losses import HashingObjective, make_loss
from ..models import PRETRAINED_BACKBONES, HashingModel, MLPBackbone, build_backbone
from .checkpoint import BEST, LAST
from .data import ArrayData, ImageFiles, embed
from .loop import TrainResult, resolve_device, train

__all__ = ["RunResult", "default_backbone", "run_training"]

logger = logging.getLogger(__name__)

STRATEGIES = ("lambda0", "penalty", "hswd")
_FOLDS = ("train", "val", "query", "database")
#: Settings that must not change when a run is resumed.
_IDENTITY_KEYS = (
    "dataset",
    "method",
    "n_bits",
    "strategy",
    "lam",
    "backbone",
    "frozen",
    "image_size",
    "hidden",
    "scheme",
    "max_database",
    "seed",
    "batch_size",
    "lr_backbone",
    "lr_head",
    "weight_decay",
    "loss_kwargs",
    "weights_path",
)


@dataclass
class RunResult:
    """What :func:`run_training` returns."""

    out_dir: Path
    """The output folder."""
    train: TrainResult
    """The training loop's result (history, best epoch, best validation mAP)."""
    config: dict[str, Any]
    """The resolved settings (the content of ``config.json``)."""
    summary: dict[str, Any]
    """The content of ``summary.json``."""


def default_backbone(data: Dataset) -> str:
    """``"mlp"`` for digits, ``"small-cnn"`` for other small grey images, else EfficientNet."""
    if data.kind == "image" and isinstance(data.X, np.ndarray):
        if data.X.ndim == 3 and data.X.shape[1] * data.X.shape[2] <= 16 * 16:
            return "mlp"
        if data.X.ndim == 3 and max(data.X.shape[1:]) <= 32:
            return "small-cnn"
    return "efficientnet-lite0"


def _resolve_scheme(scheme: Any, data: Dataset) -> Any:
    if scheme is None:
        try:
            return get_scheme(data.name)
        except ValueError:
            raise ValueError(
                f"no default split scheme for data set {data.name!r}; pass scheme= a named "
                f"scheme ({', '.join(sorted(SCHEMES))}) or h2q.data.PerClassScheme(train, "
                "query, val) / TotalScheme(train, query, val)."
            ) from None
    if isinstance(scheme, str):
        return get_scheme(scheme)
    if isinstance(scheme, (PerClassScheme, TotalScheme, ListScheme, StratifiedScheme)):
        return scheme
    raise TypeError(f"scheme must be a name or a scheme object, got {scheme!r}.")


def _scheme_description(scheme: Any) -> dict[str, Any]:
    return {"type": type(scheme).__name__, **asdict(scheme)}


def _load_or_make_split(
    path: Path, data: Dataset, scheme: Any, seed: int, max_database: int | None
) -> Split:
    if path.is_file():
        split = Split.load(path, data)
        same = _scheme_description(split.scheme) == _scheme_description(scheme) and (
            isinstance(scheme, ListScheme) or split.random_state == seed
        )
        if not same:
            raise ValueError(
                f"{path} holds a split made with scheme {_scheme_description(split.scheme)} and "
                f"seed {split.random_state}, but this run asks for "
                f"{_scheme_description(scheme)} and seed {seed}. Use another out_dir, or delete "
                "split.npz to draw a new split there."
            )
        logger.info("reusing the split in %s", path)
        return split
    split = make_split(data, scheme, random_state=seed, max_database=max_database)
    split.save(path)
    return split


def _load_size(backbone: str, image_size: int | None) -> int:
    if backbone in ("alexnet", "vgg16"):
        return round(256 * (image_size or 224) / 224)
    if backbone == "efficientnet-lite0":
        return image_size or 64
    return image_size or 28


def _items(data: Dataset, idx: np.ndarray, backbone: str, image_size: int | None) -> Any:
    if data.kind == "image":
        return np.asarray(data.X)[idx]
    if data.kind == "image_paths":
        return ImageFiles(
            [data.X[i] for i in idx], _load_size(backbone, image_size), loader=data.loader
        )
    raise ValueError(
        f"{data.name} holds {data.kind} items; h2q train handles image data sets (for texts, "
        "embed them first and train on the vectors with h2q.training.train)."
    )


def _check_same_config(path: Path, config: dict[str, Any]) -> None:
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    diff = [k for k in _IDENTITY_KEYS if old.get(k) != config.get(k)]
    if diff:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in diff)
        raise ValueError(
            f"cannot resume: {path.parent} holds a run with other settings ({details}). Resume "
            "with the same settings, or use another out_dir."
        )


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def _write_history(path: Path, result: TrainResult) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "loss", "val_map", "time_s"])
    for r in result.history:
        val = "" if math.isnan(r.val_map) else f"{r.val_map:.6f}"
        writer.writerow([r.epoch, f"{r.loss:.6g}", val, f"{r.time_s:.3f}"])
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def run_training(
    dataset: str | Dataset,
    method: str,
    n_bits: int,
    strategy: str = "lambda0",
    lam: float | None = None,
    backbone: str | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    frozen: bool = False,
    root: str | os.PathLike | None = None,
    epochs: int = 100,
    batch_size: int = 128,
    lr_backbone: float = 1e-5,
    lr_head: float | None = None,
    weight_decay: float = 5e-4,
    patience: int | None = 20,
    eval_every: int = 1,
    val_k: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    image_size: int | None = None,
    weights_path: str | os.PathLike | None = None,
    hidden: Sequence[int] = (512,),
    scheme: Any = None,
    max_database: int | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    resume: bool = False,
) -> RunResult:
    """Stage 1 end to end: load data, split, build, train, write embeddings.

    Parameters
    ----------
    dataset : str or Dataset
        A name for :func:`h2q.data.load_dataset` (``"digits"``, ``"fashion-mnist"``,
        ``"mnist"``, ``"cifar10"``, ...) or a loaded :class:`h2q.data.Dataset` of images. Text
        sets (``"wordnet"``) train an MLP head on frozen sentence embeddings
        (:func:`h2q.text.training_features`).
    method : str
        A stage-1 loss: a key of :data:`h2q.losses.LOSSES` or ``"pml:<ClassName>"``.
    n_bits : int
        Code length (width of the hash layer).
    strategy : {"lambda0", "penalty", "hswd"}, default "lambda0"
        Quantization strategy of :class:`h2q.losses.HashingObjective` (lambda0 = H²Q stage 1).
    lam : float, optional
        Penalty weight, for ``strategy="penalty"`` only.
    backbone : str, optional
        ``"small-cnn"``, ``"mlp"``, ``"efficientnet-lite0"``, ``"alexnet"`` or ``"vgg16"``;
        default from :func:`default_backbone` (``mlp`` on digits' pixels, ``small-cnn`` on
        28x28 grey images, ``efficientnet-lite0`` otherwise).
    out_dir : path-like
        Output folder (created); see the module docstring for its layout. Required.
    frozen : bool, default False
        Keep a pretrained backbone frozen: its features are extracted once and cached
        (:func:`h2q.features.cached_features`), and only an MLP head (``hidden``) and the hash
        layer are trained on them. The practical CPU path for EfficientNet-Lite0.
    root : path-like, optional
        Data folder for :func:`h2q.data.load_dataset`.
    epochs, batch_size, lr_backbone, weight_decay, patience, eval_every, val_k
        Passed to :func:`h2q.training.train` (defaults: the paper's settings, 100 epochs with
        patience 20, Adam with lr 1e-5 for a pretrained backbone, weight decay 5e-4).
    lr_head : float, optional
        Learning rate of the hash layer and every layer trained from scratch. Default: 1e-4
        (the paper's) when a pretrained backbone is fine-tuned with it; 1e-3 when every
        trained weight starts from scratch (``small-cnn``, ``mlp``, or the head of a
        ``frozen`` backbone), where 1e-4 converges several times slower (digits, DPSH, 32
        bits: val mAP 0.95 after 100 epochs at 1e-4, 0.98 after 67 at 1e-3).
    device : str, optional
        ``"auto"``/None (CUDA when available), ``"cpu"``, ``"cuda"``.
    seed : int, default 0
        Seeds the split, the initial weights and the training.
    image_size : int, optional
        Backbone input side (default 28 small CNN, 64 EfficientNet-Lite0, 224 AlexNet/VGG16).
    weights_path : path-like, optional
        Pretrained weights for the pretrained backbones.
    hidden : sequence of int, default (512,)
        Hidden widths of the MLP (the ``mlp`` backbone, and the head of a frozen backbone).
    scheme : str or scheme object, optional
        Split scheme (default: the one named after the data set, see :data:`h2q.data.SCHEMES`).
    max_database : int, optional
        Cap on the database fold (a random subset), to keep a CPU run short.
    loss_kwargs : dict, optional
        Hyperparameters of the loss (e.g. ``{"pair_weight": 0.75}`` for HyP²).
    cache_dir : path-like, optional
        Feature cache root for ``frozen=True`` (default :func:`h2q.features.default_cache_dir`).
    progress : bool, default True
        Progress bars.
    resume : bool, default False
        Continue an interrupted run in ``out_dir`` (same settings; ``epochs`` may grow).

    Returns
    -------
    RunResult
    """
    t_start = time.perf_counter()
    if out_dir is None:
        raise ValueError("out_dir is required: the folder the run writes its results to.")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
    if isinstance(n_bits, bool) or not isinstance(n_bits, int) or n_bits < 1:
        raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}.")
    dev = resolve_device(device)
    data = load_dataset(dataset, root) if isinstance(dataset, str) else dataset
    if isinstance(data, Dataset) and data.kind == "text":  # frozen sentence embeddings + MLP
        from ..text import training_features

        data, backbone = training_features(data, backbone, cache_dir=cache_dir, progress=progress)
    if not isinstance(data, Dataset):
        raise TypeError(
            f"dataset must be a name or an h2q.data.Dataset, got {type(data).__name__}."
        )
    backbone_name = (backbone or default_backbone(data)).lower()
    if frozen and backbone_name not in PRETRAINED_BACKBONES:
        raise ValueError(
            f"frozen=True keeps a pretrained backbone fixed, but {backbone_name!r} is trained "
            f"from scratch; use one of {', '.join(PRETRAINED_BACKBONES)}, or drop frozen."
        )
    if lr_head is None:
        fine_tuned = backbone_name in PRETRAINED_BACKBONES and not frozen
        lr_head = 1e-4 if fine_tuned else 1e-3
    scheme_obj = _resolve_scheme(scheme, data)
    loss_kwargs = dict(loss_kwargs or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    config: dict[str, Any] = {
        "dataset": data.name,
        "method": method,
        "n_bits": n_bits,
        "strategy": strategy,
        "lam": lam,
        "backbone": backbone_name,
        "frozen": frozen,
        "image_size": image_size,
        "hidden": list(hidden),
        "scheme": _scheme_description(scheme_obj),
        "max_database": max_database,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr_backbone": lr_backbone,
        "lr_head": lr_head,
        "weight_decay": weight_decay,
        "patience": patience,
        "eval_every": eval_every,
        "val_k": val_k,
        "loss_kwargs": loss_kwargs,
        "weights_path": None if weights_path is None else str(weights_path),
        "device": str(dev),
        "versions": {"h2q": __version__, "torch": torch.__version__, "numpy": np.__version__},
    }
    if resume:
        _check_same_config(out / "config.json", config)
    elif ckpt_dir.is_dir():
        shutil.rmtree(ckpt_dir)  # a fresh run must not resume from an older one's files

    split = _load_or_make_split(out / "split.npz", data, scheme_obj, seed, max_database)
    folds = {f: getattr(split, f) for f in _FOLDS}
    labels = {f: data.y[idx] for f, idx in folds.items()}

    t_features = time.perf_counter()
    cache_hit = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_backbone(
            backbone_name,
            in_features=_flat_size(data) if backbone_name == "mlp" else None,
            in_channels=_channels(data),
            image_size=image_size,
            hidden=hidden,
            weights_path=weights_path,
        )
        if frozen:
            all_idx = np.unique(np.concatenate(list(folds.values())))
            cached = cached_features(
                net,
                _items(data, all_idx, backbone_name, image_size),
                data.y[all_idx],
                cache_dir=cache_dir,
                device=dev,
                progress=progress,
            )
            cache_hit = cached.hit
            items = {f: cached.features[np.searchsorted(all_idx, idx)] for f, idx in folds.items()}
            config["feature_backbone"] = net.config()
            config["feature_cache"] = str(cached.path)
            net = MLPBackbone(cached.features.shape[1], hidden=hidden)
        else:
            items = {f: _items(data, idx, backbone_name, image_size) for f, idx in folds.items()}
        model = HashingModel(net, n_bits)
        loss = make_loss(method, n_bits, data.n_classes, **loss_kwargs)
        objective = HashingObjective(loss, strategy, lam, random_state=seed)
    t_features = time.perf_counter() - t_features
    config["model"] = model.config()
    config["split_sizes"] = split.sizes
    config["n_classes"] = data.n_classes
    _write_json(out / "config.json", config)

    fold_data = {f: ArrayData(items[f], labels[f], transform=model.preprocess) for f in _FOLDS}
    t_train = time.perf_counter()
    result = train(
        model,
        objective,
        fold_data["train"],
        fold_data["val"],
        epochs=epochs,
        lr_backbone=lr_backbone,
        lr_head=lr_head,
        weight_decay=weight_decay,
        batch_size=batch_size,
        patience=patience,
        eval_every=eval_every,
        val_k=val_k,
        device=dev,
        seed=seed,
        progress=progress,
        checkpoint_dir=ckpt_dir,
        resume=resume,
    )
    t_train = time.perf_counter() - t_train
    _write_history(out / "history.csv", result)

    t_embed = time.perf_counter()
    arrays: dict[str, np.ndarray] = {}
    for f in _FOLDS:
        arrays[f] = embed(
            model, fold_data[f], device=dev, output_transform=objective.output_transform
        )
        arrays[f"y_{f}"] = labels[f]
    save_embeddings(out / "embeddings.npz", **arrays)
    t_embed = time.perf_counter() - t_embed

    train_times = [r.time_s for r in result.history]
    summary = {
        "best_epoch": result.best_epoch,
        "best_val_map": None if math.isnan(result.best_val_map) else result.best_val_map,
        "val_metric": result.metric,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "device": result.device,
        "feature_cache_hit": cache_hit,
        "seconds": {
            "setup_and_features": t_features,
            "train": t_train,
            "per_epoch_median": float(np.median(train_times)) if train_times else None,
            "embed": t_embed,
            "total": time.perf_counter() - t_start,
        },
        "files": {
            "embeddings": "embeddings.npz",
            "history": "history.csv",
            "split": "split.npz",
            "checkpoint_last": f"checkpoints/{LAST}",
            "checkpoint_best": f"checkpoints/{BEST}",
        },
    }
    _write_json(out / "summary.json", summary)
    logger.info(
        "best val mAP %.4f at epoch %s; results in %s", result.best_val_map, result.best_epoch, out
    )
    return RunResult(out_dir=out, train=result, config=config, summary=summary)


def _flat_size(data: Dataset) -> int:
    if data.kind != "image" or not isinstance(data.X, np.ndarray):
        raise ValueError(
            f"the mlp backbone reads in-memory pixels; {data.name} holds {data.kind} items. Use "
            "a convolutional backbone, or frozen=True with a pretrained one."
        )
    return int(np.prod(data.X.shape[1:]))


def _channels(data: Dataset) -> int:
    if data.kind == "image" and isinstance(data.X, np.ndarray) and data.X.ndim == 3:
        return 1
    return 3
