"""Stage-1 training: the one training loop, its data and checkpoints, and ``run_training``.

- :func:`train`: method-agnostic loop (Adam with backbone/head learning rates, early stopping
  on validation mAP, resumable checkpoints, HashNet's iteration hook, tqdm progress);
- :class:`ArrayData`, :class:`ImageFiles`, :func:`embed`: what the loop iterates over and how
  a model turns items into embeddings;
- :class:`TrainConfig`: every option of a stage-1 run, declared once, with the loop's
  :class:`LoopSettings` nested;
- :func:`run_training`: a config -> split -> model + loss -> training -> an output folder
  with ``embeddings.npz`` for stage 2 (the ``h2q train`` command).
"""

from .config import MAX_BITS, LoopSettings, TrainConfig
from .data import ArrayData, ImageFiles, embed
from .loop import EpochRecord, TrainResult, resolve_device, train, validation_map
from .run import RunResult, default_backbone, run_training

__all__ = [
    "MAX_BITS",
    "ArrayData",
    "EpochRecord",
    "ImageFiles",
    "LoopSettings",
    "RunResult",
    "TrainConfig",
    "TrainResult",
    "default_backbone",
    "embed",
    "resolve_device",
    "run_training",
    "train",
    "validation_map",
]
