"""The random-rotation baseline: centre, apply a seeded random orthogonal rotation, take signs."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_int
from .sign import SignQuantizer

__all__ = ["RandomRotationQuantizer", "random_orthogonal"]


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    """A seeded random orthogonal (n, n) matrix: QR of a Gaussian, signs fixed (Haar)."""
    n = check_positive_int(n, "n")
    A = np.random.default_rng(seed).standard_normal((n, n))
    Q, R = np.linalg.qr(A)
    return Q * np.sign(np.diag(R))


class RandomRotationQuantizer(SignQuantizer):
    """Centre (and optionally PCA-project), apply a seeded random rotation, take signs.

    The "random rotation" baseline (and RaBitQ's rotation): it spreads variance over the
    bits like ITQ and H²Q but learns nothing from the data beyond the mean (and the PCA
    directions). It is :class:`SignQuantizer` with a random rotation in place of the identity,
    centred by default.

    Parameters
    ----------
    n_bits : int, optional
        Code length; defaults to the embedding width (smaller needs ``projection="pca"``).
    center : bool, default True
        Subtract the training mean first. PCA always centres.
    projection : {None, "pca"}
    rescale : bool, default True
        Rescale rows to norm ``sqrt(n_bits)`` in ``transform`` (codes are unaffected).
    random_state : int, default 0
        Seed of the rotation.
    n_threads : int, optional
        Threads for fit, transform and encode (see :class:`HouseholderQuantizer`).

    Attributes
    ----------
    rotation_ : ndarray of shape (n_bits, n_bits)
        A Haar-random orthogonal matrix; rotated rows are ``z @ rotation_.T``.
    mean_, components_, n_features_in_, n_bits_
        As in :class:`SignQuantizer`.
    """

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        center: bool = True,
        projection: str | None = None,
        rescale: bool = True,
        random_state: int | None = 0,
        n_threads: int | None = None,
    ) -> None:
        super().__init__(
            n_bits, center=center, projection=projection, rescale=rescale, n_threads=n_threads
        )
        self.random_state = random_state

    def _fit_rotation(self, Z, Z_val) -> None:
        dtype = np.float32 if Z.dtype.itemsize == 4 else np.float64
        self.rotation_ = random_orthogonal(Z.shape[1], self._seed()).astype(dtype)
