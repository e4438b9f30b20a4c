"""Compiled Adam update, equal bit for bit to torch's multi-tensor (``foreach``) Adam on CPU.

torch's ``foreach`` Adam makes nine passes over every parameter (weight decay, ``lerp_``,
``mul_``, ``addcmul_``, ``sqrt``, ``div_``, ``add_``, ``addcdiv_``), each a vectorised
element-wise kernel with its own rounding; on the main job's heads they take about as long as
the forward and backward passes together. The two kernels here do the same float32
operations in the same order, one rounding each as torch's kernels do (``fmadd`` where torch
vectorises one: the weight decay ``g + wd * p``, ``lerp``'s ``m + w * (g - m)``, and
``addcmul``'s ``v + (c * g) * g``), in two passes; the square root between them is torch's own
``torch.sqrt`` (its vectorised square root is not always the correctly rounded one, so it is
not recomputed here).

Importing this module imports numba; the kernels compile on first call (cached on disk).
"""

from __future__ import annotations

import numpy as np

from ..search._jit import jit, make_fma32

__all__ = ["adam_moments", "adam_update"]

fma32 = make_fma32()


@jit(error_model="numpy")
def adam_moments(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    weight_decay: np.float32,
    decay: bool,
    one_minus_beta1: np.float32,
    beta2: np.float32,
    one_minus_beta2: np.float32,
) -> None:
    """Update the moments in place (1-D float32 arrays of one length; ``grad`` is read only).

    ``g = grad + weight_decay * param`` (when ``decay``), ``exp_avg = lerp(exp_avg, g,
    1 - beta1)``, ``exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g``.
    """
    for i in range(param.size):
        g = fma32(param[i], weight_decay, grad[i]) if decay else grad[i]
        m = exp_avg[i]
        exp_avg[i] = fma32(one_minus_beta1, g - m, m)
        exp_avg_sq[i] = fma32(one_minus_beta2 * g, g, exp_avg_sq[i] * beta2)


@jit(error_model="numpy")
def adam_update(
    param: np.ndarray,
    exp_avg: np.ndarray,
    sqrt_exp_avg_sq: np.ndarray,
    bias_correction2_sqrt: np.float32,
    eps: np.float32,
    step_size: np.float32,
) -> None:
    """``param += step_size * exp_avg / (sqrt_exp_avg_sq / bias_correction2_sqrt + eps)`` in
    torch's order (``step_size`` is negative: ``-lr / bias_correction1``)."""
    for i in range(param.size):
        denom = sqrt_exp_avg_sq[i] / bias_correction2_sqrt + eps
        param[i] = param[i] + (step_size * exp_avg[i]) / denom
