"""The one stage-1 training loop, for every method.

Everything that differs between methods lives in the objective
(:class:`h2q.losses.HashingObjective`: the similarity loss, the quantization strategy, HashNet's
continuation, learnable proxies); the loop only batches, steps, validates and checkpoints.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..codes import encode_sign
from ..evaluation.metrics import _trusted_map, _whole_ranking_map, variant_name
from ..search import iter_rank_order, rank_database
from .checkpoint import (
    BEST,
    LAST,
    cpu_state,
    generator_states,
    load_checkpoint,
    restore_generators,
    save_checkpoint,
)
from .config import PAPER_LR_HEAD, LoopSettings
from .data import ArrayData, as_array_data, embed

__all__ = [
    "EpochRecord",
    "TrainResult",
    "resolve_device",
    "train",
    "validation_map",
]

logger = logging.getLogger(__name__)


@dataclass
class EpochRecord:
    """One row of the training history."""

    epoch: int
    """1-based epoch number."""
    loss: float
    """Mean training objective over the epoch's samples."""
    val_map: float
    """Validation mAP after the epoch (NaN when not evaluated that epoch)."""
    time_s: float
    """Wall time of the epoch (training and validation)."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : list of EpochRecord
        Every epoch run (including those of an earlier, resumed run).
    best_epoch : int or None
        Epoch of the highest validation mAP (the last epoch when there is no validation data);
        None when no epoch ran.
    best_val_map : float
        Validation mAP at ``best_epoch`` (NaN without validation data).
    metric : str
        Name of the validation metric (see :func:`validation_map`).
    stopped_early : bool
        Whether early stopping ended the run.
    device : str
        Device the run used.
    """

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_map: float = math.nan
    metric: str = ""
    stopped_early: bool = False
    device: str = "cpu"
    best_outputs: dict[str, np.ndarray] | None = None
    """Outputs of the best epoch's model for the validation and training folds (``"val"``,
    ``"train"``), as its validation computed them (eval mode, batches of 256, the objective's
    output transform); None without validation data or when that epoch ran before a resume."""

    @property
    def epochs_run(self) -> int:
        """Number of epochs in the history."""
        return len(self.history)

    def history_rows(self) -> list[dict[str, Any]]:
        """The history as a list of dicts (one per epoch), e.g. for a CSV file."""
        return [asdict(r) for r in self.history]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:i]'.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available here.")
    return resolved


def validation_map(
    model: nn.Module,
    objective: nn.Module,
    query: ArrayData,
    database: ArrayData,
    *,
    k: int | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
    outputs: dict[str, np.ndarray] | None = None,
) -> float:
    """mAP@k of Hamming ranking with sign codes, ties broken by the continuous outputs.

    Codes are ``sign(output_transform(u))`` (bit = 1 where >= 0) of the model's outputs ``u``;
    the database is ranked for each query by Hamming distance, ties by the squared Euclidean
    distance of the L2-normalised ``output_transform(u)`` (then by id), as in the paper's
    protocol (:func:`h2q.search.rank_database`). The score is "mAP@k (top-k relevant
    denominator; empty queries score 0)" (:func:`h2q.evaluation.metrics.mean_average_precision`);
    ``k=None`` ranks the whole database. ``outputs``, when given, receives the transformed
    outputs of the queries and the database (``"query"``, ``"database"``).
    """
    transform = getattr(objective, "output_transform", None)
    q = embed(model, query, batch_size=batch_size, device=device, output_transform=transform)
    db = embed(model, database, batch_size=batch_size, device=device, output_transform=transform)
    if outputs is not None:
        outputs.update(query=q, database=db)
    k_eff = len(db) if k is None else min(k, len(db))
    features_ok = bool(np.all(np.linalg.norm(q, axis=1) > 0)) and bool(
        np.all(np.linalg.norm(db, axis=1) > 0)
    )
    # Note: an all-zero output row has no direction to compare; fall back to ids for ties.
    features = {"query_features": q, "db_features": db} if features_ok else {}
    codes = encode_sign(q), encode_sign(db)
    # The rankings are h2q.search's (distinct ids by construction): scored without checking
    # their ids again, the same number as mean_average_precision gives.
    if k_eff == len(db):  # the whole database, scored a chunk of queries at a time
        blocks = iter_rank_order(*codes, **features)
        return _whole_ranking_map(blocks, query.y, database.y)
    _, ranking = rank_database(*codes, k_eff, **features)
    return _trusted_map(ranking, query.y, database.y, k_eff)


