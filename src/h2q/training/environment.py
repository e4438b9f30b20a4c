"""``RunEnvironment``: where runs find their inputs and how they execute.

What a run computes is its :class:`~h2q.training.TrainConfig` (or a grid's
:class:`~h2q.experiments.GridConfig`); where its data and feature cache live, which device
and how many threads it uses, and whether it shows progress bars change no number it
writes. Those settings travel together as one ``RunEnvironment``, built once by the entry
point (:func:`h2q.training.run_training`, :func:`h2q.experiments.run_grid`) and handed on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .._threads import check_n_threads

__all__ = ["RunEnvironment"]


@dataclass(frozen=True)
class RunEnvironment:
    """Where runs read their data and cache features, and how they execute.

    Parameters
    ----------
    root : path-like, optional
        Data folder for :func:`h2q.data.load_dataset`.
    device : str or torch.device, optional
        Stage-1 device: ``"auto"``/None (CUDA when available), ``"cpu"``, ``"cuda"``.
    cache_dir : path-like, optional
        Root of the frozen-backbone feature cache (default
        :func:`h2q.features.default_cache_dir`).
    threads : int, optional
        Thread limit of a grid's work (:func:`h2q.experiments.run_grid`; the previous
        setting is restored); None keeps the caller's. :func:`h2q.training.run_training`
        leaves threads to its caller.
    progress : bool, default True
        Progress bars.
    """

    root: str | os.PathLike | None = None
    device: Any = None
    cache_dir: str | os.PathLike | None = None
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        check_n_threads(self.threads, "threads")
