"""The training loop's Adam: torch's, with its CPU float32 step compiled (same numbers).

:class:`CompiledAdam` is ``torch.optim.Adam`` (same arguments, state and checkpoints). When
numba is available, torch runs its AVX2 or AVX-512 kernels, and a parameter group is plain (CPU,
float32, contiguous, dense gradients, no amsgrad, maximize, capturable, differentiable or
decoupled weight decay) its step runs the kernels of :mod:`h2q.training._adam_kernels`, which
give the weights and moments of torch's ``foreach`` Adam bit for bit in two passes over memory
instead of nine; otherwise it is torch's own step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..search._jit import numba_available

__all__ = ["CompiledAdam"]

_PLAIN = {
    "amsgrad": False,
    "maximize": False,
    "capturable": False,
    "differentiable": False,
    "decoupled_weight_decay": False,
}


def _plain_group(group: dict[str, Any]) -> bool:
    if any(group.get(key, value) != value for key, value in _PLAIN.items()):
        return False
    if group.get("fused") or group.get("foreach") is False:
        return False
    scalars = (group["lr"], *group["betas"], group["eps"], group["weight_decay"])
    if any(isinstance(x, torch.Tensor) for x in scalars):
        return False
    for p in group["params"]:
        g = p.grad
        if g is None:
            continue
        for t in (p, g):
            if t.device.type != "cpu" or t.dtype != torch.float32 or not t.is_contiguous():
                return False
        if g.is_sparse or p.shape != g.shape:
            return False
    return True


def _kernels_match_torch() -> bool:
    """numba is available and torch runs its AVX2 or AVX-512 kernels, whose vectorised
    ``fmadd`` (one rounding) the compiled kernels reproduce; on other CPUs torch's own step
    runs."""
    return numba_available() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def _scalar_dtype() -> torch.dtype:
    """The dtype of torch's Adam ``step`` counter (float64 under a float64 default)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _flat(t: torch.Tensor) -> np.ndarray:
    """A 1-D numpy view of a contiguous CPU tensor (writes go to the tensor)."""
    return t.detach().view(-1).numpy()


class CompiledAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose step on plain CPU float32 groups runs compiled kernels.

    Same arguments, state (``step``, ``exp_avg``, ``exp_avg_sq``) and ``state_dict`` as
    ``torch.optim.Adam``; the updated weights equal those of ``Adam(foreach=True)`` bit for
    bit (see :mod:`h2q.training._adam_kernels`). Groups that are not plain, and every group
    when numba is missing, take torch's own step.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Square roots of the second moments, one buffer per parameter (not state: it is
        # recomputed every step, and the state_dict stays torch's).
        self._scratch: dict[torch.Tensor, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One optimisation step (see ``torch.optim.Adam.step``)."""
        if not _kernels_match_torch() or not all(_plain_group(g) for g in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        from ._adam_kernels import adam_moments, adam_update

        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            wd, eps = group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:  # as torch's Adam initialises it (non-fused, CPU step)
                    state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1.0
                step = state["step"].item()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                adam_moments(
                    _flat(p),
                    _flat(p.grad),
                    _flat(exp_avg),
                    _flat(exp_avg_sq),
                    np.float32(wd),
                    wd != 0,
                    np.float32(1 - beta1),
                    np.float32(beta2),
                    np.float32(1 - beta2),
                )
                # Note: torch's vectorised square root, as its Adam takes it (see the kernels).
                root = self._scratch.get(p)
                if root is None or root.shape != p.shape:
                    root = self._scratch[p] = torch.empty_like(exp_avg_sq)
                torch.sqrt(exp_avg_sq, out=root)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                adam_update(
                    _flat(p),
                    _flat(exp_avg),
                    _flat(root),
                    np.float32(bias_correction2**0.5),
                    np.float32(eps),
                    np.float32((lr / bias_correction1) * -1),
                )
                # Note: numpy wrote in place behind autograd's back; tell it, as an in-place
                # torch op would (a graph still holding the old weights then fails loudly).
                torch.autograd.graph.increment_version(p)
        return loss