def _param_groups(
    model: nn.Module, objective: nn.Module, lr_backbone: float, lr_head: float
) -> list[dict[str, Any]]:
    """Pretrained backbone weights at ``lr_backbone``; everything else at ``lr_head``."""
    backbone = getattr(model, "backbone", None)
    pretrained = bool(getattr(backbone, "pretrained", False)) and backbone is not None
    slow_ids = {id(p) for p in backbone.parameters()} if pretrained else set()
    slow, fast, seen = [], [], set()
    for p in list(model.parameters()) + list(objective.parameters()):
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (slow if id(p) in slow_ids else fast).append(p)
    groups = []
    if slow:
        groups.append({"params": slow, "lr": lr_backbone, "name": "backbone"})
    if fast:
        groups.append({"params": fast, "lr": lr_head, "name": "head"})
    if not groups:
        raise ValueError("the model and objective have no trainable parameters.")
    return groups


def make_adam(groups: list[dict[str, Any]], weight_decay: float) -> torch.optim.Adam:
    """torch's fused Adam (one pass over each parameter per step), or its multi-tensor Adam
    where the fused kernel does not apply (a dtype or device it lacks).

    Note: on the main job's heads the fused step alone takes about a quarter of the time of
    the multi-tensor one (which makes nine passes over memory); its float32 rounding differs
    in the last bit, so runs differ from multi-tensor runs by less than the seed spread
    (``benchmarks/adam_variants.py``).
    """
    try:
        return torch.optim.Adam(groups, weight_decay=weight_decay, fused=True)
    except RuntimeError:
        return torch.optim.Adam(groups, weight_decay=weight_decay, foreach=True)


def _batches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    parts = list(torch.split(perm, batch_size))
    # Note: a last batch of one sample has no pair; pair losses are undefined on it.
    if len(parts) > 1 and len(parts[-1]) < 2:
        parts[-2] = torch.cat([parts[-2], parts.pop()])
    return parts


