"""The lambda = 0 baseline: codes are the signs of the embeddings, no rotation."""

from __future__ import annotations

import numpy as np

from .base import BaseQuantizer


class SignQuantizer(BaseQuantizer):
    """``sign(z)`` with no rotation (``rotation_`` is the identity).

    Parameters
    ----------
    n_bits : int, optional
        Code length; defaults to the embedding width (smaller needs ``projection="pca"``).
    projection : {None, "pca"}
        PCA to ``n_bits`` dimensions first.
    rescale : bool
        Rescale rows to norm ``sqrt(n_bits)`` in ``transform`` (codes are unaffected).
    """

    def __init__(
        self, n_bits: int | None = None, *, projection: str | None = None, rescale: bool = True
    ) -> None:
        self.n_bits = n_bits
        self.projection = projection
        self.rescale = rescale

    def _fit_rotation(self, Z, Z_val) -> None:
        dtype = np.float32 if Z.dtype.itemsize == 4 else np.float64
        self.rotation_ = np.eye(Z.shape[1], dtype=dtype)
