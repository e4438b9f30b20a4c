"""ADSH's own training schedule: outer iterations over sampled query points (reference method).

ADSH (:mod:`h2q.losses.adsh`) does not fit the common loop: it learns the codes of its
database directly. Here its database is the training fold (the protocol keeps the labels of
the retrieval database out of training), so after training the codes ``B`` of the training
items are known and every other item (queries, validation, retrieval database) is hashed by
``sign(F(x))``. Each outer iteration samples query points from the training fold, trains the
network on them for a few epochs with ``B`` fixed (SGD with step decay), then updates ``B``
bit by bit with the network fixed. Two choices keep it from failing on a head trained from
scratch: the pair labels are balanced (:class:`ADSHSettings` ``balance``), and the loss is
divided by n * batch size, so that its gradient does not grow with the database and saturate
tanh at the first steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from .._validation import check_positive_int
from ..losses.adsh import ADSH_GAMMA, adsh_loss, adsh_similarity, update_codes
from .data import ArrayData

__all__ = ["ADSHSettings", "train_adsh"]


@dataclass(frozen=True)
class ADSHSettings:
    """ADSH's schedule.

    The authors' schedule (50 outer iterations, lr 1e-5 on the summed loss, lr / 10 at
    iterations 10, 20, 30, 40) was set for fine-tuning AlexNet. The defaults here were chosen
    on the validation split of the default data (benchmarks/adsh_lr_sweep.py, kept result in
    benchmarks/results/adsh_lr_sweep.md): lr 1e-3 on the loss divided by n * batch size, and
    20 outer iterations with one decay at 10 (30 scored 0.0015 higher for 1.5x the time).

    Parameters
    ----------
    iterations : int, default 20
        Outer iterations (sample query points, train the network, update the codes).
    epochs_per_iteration : int, default 3
    samples : int, default 5000
        Query points sampled per iteration (capped at the training fold's size).
    lr : float, default 1e-3
        SGD learning rate for the loss divided by (n_train * batch size), divided by 10 at
        each of ``decay_at``.
    decay_at : tuple of int, default (10,)
    weight_decay : float, default 5e-4
    batch_size : int, default 64
    gamma : float, default 200
    balance : bool, default True
        Dissimilar pairs labelled -r, r = similar / dissimilar pairs of the sampled queries
        (:func:`h2q.losses.adsh.adsh_similarity`), as the authors' implementation does; with
        -1 the codes collapse (most bits equal for every item).
    seed : int, default 0
    """

    iterations: int = 20
    epochs_per_iteration: int = 3
    samples: int = 5000
    lr: float = 1e-3
    decay_at: tuple[int, ...] = (10,)
    weight_decay: float = 5e-4
    batch_size: int = 64
    gamma: float = ADSH_GAMMA
    balance: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "decay_at", tuple(self.decay_at))
        for name in ("iterations", "epochs_per_iteration", "samples", "batch_size"):
            check_positive_int(getattr(self, name), name)
        for name in ("lr", "gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}.")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}.")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **defaults: Any) -> ADSHSettings:
        """Settings from a run's ``loss_kwargs`` (unknown keys named in a ValueError)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"unknown ADSH settings {unknown}; choose among {sorted(names)}.")
        return cls(**{**defaults, **options})


def _batches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    parts = list(torch.split(perm, batch_size))
    # Note: a batch of one breaks batch normalisation in training mode; merge it.
    if len(parts) > 1 and len(parts[-1]) < 2:
        parts[-2] = torch.cat([parts[-2], parts.pop()])
    return parts


def train_adsh(
    model: nn.Module,
    train_data: ArrayData,
    settings: ADSHSettings,
    *,
    device: torch.device,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Train ADSH's query network and learn the codes of the training items.

    Parameters
    ----------
    model : nn.Module
        Maps a (transformed) batch to ``(batch, n_bits)``; its outputs pass through tanh.
    train_data : ArrayData
        The training fold (ADSH's database and the pool of sampled query points).
    settings : ADSHSettings
    device : torch.device
    callback : callable, optional
        Called as ``callback(iteration, codes)`` after each outer iteration (1-based), with
        the codes of that iteration; for monitoring (the model may be evaluated there).

    Returns
    -------
    codes : Tensor of float32, shape (n_train, n_bits)
        The learned codes ``B`` of the training items, in {-1, +1}.
    losses : list of float
        Mean objective per sampled query point after each outer iteration's last epoch.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite (lower ``lr``).
    """
    n = len(train_data)
    if n < 2:
        raise ValueError(f"train_data has {n} item(s); ADSH needs at least 2.")
    all_labels = train_data.labels(torch.arange(n), device)
    model.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        gen = torch.Generator().manual_seed(settings.seed)
        with torch.no_grad():
            model.eval()
            n_bits = model(train_data.inputs(torch.arange(2), device)).shape[1]
        codes = torch.where(torch.rand(n, n_bits, generator=gen) < 0.5, -1.0, 1.0).to(device)
        opt = torch.optim.SGD(
            model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(settings.decay_at), gamma=0.1)
        losses = []
        for iteration in range(1, settings.iterations + 1):
            idx = torch.randperm(n, generator=gen)[: min(settings.samples, n)]
            sim = adsh_similarity(all_labels[idx.to(device)], all_labels, balance=settings.balance)
            u_all = torch.zeros(len(idx), n_bits, device=device)
            model.train()
            for _epoch in range(settings.epochs_per_iteration):
                total = 0.0
                for b in _batches(torch.randperm(len(idx), generator=gen), settings.batch_size):
                    u = torch.tanh(model(train_data.inputs(idx[b], device)))
                    loss = adsh_loss(u, codes, sim[b], idx[b].to(device), settings.gamma)
                    value = float(loss.detach())
                    # Note: the objective is a sum over n database items per query point; its
                    # gradient grows with n and saturates tanh at once unless divided by n
                    # and by the batch size (as the authors' implementation does).
                    loss = loss / (n * len(b))
                    if not math.isfinite(value):
                        raise FloatingPointError(
                            f"the ADSH loss became {value}; lower the learning rate (lr)."
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    u_all[b] = u.detach()
                    total += value
            codes = update_codes(codes, u_all, sim, idx.to(device), settings.gamma)
            sched.step()
            losses.append(total / len(idx))
            if callback is not None:
                callback(iteration, codes)
    return codes.float(), losses