def train(
    model: nn.Module,
    objective: nn.Module,
    train_data: ArrayData | tuple[Any, Any],
    val_data: ArrayData | tuple[Any, Any] | None,
    settings: LoopSettings,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    restore_best: bool = True,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train a stage-1 model with any objective; early stopping on validation mAP.

    Each epoch shuffles the training items (seeded), and for each batch calls
    ``objective.set_iteration(step)`` (HashNet's continuation; a no-op for other losses),
    computes ``objective(model(x), y)``, and takes an Adam step. After every ``eval_every``
    epochs (and the last) it computes the validation mAP of :func:`validation_map` with the
    validation fold as queries and the training fold as the database. The best epoch's
    weights are kept in memory (and in ``best.pt``); ``patience`` epochs without improvement
    stop the run.

    Parameters
    ----------
    model : nn.Module
        Maps a (transformed) batch to ``(batch, n_bits)``, e.g. :class:`h2q.models.HashingModel`.
    objective : nn.Module
        ``objective(u, y) -> scalar``, e.g. :class:`h2q.losses.HashingObjective`. Its own
        parameters (HyP² or metric-learning proxies) are optimised with the head.
    train_data, val_data : ArrayData or (X, y)
        Items and labels; ``ArrayData.transform`` turns raw items into the model's input.
        Without ``val_data`` (None) there is no early stopping and the last epoch is kept.
    settings : LoopSettings
        Epochs, learning rates, batch size, early stopping, seed.
    device : str or torch.device, optional
        ``None``/``"auto"``: CUDA when available, else CPU. Model and objective are moved there.
    progress : bool, default True
        Show a tqdm bar (loss and validation mAP).
    checkpoint_dir : path-like, optional
        Write ``last.pt`` after every ``eval_every`` epochs (and the last, and an early stop)
        and ``best.pt`` at every improvement there.
    resume : bool, default False
        Continue from ``checkpoint_dir/last.pt`` when it exists (model, optimiser, epoch,
        best score, history and RNG states are restored, so the result equals that of an
        uninterrupted run; the epochs after the last checkpoint are trained again). Model
        and objective must be built as for the first run.
    restore_best : bool, default True
        Load the best epoch's weights into ``model`` (and ``objective``) at the end.
    on_epoch_end : callable, optional
        Called with each :class:`EpochRecord` after its checkpoint, if any, is written.

    Returns
    -------
    TrainResult

    Raises
    ------
    FloatingPointError
        When the training loss becomes NaN or infinite (lower the learning rate).
    """
    if not isinstance(settings, LoopSettings):
        raise TypeError(
            f"settings must be an h2q.training.LoopSettings, got {type(settings).__name__}."
        )
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (where the last run saved last.pt).")
    train_data = as_array_data(train_data, "train_data")
    val = None if val_data is None else as_array_data(val_data, "val_data")
    if len(train_data) < 2:
        raise ValueError(f"train_data has {len(train_data)} item(s); training needs at least 2.")
    dev = resolve_device(device)
    model.to(dev)
    objective.to(dev)
    lr_head = PAPER_LR_HEAD if settings.lr_head is None else settings.lr_head
    optimizer = make_adam(
        _param_groups(model, objective, settings.lr_backbone, lr_head), settings.weight_decay
    )
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    rng_devices = (
        [dev.index if dev.index is not None else torch.cuda.current_device()]
        if (dev.type == "cuda")
        else []
    )
    metric = variant_name(settings.val_k) + ", val queries vs train database" if val else "none"
    with torch.random.fork_rng(devices=rng_devices):
        loop = _Loop(model, objective, optimizer, train_data, val, dev, metric, settings)
        loop.ckpt_dir, loop.on_epoch_end = ckpt_dir, on_epoch_end  # where and whom to tell
        if resume:
            loop.restore()
        loop.run(progress)
        if restore_best:
            loop.load_best()
        return loop.result


def _rng_state(dev: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if dev.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(dev)
    return state


def _set_rng_state(state: dict[str, Any], dev: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if dev.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], dev)


class _Loop:
    """The state of one training run: model, optimiser, RNGs, best epoch and history."""

    def __init__(
        self,
        model: nn.Module,
        objective: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_data: ArrayData,
        val: ArrayData | None,
        dev: torch.device,
        metric: str,
        settings: LoopSettings,
    ) -> None:
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.train_data, self.val, self.dev, self.s = train_data, val, dev, settings
        torch.manual_seed(settings.seed)
        self.shuffle = torch.Generator().manual_seed(settings.seed)
        self.result = TrainResult(metric=metric, device=str(dev))
        self.best_score = -math.inf
        self.best_state: dict[str, Any] | None = None
        self.epoch, self.step = 0, 0
        self.ckpt_dir: Path | None = None
        self.on_epoch_end: Callable[[EpochRecord], None] | None = None

    def restore(self) -> None:
        """Continue from ``last.pt`` when the checkpoint folder holds one."""
        ckpt_dir = self.ckpt_dir
        assert ckpt_dir is not None  # checked by train()
        if not (ckpt_dir / LAST).is_file():
            logger.info("no checkpoint in %s; starting a new run", ckpt_dir)
            return
        ck = load_checkpoint(ckpt_dir / LAST)
        self.model.load_state_dict(ck["model"])
        self.objective.load_state_dict(ck["objective"])
        self.optimizer.load_state_dict(ck["optimizer"])
        restore_generators(self.objective, ck["generators"])
        _set_rng_state(ck["rng"], self.dev)
        self.shuffle.set_state(ck["shuffle"])
        self.epoch, self.step = int(ck["epoch"]), int(ck["step"])
        result = self.result
        result.history = [EpochRecord(**r) for r in ck["history"]]
        result.best_epoch = ck["best_epoch"]
        result.stopped_early = bool(ck["stopped_early"])
        self.best_score = float(ck["best_score"])
        result.best_val_map = self.best_score if self.val is not None else math.nan
        if (ckpt_dir / BEST).is_file():
            best = load_checkpoint(ckpt_dir / BEST)
            self.best_state = {"model": best["model"], "objective": best["objective"]}
        logger.info("resuming from %s after epoch %d", ckpt_dir / LAST, self.epoch)

    def run(self, progress: bool) -> None:
        """Train until ``epochs`` or early stopping; one tqdm bar over the epochs."""
        s, result = self.s, self.result
        bar = tqdm(
            total=s.epochs, initial=self.epoch, disable=not progress, desc="train", unit="epoch"
        )
        try:
            while self.epoch < s.epochs and not result.stopped_early:
                record = self.one_epoch()
                bar.set_postfix(
                    loss=f"{record.loss:.4g}", val_map=f"{record.val_map:.4f}", refresh=False
                )
                bar.update(1)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(record)
            if result.stopped_early:
                logger.info(
                    "early stop after epoch %d: best val mAP %.4f at epoch %s",
                    result.epochs_run,
                    result.best_val_map,
                    result.best_epoch,
                )
        finally:
            bar.close()

    def one_epoch(self) -> EpochRecord:
        """Train one epoch, validate when due, update the best epoch, write checkpoints."""
        t0 = time.perf_counter()
        epoch_loss = self.train_epoch()
        self.epoch += 1
        epoch, s = self.epoch, self.s
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"the training loss became {epoch_loss} at epoch {epoch}; the run diverged. "
                "Lower the learning rates (lr_head, lr_backbone) or check the inputs."
            )
        score = math.nan
        outputs: dict[str, np.ndarray] = {}
        due = epoch % s.eval_every == 0 or epoch == s.epochs
        if self.val is not None and due:
            score = validation_map(
                self.model,
                self.objective,
                self.val,
                self.train_data,
                k=s.val_k,
                device=self.dev,
                outputs=outputs,
            )
        self.update_best(score, outputs)
        result = self.result
        if (
            self.val is not None
            and s.patience is not None
            and result.best_epoch is not None
            and epoch - result.best_epoch >= s.patience
            and epoch < s.epochs
        ):
            result.stopped_early = True
        record = EpochRecord(epoch, epoch_loss, score, time.perf_counter() - t0)
        result.history.append(record)
        if due or result.stopped_early:
            self.save_last()
        logger.info(
            "epoch %d/%d loss %.5g val mAP %.4f (%.1f s)",
            epoch,
            s.epochs,
            epoch_loss,
            score,
            record.time_s,
        )
        return record

    def train_epoch(self) -> float:
        """One pass over shuffled batches; the mean training loss."""
        self.model.train()
        self.objective.train()
        total = torch.zeros((), dtype=torch.float64, device=self.dev)
        perm = torch.randperm(len(self.train_data), generator=self.shuffle)
        set_iteration = getattr(self.objective, "set_iteration", None)
        for idx in _batches(perm, self.s.batch_size):
            if set_iteration is not None:
                set_iteration(self.step)
            x = self.train_data.inputs(idx, self.dev)
            y = self.train_data.labels(idx, self.dev)
            loss = self.objective(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            total += loss.detach().to(torch.float64) * len(idx)
        return float(total) / len(self.train_data)

    def update_best(self, score: float, outputs: dict[str, np.ndarray]) -> None:
        """Keep (and checkpoint) this epoch's weights, and the validation's ``outputs``, when
        its score is the best so far."""
        has_val = self.val is not None
        if has_val and (math.isnan(score) or score <= self.best_score):
            return
        if has_val:
            self.best_score = score
        self.result.best_epoch = self.epoch
        self.result.best_val_map = score
        self.result.best_outputs = (
            {"val": outputs["query"], "train": outputs["database"]} if outputs else None
        )
        self.best_state = {"model": cpu_state(self.model), "objective": cpu_state(self.objective)}
        if self.ckpt_dir is not None:
            save_checkpoint(
                self.ckpt_dir / BEST, {**self.best_state, "epoch": self.epoch, "score": score}
            )

    def save_last(self) -> None:
        """Write ``last.pt``: everything needed to continue exactly where this epoch ended."""
        if self.ckpt_dir is None:
            return
        result = self.result
        save_checkpoint(
            self.ckpt_dir / LAST,
            {
                "model": self.model.state_dict(),
                "objective": self.objective.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generators": generator_states(self.objective),
                "rng": _rng_state(self.dev),
                "shuffle": self.shuffle.get_state(),
                "epoch": self.epoch,
                "step": self.step,
                "history": result.history_rows(),
                "best_epoch": result.best_epoch,
                "best_score": self.best_score,
                "stopped_early": result.stopped_early,
            },
        )

    def load_best(self) -> None:
        """Load the best epoch's weights into the model and the objective."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state["model"])
            self.objective.load_state_dict(self.best_state["objective"])
