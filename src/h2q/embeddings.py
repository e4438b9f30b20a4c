"""A set of embeddings (:class:`EmbeddingFolds`) and its on-disk layout: one ``.npz`` per
stage-1 run.

Keys (all optional except that a file needs at least one fold), the fields of
:class:`EmbeddingFolds`:

- ``train``, ``val``, ``query``, ``database``: float arrays of shape (n_fold, n_bits), the
  continuous outputs of the hash layer for each fold of the split;
- ``y_train``, ``y_val``, ``y_query``, ``y_database``: their labels, class ids (n_fold,) or
  multi-hot (n_fold, n_classes).

It is a plain numpy archive (no pickle), so any tool can read it with ``np.load``. ``h2q
train`` writes it as ``embeddings.npz`` in its output folder; ``h2q fit`` reads ``train``
(and ``val``), ``h2q evaluate`` reads ``query`` and ``database`` with their labels;
:func:`load_embeddings` returns an :class:`EmbeddingFolds`, which
:func:`h2q.evaluation.evaluate_quantizers` takes.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import atomic_write, numpy_read_error
from ._validation import check_embeddings, check_labels
from .exceptions import FileFormatError

__all__ = ["FOLDS", "EmbeddingFolds", "load_embeddings", "save_embeddings"]

FOLDS = ("train", "val", "query", "database")
#: Every key of an embeddings file: the folds, then their labels.
KEYS = (*FOLDS, *(f"y_{fold}" for fold in FOLDS))


@dataclass(frozen=True, eq=False)
class EmbeddingFolds:
    """The embeddings of a split's folds, with their labels; any of them may be missing.

    What :func:`load_embeddings` returns and :func:`h2q.evaluation.evaluate_quantizers`
    scores: one value for one set of embeddings, instead of up to eight arrays.

    Attributes
    ----------
    train, val, query, database : array of shape (n_fold, n_features), or None
        Continuous embeddings of each fold (stage 1's outputs).
    y_train, y_val, y_query, y_database : array of shape (n_fold,) or (n_fold, n_classes), or None
        Their labels: class ids or multi-hot rows.
    """

    train: np.ndarray | None = None
    val: np.ndarray | None = None
    query: np.ndarray | None = None
    database: np.ndarray | None = None
    y_train: np.ndarray | None = None
    y_val: np.ndarray | None = None
    y_query: np.ndarray | None = None
    y_database: np.ndarray | None = None

    def keys(self) -> tuple[str, ...]:
        """The keys present (of :data:`KEYS`, in that order)."""
        return tuple(key for key in KEYS if getattr(self, key) is not None)

    def get(self, key: str) -> np.ndarray | None:
        """The array of ``key`` (a fold or ``y_<fold>``), None when missing."""
        if key not in KEYS:
            raise ValueError(f"unknown key {key!r}; embeddings hold {list(KEYS)}.")
        return getattr(self, key)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays present, by key (``save_embeddings(path, **folds.arrays())``)."""
        return {key: getattr(self, key) for key in self.keys()}

    def replace(self, **changes: np.ndarray | None) -> EmbeddingFolds:
        """A copy with some arrays changed."""
        return dataclasses.replace(self, **changes)

    def require(self, keys: tuple[str, ...], source: str | os.PathLike = "the embeddings") -> None:
        """Raise ``ValueError`` naming the keys of ``keys`` that are missing, and the fix."""
        missing = [key for key in keys if self.get(key) is None]
        if missing:
            raise ValueError(
                f"{source} has keys {sorted(self.keys())} but lacks {missing}. Pass a file "
                f"with those folds (h2q train writes all of {FOLDS} with their labels)."
            )


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


def load_embeddings(path: str | os.PathLike, required: tuple[str, ...] = ()) -> EmbeddingFolds:
    """Read an embeddings file; ``required`` names keys that must be present.

    A plain ``.npy`` file is read as the ``train`` fold. Keys other than those of
    :data:`KEYS` are ignored.

    Returns
    -------
    EmbeddingFolds
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
                data = {k: archive[k] for k in archive.files if k in KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        fallback = f"{path} is truncated or corrupted, or not a numpy file. Re-create it"
        raise FileFormatError(numpy_read_error(path, exc, fallback)) from exc
    folds = EmbeddingFolds(**data)
    folds.require(required, path)
    return folds
