"""What the training loop iterates over, and how a model turns items into embeddings."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import check_labels

__all__ = ["ArrayData", "ImageFiles", "as_array_data", "embed"]


class ImageFiles:
    """A lazy array of image files: ``images[idx]`` reads and resizes those files.

    Lets file-based data sets (``Dataset.kind == "image_paths"``) flow through the same code
    as in-memory pixels without loading every image at once.

    Parameters
    ----------
    paths : sequence of path-like
        Image files, in item order.
    size : int or (height, width)
        Size every image is letterboxed to (see :func:`h2q.data.load_image`).
    loader : callable, optional
        ``loader(path, size) -> uint8 (H, W, 3)``; default :func:`h2q.data.load_image`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        size: int | tuple[int, int],
        loader: Callable[..., np.ndarray] | None = None,
    ) -> None:
        if loader is None:
            from ..data import load_image

            loader = load_image
        self.paths = [str(p) for p in paths]
        self.size = size
        self.loader = loader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx: Any) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        return np.stack([self.loader(self.paths[i], self.size) for i in idx])

    def fingerprint(self) -> str:
        """Paths, sizes and modification times of the files, and the load size (cache key)."""
        parts = [f"size={self.size}"]
        for p in self.paths:
            try:
                st = os.stat(p)
                parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                parts.append(f"{p}:missing")
        return "\n".join(parts)


class ArrayData:
    """Items and labels held in memory (or lazily), batched by index.

    Parameters
    ----------
    X : numpy.ndarray, torch.Tensor or lazy source
        The items: anything with ``len`` where ``X[idx]`` (an int64 index array) gives a
        batch that ``torch.as_tensor`` accepts (pixels, feature rows, :class:`ImageFiles`).
    y : array-like
        Labels, class ids ``(n,)`` or multi-hot ``(n, n_classes)``.
    transform : callable, optional
        Applied to each batch tensor after it is moved to the device, e.g.
        ``model.preprocess`` to turn uint8 pixels into the backbone's input.
    """

    def __init__(self, X: Any, y: Any, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        n = len(X)
        self.y = check_labels(y, n, "y")
        self.X = X
        self.transform = transform
        self._y_tensor = torch.as_tensor(self.y)
        # A writable, C-ordered numpy array is shared with torch (no copy), so that a batch is
        # one index_select instead of numpy fancy indexing and a conversion.
        self._X_tensor = _shared_tensor(X)

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"ArrayData(n_samples={len(self)}, transform={self.transform is not None})"

    def inputs(self, idx: np.ndarray | Tensor, device: torch.device) -> Tensor:
        """The batch ``X[idx]`` on ``device``, transformed."""
        x = self._rows(idx.cpu().numpy() if isinstance(idx, Tensor) else np.asarray(idx))
        x = x.to(device, non_blocking=True)
        return self.transform(x) if self.transform is not None else x

    def _rows(self, idx: np.ndarray) -> Tensor:
        """``X[idx]`` as a tensor, on the device ``X`` is on."""
        if self._X_tensor is not None:
            return self._X_tensor.index_select(0, torch.as_tensor(idx, dtype=torch.long))
        if isinstance(self.X, Tensor):
            return self.X[torch.as_tensor(idx, device=self.X.device)]
        return torch.as_tensor(np.asarray(self.X[idx]))

    def labels(self, idx: np.ndarray | Tensor, device: torch.device) -> Tensor:
        """The labels ``y[idx]`` as a tensor on ``device``."""
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return self._y_tensor[idx_t].to(device, non_blocking=True)


def _shared_tensor(X: Any) -> Tensor | None:
    """``torch.from_numpy(X)`` for a writable, C-ordered numeric numpy array, else None."""
    if not isinstance(X, np.ndarray) or X.ndim < 1:
        return None
    if not (X.flags.c_contiguous and X.flags.writeable) or X.dtype.kind not in "biuf":
        return None
    try:
        return torch.from_numpy(X)
    except (TypeError, ValueError):  # a dtype or byte order torch lacks
        return None


def as_array_data(data: Any, name: str) -> ArrayData:
    """An :class:`ArrayData` from itself or an ``(X, y)`` pair."""
    if isinstance(data, ArrayData):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return ArrayData(*data)
    raise TypeError(
        f"{name} must be an h2q.training.ArrayData or an (X, y) tuple, got {type(data).__name__}."
    )


def embed(
    model: nn.Module,
    data: ArrayData | tuple[Any, Any],
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    output_transform: Callable[[Tensor], Tensor] | None = None,
) -> np.ndarray:
    """Continuous outputs of ``model`` for every item of ``data``, in eval mode, no gradients.

    Parameters
    ----------
    model : nn.Module
        Maps a (transformed) batch to ``(batch, n_bits)``.
    data : ArrayData or (X, y)
    batch_size : int, default 256
    device : str or torch.device, optional
        Default: the model's device.
    output_transform : callable, optional
        Applied to the raw outputs, e.g. ``objective.output_transform`` (tanh for the
        penalty strategy).

    Returns
    -------
    numpy.ndarray of float32, shape (n_samples, n_bits)
        Codes are their signs (bit = 1 where the value is >= 0, :func:`h2q.binarize`).
    """
    data = as_array_data(data, "data")
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    device = torch.device(device)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                idx = np.arange(start, min(start + batch_size, len(data)))
                u = model(data.inputs(idx, device))
                if output_transform is not None:
                    u = output_transform(u)
                chunks.append(u.float().cpu().numpy())
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("no items to embed.")
    return np.concatenate(chunks)
