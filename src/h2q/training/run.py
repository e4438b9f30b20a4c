"""``run_training``: a :class:`~h2q.training.TrainConfig` in, a folder of stage-1 results out.

A run folder never mixes two runs: a fresh run needs a missing or empty folder; ``resume=True``
continues the run a folder holds (same :meth:`TrainConfig.identity`, else an error naming the
settings that differ); ``overwrite=True`` builds the new run in a hidden folder beside it and
swaps it in only when complete, so an interruption leaves the old run whole.

Output folder layout (every file written atomically)::

    <out_dir>/
        config.json       settings of the run, resolved (backbone, scheme, versions, ...)
        split.npz         the seeded train/query/val/database folds (h2q.data.Split.save);
                          reused on resume when made with the same scheme, seed and
                          max_database (else an error)
        checkpoints/      (deleted once the run is complete when keep_checkpoints=False)
            last.pt       state after the last validated epoch (for resume=True)
            best.pt       model and objective of the best validation epoch
        history.csv       epoch, loss, val_map (empty when not evaluated), time_s
        embeddings.npz    continuous outputs of the best model for the four folds with their
                          labels (h2q.embeddings layout: train/val/query/database, y_<fold>)
        summary.json      best epoch, best validation mAP and its definition, timings
        codes.npy         ADSH only: the learned codes B of the training fold (its database
                          while training), float32 in {-1, +1}, rows in the order of the
                          embeddings' train rows; every other item is hashed by sign(F(x))

What ``embeddings.npz`` holds: the continuous features the model was trained with,
``objective.output_transform(u)``: the raw hash-layer outputs ``u`` for the ``lambda0``
(H²Q stage 1) and ``hswd`` strategies, ``tanh(u)`` (HashNet: ``tanh(beta u)``) for the
``penalty`` strategy. In every case the codes are their signs, which equal ``sign(u)`` (bit =
1 where the value is >= 0), and H²Q's stage 2 rescales them to norm sqrt(n_bits) anyway.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from .._version import __version__
from ..codes import encode_sign
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
from ..evaluation.metrics import mean_average_precision
from ..losses import HashingObjective, make_loss
from ..models import (
    DEFAULT_IMAGE_SIZE,
    PRETRAINED_BACKBONES,
    HashingModel,
    MLPBackbone,
    build_backbone,
)
from ..models.precision import resolve_precision
from ..search import rank_database
from .adsh import ADSHSettings, train_adsh
from .checkpoint import BEST, LAST
from .config import PAPER_LR_HEAD, REFERENCE_METHODS, SCRATCH_LR_HEAD, TrainConfig
from .data import ArrayData, ImageFiles, embed
from .environment import RunEnvironment
from .frozen import FoldFeatures, fold_features
from .loop import EpochRecord, TrainResult, resolve_device, train

__all__ = ["RunResult", "TrainConfig", "default_backbone", "run_training"]

logger = logging.getLogger(__name__)

_FOLDS = ("train", "val", "query", "database")


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
        old_cap = split.meta.get("max_database", max_database)
        if old_cap != max_database:
            raise ValueError(
                f"{path} holds a split made with max_database={old_cap}, but this run asks for "
                f"max_database={max_database}. Use another out_dir, or delete split.npz to "
                "draw a new split there."
            )
        logger.info("reusing the split in %s", path)
        return split
    split = make_split(data, scheme, random_state=seed, max_database=max_database)
    split = dataclasses.replace(split, meta={**split.meta, "max_database": max_database})
    split.save(path)
    return split


def _load_size(backbone: str, image_size: int | None) -> int:
    """Side at which image files are decoded: the input side, or 256/224 of it for the
    torchvision backbones (they crop the centre 224 of 256, as in the paper)."""
    size = image_size or DEFAULT_IMAGE_SIZE.get(backbone, DEFAULT_IMAGE_SIZE["small-cnn"])
    if backbone in ("alexnet", "vgg16"):
        return round(256 * size / 224)
    return size


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


def _check_same_config(path: Path, config: TrainConfig) -> None:
    if not path.is_file():
        return
    old = TrainConfig.from_dict(json.loads(path.read_text()))
    diff = old.differences(config)
    if diff:
        raise ValueError(
            f"cannot resume: {path.parent} holds a run with other settings ({', '.join(diff)}). "
            "Resume with the same settings, or use another out_dir."
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
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    data: Dataset | None = None,
    root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    keep_checkpoints: bool = True,
) -> RunResult:
    """Stage 1 end to end: load data, split, build, train, write embeddings.

    Parameters
    ----------
    config : TrainConfig
        What to train (every option of the run; stored in ``config.json``).
    out_dir : path-like
        Output folder; see the module docstring for its layout. A fresh run needs a missing
        or empty folder (or ``overwrite=True``); ``resume=True`` needs the folder of the run.
    data : Dataset, optional
        The loaded data set, when ``config.dataset`` is not a name for
        :func:`h2q.data.load_dataset` (or is already loaded); its ``name`` must be
        ``config.dataset``.
    root : path-like, optional
        Data folder for :func:`h2q.data.load_dataset`.
    device : str, optional
        ``"auto"``/None (CUDA when available), ``"cpu"``, ``"cuda"``.
    cache_dir : path-like, optional
        Feature cache root for ``frozen=True`` (default :func:`h2q.features.default_cache_dir`).
    progress : bool, default True
        Progress bars.
    resume : bool, default False
        Continue an interrupted run in ``out_dir`` (same identity, see
        :meth:`TrainConfig.identity`; ``epochs`` may grow).
    overwrite : bool, default False
        Replace the run a non-empty ``out_dir`` holds. The new run is built in a folder beside
        it and swapped in when complete, so an interrupted run never leaves a folder that
        mixes two runs.
    keep_checkpoints : bool, default True
        Keep ``checkpoints/`` once the run is complete (they are only needed to resume an
        unfinished run, or to reload the model).

    Returns
    -------
    RunResult
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be an h2q.training.TrainConfig, got {type(config).__name__}.")
    if out_dir is None:
        raise ValueError("out_dir is required: the folder the run writes its results to.")
    out = Path(out_dir)
    if resume and overwrite:
        raise ValueError(
            "resume=True continues the run in out_dir and overwrite=True replaces it; pass one."
        )
    env = RunEnvironment(root=root, device=device, cache_dir=cache_dir, progress=progress)
    if resume:
        _check_resumable(out)
        return _run(config, out, data, env, True, keep_checkpoints)
    if not _is_empty(out):
        if not overwrite:
            raise ValueError(
                f"{out} already holds files; pass another output folder, resume=True "
                "(--resume) to continue the run there, or overwrite=True (--force) to replace it."
            )
        if not (out / "config.json").is_file():
            raise ValueError(
                f"{out} holds files but no run (no config.json); overwrite=True (--force) "
                "replaces only a run folder. Pass an empty or new output folder."
            )
        with _aside(out) as staging:
            result = _run(config, staging, data, env, False, keep_checkpoints)
        result.out_dir = out
        return result
    return _run(config, out, data, env, False, keep_checkpoints)


