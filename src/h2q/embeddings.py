"""The on-disk layout of a set of embeddings: one ``.npz`` per stage-1 run.

Keys (all optional except that a file needs at least one fold):

- ``train``, ``val``, ``query``, ``database``: float arrays of shape (n_fold, n_bits), the
  continuous outputs of the hash layer for each fold of the split;
- ``y_train``, ``y_val``, ``y_query``, ``y_database``: their labels, class ids (n_fold,) or
  multi-hot (n_fold, n_classes).

It is a plain numpy archive (no pickle), so any tool can read it with ``np.load``. ``h2q
train`` writes it as ``embeddings.npz`` in its output folder; ``h2q fit`` reads ``train``
(and ``val``), ``h2q evaluate`` reads ``query`` and ``database`` with their labels.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ._io import atomic_write, numpy_read_error
from ._validation import check_embeddings, check_labels
from .exceptions import FileFormatError

FOLDS = ("train", "val", "query", "database")


def save_embeddings(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write folds and labels (keyword names from the module docstring), atomically.

    Example: ``save_embeddings("run/embeddings.npz", train=Xt, y_train=yt, query=Xq, ...)``.
    """
    allowed = set(FOLDS) | {f"y_{f}" for f in FOLDS}
    unknown = sorted(set(arrays) - allowed)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; use {sorted(allowed)}.")
    if not any(f in arrays for f in FOLDS):
        raise ValueError(f"no fold given; pass at least one of {FOLDS}.")
    out = {}
    for fold in FOLDS:
        if fold in arrays:
            X = check_embeddings(np.asarray(arrays[fold]), fold, allow_torch=False)
            out[fold] = X
            if f"y_{fold}" in arrays:
                out[f"y_{fold}"] = check_labels(arrays[f"y_{fold}"], len(X), f"y_{fold}")
        elif f"y_{fold}" in arrays:
            raise ValueError(f"y_{fold} given without the {fold} embeddings.")
    atomic_write(path, lambda f: np.savez(f, **out))


def load_embeddings(
    path: str | os.PathLike, required: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """Read an embeddings file; ``required`` names keys that must be present.

    A plain ``.npy`` file is read as the ``train`` fold.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no such embeddings file: {path}. Pass a .npz written by `h2q train` (or any .npz "
            f"with keys among {FOLDS} and y_<fold>), or a .npy matrix."
        )
    try:
        if path.suffix == ".npy":
            data = {"train": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as archive:
                data = {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        fallback = f"{path} is truncated or corrupted, or not a numpy file. Re-create it"
        raise FileFormatError(numpy_read_error(path, exc, fallback)) from exc
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(
            f"{path} has keys {sorted(data)} but lacks {missing}. Pass a file with those "
            f"folds (h2q train writes all of {FOLDS} with their labels)."
        )
    return data
