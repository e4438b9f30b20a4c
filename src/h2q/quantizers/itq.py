"""Iterative quantization (Gong & Lazebnik, CVPR 2011), with a correct Procrustes step."""

from __future__ import annotations

import torch

from .._validation import check_positive_int
from .base import BaseQuantizer


class ITQQuantizer(BaseQuantizer):
    """ITQ: alternate ``B = sign(Z R)`` and the orthogonal Procrustes solution
    ``R = argmin ||B - Z R||_F``.

    The Procrustes step takes the polar factor of ``Z^T B``: with ``Z^T B = P S Q^T`` (SVD),
    ``R = P Q^T``. (The H²Q authors' 2023 code took the wrong factor, which left the data
    unrotated; see the project's method notes.) Each iteration can only lower the
    quantization error ``||B - Z R||^2``, recorded in ``loss_curve_``; with ``rescale=True``
    that is H²Q's ``"l2"`` loss on the same data.

    Parameters
    ----------
    n_bits : int, optional
        Code length; defaults to the embedding width (smaller needs ``projection="pca"``).
    max_iter : int
        Alternations (50, as in the original paper).
    center : bool
        Subtract the training mean before rescaling and rotating (classic ITQ centres; the H²Q
        comparison does not; see :class:`HouseholderQuantizer` for when to turn it on). PCA
        always centres.
    projection : {None, "pca"}
        PCA to ``n_bits`` dimensions first (PCA-ITQ).
    rescale : bool
        Rescale rows to norm ``sqrt(n_bits)``, as for H²Q, so both minimise the same loss on
        the same data.
    random_state : int or None
        Seeds the random orthogonal start (None: a fresh random seed).
    device : str, optional
        Where to fit; defaults to the input's device.
    n_threads : int, optional
        Threads for fit, transform and encode (see :class:`HouseholderQuantizer`).

    Attributes
    ----------
    rotation_ : ndarray (n_bits, n_bits)
        ``transform(X) = preprocess(X) @ rotation_.T`` (``rotation_ = R^T``).
    mean_ : ndarray of shape (n_features,) or None
        Training mean (``center=True`` or PCA).
    loss_curve_ : list of float
        ``mean((Z R - B)^2)`` before the first and after each iteration.
    n_iter_ : int
    """

    _fitted_arrays = ("loss_curve_",)
    _fitted_scalars = ("n_iter_",)

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        max_iter: int = 50,
        center: bool = False,
        projection: str | None = None,
        rescale: bool = True,
        random_state: int | None = 0,
        device: str | None = None,
        n_threads: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.max_iter = max_iter
        self.center = center
        self.projection = projection
        self.rescale = rescale
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int(self.max_iter, "max_iter")

    def _fit_rotation(self, Z, Z_val) -> None:
        k = Z.shape[1]
        generator = torch.Generator().manual_seed(self._seed())
        gauss = torch.randn(k, k, generator=generator, dtype=torch.float64)
        R = torch.linalg.qr(gauss).Q.to(dtype=Z.dtype, device=Z.device)
        R, curve = itq_iterations(Z, R, int(self.max_iter))
        self.rotation_ = R.T.contiguous().cpu().numpy()
        self.loss_curve_ = curve
        self.n_iter_ = int(self.max_iter)


def itq_iterations(
    Z: torch.Tensor, R: torch.Tensor, n_iter: int
) -> tuple[torch.Tensor, list[float]]:
    """``n_iter`` ITQ alternations from ``R`` (k, k); returns the last ``R`` and the loss
    ``mean((Z R - sign(Z R))^2)`` before the first and after each alternation."""
    curve = []
    for _ in range(n_iter):
        V = Z @ R
        B = torch.where(V >= 0, 1.0, -1.0).to(Z.dtype)
        curve.append(float((V - B).square().mean()))
        P, _, Qt = torch.linalg.svd(Z.T @ B)
        R = P @ Qt
    V = Z @ R
    curve.append(float((V - torch.where(V >= 0, 1.0, -1.0)).square().mean()))
    return R, curve
