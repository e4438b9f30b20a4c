"""The features of a run's folds under a frozen backbone, kept in memory for the next run.

A grid trains many stage-1 runs of one seed in the same worker process: the same folds, the
same frozen backbone, so the same features. :func:`fold_features` reads them from the feature
cache (or extracts them) once and keeps them, with the state of torch's generator after the
backbone was built, so that a later run of the same seed skips building the backbone, reading
the cache and gathering the folds' rows, and still draws the same head initialisation (its
results are those of a run that built everything again, bit for bit).

What is kept is bounded (:data:`MEMORY_BUDGET` bytes of features, least recently used first
out), so a large data set is never held twice.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..features import cached_features

__all__ = ["MEMORY_BUDGET", "FoldFeatures", "clear_memo", "fold_features"]

#: Bytes of fold features kept in memory across runs (a main-job seed holds about 87 MB).
MEMORY_BUDGET = 512 * 2**20


@dataclass(frozen=True)
class FoldFeatures:
    """Features of each fold's items under a frozen backbone."""

    items: dict[str, np.ndarray]
    """Feature rows of each fold, in the fold's order."""
    backbone: dict[str, Any]
    """The frozen backbone's ``config()``."""
    path: Path
    """Its feature cache entry."""
    hit: bool
    """Whether the features came from the cache (or memory) rather than an extraction."""


@dataclass(frozen=True)
class _Entry:
    source: object  # the data set the folds index (kept so that its id is not reused)
    rng_state: torch.Tensor
    features: FoldFeatures
    nbytes: int


_MEMO: OrderedDict[Hashable, _Entry] = OrderedDict()


def clear_memo() -> None:
    """Forget every kept set of features."""
    _MEMO.clear()


def fold_features(
    build: Callable[[], nn.Module],
    source: object,
    folds: Mapping[str, np.ndarray],
    items: Callable[[np.ndarray], Any],
    labels: np.ndarray,
    *,
    key: Hashable,
    cache_dir: str | Path | None,
    device: str | torch.device | None,
    progress: bool,
) -> FoldFeatures:
    """Features of the items of each fold, with torch's generator left as ``build`` leaves it.

    Call it where the backbone would be built (under a seeded generator). ``build()`` makes the
    frozen backbone; ``items(idx)`` and ``labels[idx]`` are the data set's items and labels at
    the sorted unique indices ``idx`` of the folds; ``source`` is the data set itself and
    ``key`` describes what ``build`` builds (its settings and the seed). When this process has
    already computed the same folds of the same ``source`` with the same ``key``, the kept
    features are returned and the generator is set to the state ``build`` left it in.
    """
    memo_key = (key, id(source), _digest(folds), str(cache_dir), str(device))
    entry = _MEMO.get(memo_key)
    if entry is not None and entry.source is source:
        _MEMO.move_to_end(memo_key)
        torch.set_rng_state(entry.rng_state)
        return replace(entry.features, items=dict(entry.features.items), hit=True)
    net = build()
    rng_state = torch.get_rng_state()
    all_idx = np.unique(np.concatenate(list(folds.values())))
    cached = cached_features(
        net, items(all_idx), labels[all_idx], cache_dir=cache_dir, device=device, progress=progress
    )
    rows = {f: cached.features[np.searchsorted(all_idx, idx)] for f, idx in folds.items()}
    features = FoldFeatures(rows, net.config(), cached.path, cached.hit)
    _keep(memo_key, _Entry(source, rng_state, features, sum(a.nbytes for a in rows.values())))
    return features


def _digest(folds: Mapping[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, idx in folds.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
    return h.hexdigest()


def _keep(key: Hashable, entry: _Entry) -> None:
    if entry.nbytes > MEMORY_BUDGET:
        return
    _MEMO[key] = entry
    while sum(e.nbytes for e in _MEMO.values()) > MEMORY_BUDGET:
        _MEMO.popitem(last=False)
