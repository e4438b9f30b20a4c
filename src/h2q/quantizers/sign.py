"""The lambda = 0 baseline: codes are the signs of the embeddings, no rotation."""

from __future__ import annotations

import numpy as np

from .base import BaseQuantizer


class SignQuantizer(BaseQuantizer):
    """``sign(z)`` with no rotation (``rotation_`` is the identity).

    With ``center=True`` this is "centred sign"; with ``center=False`` it is the raw sign
    binarization that vector databases call binary quantization.

    Parameters
    ----------
    n_bits : int, optional
        Code length; defaults to the embedding width (smaller needs ``projection="pca"``).
    center : bool
        Subtract the training mean first (see :class:`HouseholderQuantizer` for when to turn
        it on). PCA always centres.
    projection : {None, "pca"}
        PCA to ``n_bits`` dimensions first.
    rescale : bool
        Rescale rows to norm ``sqrt(n_bits)`` in ``transform`` (codes are unaffected).
    n_threads : int, optional
        Threads for fit, transform and encode (see :class:`HouseholderQuantizer`).

    Attributes
    ----------
    rotation_ : ndarray of shape (n_bits, n_bits)
        The identity.
    mean_ : ndarray of shape (n_features,) or None
        Training mean (``center=True`` or PCA).
    components_ : ndarray of shape (n_bits, n_features) or None
        PCA directions.
    n_features_in_, n_bits_ : int
    """

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        center: bool = False,
        projection: str | None = None,
        rescale: bool = True,
        n_threads: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.center = center
        self.projection = projection
        self.rescale = rescale
        self.n_threads = n_threads

    def _fit_rotation(self, Z, Z_val) -> None:
        dtype = np.float32 if Z.dtype.itemsize == 4 else np.float64
        self.rotation_ = np.eye(Z.shape[1], dtype=dtype)
