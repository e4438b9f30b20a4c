"""The four stage-2 quantization losses of H²Q, on rotated embeddings ``Zr = Z U^T``.

Each is a mean over the batch (and over coordinates where the paper averages them):

- ``"l2"`` (the default, "H²Q" in the paper's tables): ``mean((Zr - sign Zr)^2)``
- ``"l1"``: ``mean(|Zr - sign Zr|)``
- ``"min_entry"``: ``mean_i logsumexp_j(-Zr_ij^2)``; pushes up each row's smallest ``|entry|``
- ``"bit_var"``: ``mean(sigmoid(Zr) (1 - sigmoid(Zr)))``

Every loss has a closed-form gradient with respect to ``Zr``; the solvers use it so that the
large ``(n, k)`` part of each step needs no autograd graph. ``sign(0)`` is taken as 0 here, as
``torch.sign`` does: a set of measure zero that no gradient step lands on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Objective:
    """A stage-2 loss: ``value(Zr)`` (differentiable by autograd) and its gradient ``grad(Zr)``."""

    name: str
    value: Callable[[torch.Tensor], torch.Tensor]
    value_and_grad: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    paper_learning_rate: float


def _l2(zr: torch.Tensor) -> torch.Tensor:
    return (zr - torch.sign(zr)).square().mean()


def _l2_vg(zr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = zr - torch.sign(zr)
    return r.square().mean(), r.mul_(2.0 / zr.numel())


def _l1(zr: torch.Tensor) -> torch.Tensor:
    return (zr - torch.sign(zr)).abs().mean()


def _l1_vg(zr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = zr - torch.sign(zr)
    return r.abs().mean(), torch.sign(r).mul_(1.0 / zr.numel())


def _min_entry(zr: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(-zr.square(), dim=1).mean()


def _min_entry_vg(zr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = -zr.square()
    lse = torch.logsumexp(a, dim=1, keepdim=True)
    # d/dz logsumexp(-z^2) = softmax(-z^2) * (-2 z), averaged over rows
    grad = torch.exp(a - lse).mul_(zr).mul_(-2.0 / zr.shape[0])
    return lse.mean(), grad


def _bit_var(zr: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(zr)
    return (s * (1 - s)).mean()


def _bit_var_vg(zr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(zr)
    v = s * (1 - s)
    # d/dz s(1-s) = s(1-s)(1-2s)
    return v.mean(), v.mul(1 - 2 * s).mul_(1.0 / zr.numel())


OBJECTIVES: dict[str, Objective] = {
    "l2": Objective("l2", _l2, _l2_vg, 0.1),
    "l1": Objective("l1", _l1, _l1_vg, 0.1),
    "min_entry": Objective("min_entry", _min_entry, _min_entry_vg, 0.1),
    "bit_var": Objective("bit_var", _bit_var, _bit_var_vg, 0.01),
}


def get_objective(name: str) -> Objective:
    """Look up a stage-2 loss by name, with an error that lists the valid names."""
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown loss {name!r}; choose one of {', '.join(map(repr, OBJECTIVES))}."
        ) from None
