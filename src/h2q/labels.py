"""The relevance rule of the field: two items are similar when they share at least one label.

One helper serves the stage-1 losses (torch) and the retrieval metrics (numpy): labels are
class ids of shape (n,) or multi-hot rows of shape (n, n_classes).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def share_label(a: Array, b: Array) -> Array:
    """Boolean matrix S of shape (len(a), len(b)): S[i, j] is True when a[i] and b[j] share a label.

    Parameters
    ----------
    a, b : numpy arrays or torch tensors (both the same kind)
        Class ids of shape (n,) or multi-hot rows of shape (n, n_classes).
    """
    if a.ndim != b.ndim:
        raise ValueError(
            f"labels of different kinds: shapes {tuple(a.shape)} and {tuple(b.shape)}. Use class "
            "ids (n,) on both sides or multi-hot (n, n_classes) on both sides."
        )
    if a.ndim == 1:
        return a[:, None] == b[None, :]
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"multi-hot labels with {a.shape[1]} and {b.shape[1]} classes; both sides must use "
            "the same class list."
        )
    if isinstance(a, torch.Tensor):
        return (a.to(torch.float32) @ b.to(torch.float32).T) > 0
    return (a.astype(np.float32) @ b.astype(np.float32).T) > 0


def to_multi_hot(y: Array, n_classes: int | None = None) -> Array:
    """Class ids (n,) -> multi-hot (n, n_classes); multi-hot input is returned as is."""
    if y.ndim == 2:
        return y
    if isinstance(y, torch.Tensor):
        n = int(y.max()) + 1 if n_classes is None else n_classes
        return torch.nn.functional.one_hot(y.long(), n).to(torch.float32)
    n = int(y.max()) + 1 if n_classes is None else n_classes
    out = np.zeros((len(y), n), dtype=np.float32)
    out[np.arange(len(y)), y] = 1
    return out