def _is_empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def _check_resumable(out: Path) -> None:
    if not out.is_dir():
        raise ValueError(
            f"cannot resume: {out} does not exist. Check the path, or start a new run there "
            "without resume (--resume)."
        )


@contextlib.contextmanager
def _aside(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out``; swapped in for ``out`` when the block completes."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a run folder; pass a folder path.")
    for stale in [*out.parent.glob(f".{out.name}.new-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted replacement
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    staging.chmod(out.stat().st_mode & 0o7777)  # mkdtemp makes it 0700; keep the old mode
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _run(
    config: TrainConfig,
    out: Path,
    data: Dataset | None,
    env: RunEnvironment,
    resume: bool,
    keep_checkpoints: bool,
) -> RunResult:
    t_start = time.perf_counter()
    dev = resolve_device(env.device)
    data = _load(config, data, env.root)
    if data.kind == "text":  # frozen sentence embeddings + MLP head (h2q.text)
        from ..text import training_features

        data, backbone = training_features(
            data, config.backbone, cache_dir=env.cache_dir, progress=env.progress
        )
        config = config.replace(backbone=backbone)
    config = _resolve(config, data, dev)
    scheme = _resolve_scheme(config.scheme, data)
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "device": str(dev),
        "versions": {"h2q": __version__, "torch": torch.__version__, "numpy": np.__version__},
    }
    if resume:
        _check_same_config(out / "config.json", config)
    split = _load_or_make_split(
        out / "split.npz", data, scheme, config.loop.seed, config.max_database
    )
    folds = {f: getattr(split, f) for f in _FOLDS}

    t_features = time.perf_counter()
    model, objective, items, cache_hit = _build(config, data, folds, dev, env, info)
    t_features = time.perf_counter() - t_features
    info.update(model=model.config(), split_sizes=split.sizes, n_classes=data.n_classes)
    record = {**config.to_dict(), **info}
    _write_json(out / "config.json", record)

    labels = {f: data.y[idx] for f, idx in folds.items()}
    fold_data = {f: ArrayData(items[f], labels[f], transform=model.preprocess) for f in _FOLDS}
    t_train = time.perf_counter()
    if objective is None:  # a reference method with its own schedule (ADSH)
        result, codes = _train_reference(config, model, fold_data, dev)
        output_transform = torch.tanh
        atomic_write(out / "codes.npy", lambda f: np.save(f, codes))
    else:
        result = train(
            model,
            objective,
            fold_data["train"],
            fold_data["val"],
            config.loop,
            device=dev,
            progress=env.progress,
            checkpoint_dir=out / "checkpoints",
            resume=resume,
        )
        output_transform = objective.output_transform
    t_train = time.perf_counter() - t_train
    _write_history(out / "history.csv", result)

    t_embed = time.perf_counter()
    # The validation and training folds' outputs of the best model, as its validation
    # computed them (the same batches and weights), are not computed again.
    arrays: dict[str, np.ndarray] = dict(result.best_outputs or {})
    for f in _FOLDS:
        if f not in arrays:
            arrays[f] = embed(model, fold_data[f], device=dev, output_transform=output_transform)
        arrays[f"y_{f}"] = labels[f]
    save_embeddings(out / "embeddings.npz", **arrays)
    t_embed = time.perf_counter() - t_embed
    seconds = {"setup_and_features": t_features, "train": t_train, "embed": t_embed}
    summary = _summary(result, cache_hit, seconds, t_start, keep_checkpoints)
    if objective is None:  # ADSH: no checkpoints (its run is not resumable), its codes
        files = summary["files"]
        for name in ("checkpoint_last", "checkpoint_best"):
            files.pop(name, None)
        files["codes"] = "codes.npy"
    _write_json(out / "summary.json", summary)
    if not keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    logger.info(
        "best val mAP %.4f at epoch %s; results in %s", result.best_val_map, result.best_epoch, out
    )
    return RunResult(out_dir=out, train=result, config=record, summary=summary)


def _load(config: TrainConfig, data: Dataset | None, root: str | os.PathLike | None) -> Dataset:
    if data is None:
        return load_dataset(config.dataset, root)
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be an h2q.data.Dataset, got {type(data).__name__}.")
    if data.name != config.dataset:
        raise ValueError(
            f"config.dataset is {config.dataset!r} but the data passed is {data.name!r}; "
            "build the config with dataset=data.name."
        )
    return data


def _resolve(config: TrainConfig, data: Dataset, dev: torch.device) -> TrainConfig:
    """The config with its defaults that depend on the data and the device filled in
    (backbone, lr_head, precision)."""
    backbone = (config.backbone or default_backbone(data)).lower()
    if config.frozen and backbone not in PRETRAINED_BACKBONES:
        raise ValueError(
            f"frozen=True keeps a pretrained backbone fixed, but {backbone!r} is trained "
            f"from scratch; use one of {', '.join(PRETRAINED_BACKBONES)}, or drop frozen."
        )
    lr_head = config.loop.lr_head
    if lr_head is None:
        fine_tuned = backbone in PRETRAINED_BACKBONES and not config.frozen
        lr_head = PAPER_LR_HEAD if fine_tuned else SCRATCH_LR_HEAD
    scheme = _resolve_scheme(config.scheme, data)
    precision = _resolve_precision(config, backbone, dev)
    return config.replace(
        dataset=data.name, backbone=backbone, lr_head=lr_head, scheme=scheme, precision=precision
    )


def _resolve_precision(config: TrainConfig, backbone: str, dev: torch.device) -> str:
    """The precision of the run's MLP layers ("auto" decided for ``dev``); float32 where the
    network has no MLP layers to compute in bfloat16."""
    has_mlp = backbone == "mlp" or config.frozen
    if config.precision == "bfloat16" and not has_mlp:
        raise ValueError(
            f"precision='bfloat16' applies to MLP layers (backbone mlp, or the head of "
            f"frozen=True), but this run trains {backbone} whole; use precision='float32' or "
            "'auto'."
        )
    return resolve_precision(config.precision, dev) if has_mlp else "float32"


def _build(
    config: TrainConfig,
    data: Dataset,
    folds: dict[str, np.ndarray],
    dev: torch.device,
    env: RunEnvironment,
    info: dict[str, Any],
) -> tuple[HashingModel, HashingObjective | None, dict[str, Any], bool | None]:
    """Model, objective and each fold's items (cached features when frozen), seeded."""
    cache_hit = None
    backbone = config.backbone
    assert backbone is not None  # resolved by _resolve
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.loop.seed)
        if config.frozen:
            frozen = _frozen_features(config, data, folds, dev, env)
            cache_hit, items = frozen.hit, frozen.items
            info["feature_backbone"] = frozen.backbone
            info["feature_cache"] = str(frozen.path)
            width = next(iter(items.values())).shape[1]
            net = MLPBackbone(width, hidden=config.hidden, precision=config.precision)
        else:
            net = _build_backbone(config, data)
            items = {f: _items(data, idx, backbone, config.image_size) for f, idx in folds.items()}
        model = HashingModel(net, config.n_bits)
        if config.method in REFERENCE_METHODS:
            return model, None, items, cache_hit
        loss = make_loss(config.method, config.n_bits, data.n_classes, **config.loss_kwargs)
        objective = HashingObjective(
            loss, config.strategy, config.lam, random_state=config.loop.seed
        )
    return model, objective, items, cache_hit


