"""Orthogonal matrices as products of Householder reflections, in pure torch.

``U = H(v_1) H(v_2) ... H(v_m)`` with ``H(v) = I - 2 v v^T / ||v||^2``. The product is formed in
one shot with the compact WY ("UT transform") representation,

    U = I - Y S^{-1} Y^T,   S = striu(Y^T Y) + diag(||y_i||^2) / 2,

where the columns of ``Y`` are the (normalised) vectors ``v_i``: a Gram matrix, a triangular
solve and one matrix product, O(k^2 m) work with no Python loop over reflections (the blocked
accumulation of FastH, Mathiasen et al. 2020, in closed form). Autograd differentiates through
it, so the ``v_i`` are free, unconstrained parameters for any optimiser.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn


@functools.lru_cache(maxsize=32)
def _masks(m: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Strictly-upper 0/1 mask and I/2, both (m, m).

    Multiplying by a cached mask replaces ``torch.triu``, which on small matrices costs up to
    a hundred times more when its worker threads compete with another process.
    """
    upper = torch.ones(m, m, dtype=dtype, device=device).triu_(1)
    return upper, 0.5 * torch.eye(m, dtype=dtype, device=device)


def _wy_forward(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``U = I - Y S^{-1} Y^T`` for unit columns ``Y`` (k, m); also returns S and W = S^{-1} Y^T."""
    upper, half_eye = _masks(Y.shape[1], Y.dtype, Y.device)
    S = torch.addcmul(half_eye, Y.T @ Y, upper)  # striu(Y^T Y) + I / 2
    W = torch.linalg.solve_triangular(S, Y.T, upper=True)
    U = -(Y @ W)
    U.diagonal().add_(1.0)
    return U, S, W


def _wy_backward(
    Y: torch.Tensor, S: torch.Tensor, W: torch.Tensor, G: torch.Tensor
) -> torch.Tensor:
    """``dL/dY`` from ``G = dL/dU``.

    With ``P = S^{-T} Y^T G`` and ``M = striu(P W^T)``: ``dL/dY = -G W^T - P^T + Y (M + M^T)``.
    The diagonal of ``S`` is the constant 1/2 because the columns have unit norm, which the
    normalisation upstream keeps in every direction a gradient passes through.
    """
    P = torch.linalg.solve_triangular(S.mT, Y.T @ G, upper=False)
    M = (P @ W.T).mul_(_masks(Y.shape[1], Y.dtype, Y.device)[0])
    return -(G @ W.T) - P.T + Y @ (M + M.T)


class _WYProduct(torch.autograd.Function):
    """Autograd wrapper of the compact WY product with its analytic backward (about half the
    cost of differentiating the triangular solve by autograd at k = 64)."""

    @staticmethod
    def forward(ctx, Y: torch.Tensor) -> torch.Tensor:
        U, S, W = _wy_forward(Y)
        ctx.save_for_backward(Y, S, W)
        return U

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G: torch.Tensor) -> torch.Tensor:
        return _wy_backward(*ctx.saved_tensors, G)


def _unit_rows(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if vectors.ndim != 2:
        raise ValueError(f"vectors must have shape (m, k), got {tuple(vectors.shape)}")
    norms = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    return vectors / norms, norms


def reflections_rotation(vectors: torch.Tensor) -> torch.Tensor:
    """The orthogonal matrix ``H(v_1) ... H(v_m)`` for the rows ``v_i`` of ``vectors``.

    Not :func:`torch.linalg.householder_product`, which takes LAPACK's compact form
    ``(A, tau)``; this function takes the reflection vectors themselves.

    Parameters
    ----------
    vectors : torch.Tensor of shape (m, k), floating point
        One reflection vector per row; each row must be non-zero. Any scale works: a row and
        its multiples give the same reflection.

    Returns
    -------
    torch.Tensor of shape (k, k)
        Orthogonal, same dtype and device as ``vectors``, differentiable (first order).
    """
    # Normalising first keeps S well scaled (unit diagonal 1/2) whatever the rows' norms.
    unit, _ = _unit_rows(vectors)
    return _WYProduct.apply(unit.T)


def reflections_rotation_vjp(
    vectors: torch.Tensor,
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """``U = reflections_rotation(vectors)`` and a function ``G -> dL/dvectors`` for
    ``G = dL/dU``, without autograd (for solvers that compute their own gradients).

    The same compact WY algebra as the autograd path, written in the rows' orientation with
    fused products (``addmm``, ``addcmul``): a solver step is a few dozen small kernels, and
    at narrow widths their count, not their flops, is the cost.
    """
    with torch.no_grad():
        norms = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
        unit = vectors / norms  # (m, k), the columns of Y as rows
        upper, half_eye = _masks(unit.shape[0], unit.dtype, unit.device)
        S = torch.addcmul(half_eye, unit @ unit.T, upper)  # striu(Y^T Y) + I / 2
        W = torch.linalg.solve_triangular(S, unit, upper=True)  # S^{-1} Y^T, (m, k)
        U = torch.addmm(_identity(unit.shape[1], unit.dtype, unit.device), unit.T, W, alpha=-1)

    def vjp(G: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            # _wy_backward transposed: dL/dY^T = -P - W G^T + (M + M^T) Y^T
            P = torch.linalg.solve_triangular(S.mT, unit @ G, upper=False)
            M = (P @ W.T).mul_(upper)
            g_unit = torch.addmm(P, M + M.T, unit, beta=-1).sub_(W @ G.T)
            # through u = v / ||v||: (g - (g . u) u) / ||v||
            radial = torch.linalg.vecdot(g_unit, unit).unsqueeze(1)
            return g_unit.addcmul_(radial, unit, value=-1).div_(norms)

    return U, vjp


@functools.lru_cache(maxsize=32)
def _identity(k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.eye(k, dtype=dtype, device=device)


class HouseholderRotation(nn.Module):
    """A learnable orthogonal map ``z -> U z`` with ``U`` a product of Householder reflections.

    ``U`` is orthogonal by construction for any parameter values, so plain (unconstrained)
    optimisers such as SGD, Adam or L-BFGS apply. With ``n_reflections = n_features`` (the
    default) the parametrisation covers every orthogonal matrix of determinant
    ``(-1)^n_features``; the other component only flips one coordinate, which changes no Hamming
    distance.

    Parameters
    ----------
    n_features : int
        Width k of the vectors to rotate.
    n_reflections : int, optional
        Number m of reflections, 1 <= m <= k. Defaults to k.
    dtype, device : optional
        Of the parameters.

    Attributes
    ----------
    vectors : nn.Parameter of shape (m, k)
        Reflection vectors, initialised to the first m rows of the identity, so that ``U``
        starts as ``-I`` when m = k (the paper's start).
    """

    def __init__(
        self,
        n_features: int,
        n_reflections: int | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        m = n_features if n_reflections is None else n_reflections
        if not 1 <= m <= n_features:
            raise ValueError(
                f"n_reflections must be between 1 and n_features={n_features}, got {m}."
            )
        self.n_features = n_features
        self.n_reflections = m
        self.vectors = nn.Parameter(torch.eye(m, n_features, dtype=dtype, device=device))

    def matrix(self) -> torch.Tensor:
        """The current orthogonal matrix U, shape (k, k)."""
        return reflections_rotation(self.vectors)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Rotate a batch: returns ``z @ U.T`` (each row ``z_i`` mapped to ``U z_i``).

        Parameters
        ----------
        z : torch.Tensor of shape (n, k)
        """
        if z.shape[-1] != self.n_features:
            raise ValueError(
                f"input has {z.shape[-1]} features, but this rotation acts on {self.n_features}."
            )
        return z @ self.matrix().T

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, n_reflections={self.n_reflections}"