def _build_backbone(config: TrainConfig, data: Dataset) -> Any:
    backbone = config.backbone
    assert backbone is not None  # resolved by _resolve
    return build_backbone(
        backbone,
        in_features=_flat_size(data) if backbone == "mlp" else None,
        in_channels=_channels(data),
        image_size=config.image_size,
        hidden=config.hidden,
        weights_path=config.weights_path,
        precision=config.precision,
    )


def _frozen_features(
    config: TrainConfig,
    data: Dataset,
    folds: dict[str, np.ndarray],
    dev: torch.device,
    env: RunEnvironment,
) -> FoldFeatures:
    """The folds' features under the frozen backbone (kept in memory for the next run of
    this process with the same folds and seed, :mod:`h2q.training.frozen`)."""
    backbone, size = config.backbone, config.image_size
    assert backbone is not None  # resolved by _resolve
    build_key = (backbone, size, config.weights_path, config.loop.seed)
    return fold_features(
        lambda: _build_backbone(config, data),
        data,
        folds,
        lambda idx: _items(data, idx, backbone, size),
        data.y,
        key=build_key,
        cache_dir=env.cache_dir,
        device=dev,
        progress=env.progress,
    )


def _train_reference(
    config: TrainConfig, model: HashingModel, fold_data: dict[str, ArrayData], dev: torch.device
) -> tuple[TrainResult, np.ndarray]:
    """ADSH: train with its own schedule; validation mAP of sign(F(val)) against the learned
    codes of the training items (its asymmetric protocol), ties by id."""
    settings = ADSHSettings.from_options(
        config.loss_kwargs,
        batch_size=config.loop.batch_size,
        weight_decay=config.loop.weight_decay,
        seed=config.loop.seed,
    )
    t0 = time.perf_counter()
    codes, losses = train_adsh(model, fold_data["train"], settings, device=dev)
    codes_np = codes.cpu().numpy()
    val = embed(model, fold_data["val"], device=dev, output_transform=torch.tanh)
    n_db = len(codes_np)
    _, ranking = rank_database(encode_sign(val), encode_sign(codes_np), n_db)
    score = mean_average_precision(ranking, fold_data["val"].y, fold_data["train"].y, n_db)
    elapsed = (time.perf_counter() - t0) / len(losses)
    history = [EpochRecord(i + 1, loss, math.nan, elapsed) for i, loss in enumerate(losses)]
    history[-1].val_map = score
    result = TrainResult(
        history=history,
        best_epoch=len(losses),
        best_val_map=score,
        metric="mAP@all, val queries (sign(F(x))) vs learned train codes",
        device=str(dev),
    )
    return result, codes_np


def _summary(
    result: TrainResult,
    cache_hit: bool | None,
    seconds: dict[str, float],
    t_start: float,
    keep_checkpoints: bool,
) -> dict[str, Any]:
    train_times = [r.time_s for r in result.history]
    files = {"embeddings": "embeddings.npz", "history": "history.csv", "split": "split.npz"}
    if keep_checkpoints:
        files.update(checkpoint_last=f"checkpoints/{LAST}", checkpoint_best=f"checkpoints/{BEST}")
    return {
        "best_epoch": result.best_epoch,
        "best_val_map": None if math.isnan(result.best_val_map) else result.best_val_map,
        "val_metric": result.metric,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "device": result.device,
        "feature_cache_hit": cache_hit,
        "seconds": {
            "setup_and_features": seconds["setup_and_features"],
            "train": seconds["train"],
            "per_epoch_median": float(np.median(train_times)) if train_times else None,
            "embed": seconds["embed"],
            "total": time.perf_counter() - t_start,
        },
        "files": files,
    }


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
