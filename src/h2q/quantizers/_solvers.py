"""Optimisers for the Householder vectors of stage 2.

``gd`` (the default): full-batch gradient descent with heavy-ball momentum and a cosine
learning-rate decay over a fixed number of iterations, keeping the iterate with the lowest
validation loss. Its constants are fixed for every data set and width, so the user tunes
nothing. The stage-2 losses are piecewise smooth with a kink wherever a coordinate crosses
zero; on them quasi-Newton methods (L-BFGS) stall in poor local minima, while momentum
descent behaves like the paper's SGD at a fraction of the steps.

``sgd`` (``solver="paper"``): the paper's loop, mini-batch SGD over epochs, keeping the epoch
with the lowest validation loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..rotation import householder_product
from .objectives import Objective

#: ``callback(iteration, train_loss, validation_loss_or_None)``; return True to stop early.
Callback = Callable[[int, float, "float | None"], "bool | None"]

# Fixed constants of the default solver (not user hyperparameters; chosen once on
# Fashion-MNIST embeddings of 16, 32 and 64 dimensions, see benchmarks/bench_stage2.py).
GD_LEARNING_RATE = 0.3
GD_MOMENTUM = 0.95
GD_ITERATIONS = 200


@dataclass
class SolverResult:
    vectors: torch.Tensor
    loss_curve: list[float] = field(default_factory=list)
    validation_curve: list[float] = field(default_factory=list)
    best_iteration: int = 0
    n_iter: int = 0


def _loss_and_grad(
    vectors: torch.Tensor, Z: torch.Tensor, objective: Objective
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Loss over all of Z, its gradient with respect to the Householder vectors, and U.

    The (n, k) part uses the loss's closed-form gradient; only the k x k product goes through
    autograd.
    """
    V = vectors.detach().requires_grad_(True)
    U = householder_product(V)
    Ud = U.detach()
    with torch.no_grad():
        value, G = objective.value_and_grad(Z @ Ud.T)
        grad_U = G.T @ Z  # d loss / d U, since Zr = Z U^T
    U.backward(grad_U)
    return float(value), V.grad, Ud


def _value(vectors: torch.Tensor, Z: torch.Tensor, objective: Objective) -> float:
    with torch.no_grad():
        return float(objective.value(Z @ householder_product(vectors).T))


class _Monitor:
    """Records the curves and keeps the iterate with the lowest monitored loss
    (validation if given, else training)."""

    def __init__(self, Z_val: torch.Tensor | None, objective: Objective, callback) -> None:
        self.Z_val, self.objective, self.callback = Z_val, objective, callback
        self.result = SolverResult(vectors=torch.empty(0))
        self.best = math.inf

    def record(
        self,
        iteration: int,
        vectors: torch.Tensor,
        train_loss: float,
        U: torch.Tensor | None = None,
    ) -> bool:
        """Record one iteration; return True when the callback asks to stop.

        ``U`` is the product of ``vectors`` when the caller already has it.
        """
        res = self.result
        res.loss_curve.append(train_loss)
        val = None
        if self.Z_val is not None:
            if U is None:
                val = _value(vectors, self.Z_val, self.objective)
            else:
                with torch.no_grad():
                    val = float(self.objective.value(self.Z_val @ U.T))
            res.validation_curve.append(val)
        monitored = train_loss if val is None else val
        if monitored < self.best:
            self.best = monitored
            res.vectors = vectors.detach().clone()
            res.best_iteration = iteration
        res.n_iter = iteration
        return bool(self.callback(iteration, train_loss, val)) if self.callback else False


def gd(
    Z: torch.Tensor,
    Z_val: torch.Tensor | None,
    objective: Objective,
    vectors: torch.Tensor,
    *,
    max_iter: int = GD_ITERATIONS,
    learning_rate: float = GD_LEARNING_RATE,
    callback: Callback | None = None,
) -> SolverResult:
    """Full-batch heavy-ball descent with cosine decay; returns the best iterate seen.

    ``loss_curve[i]`` is the training loss at iterate i (0 = the start); the step that
    follows uses the gradient computed with it, so each iteration costs one pass over Z.
    """
    x = vectors.detach().clone()
    velocity = torch.zeros_like(x)
    monitor = _Monitor(Z_val, objective, callback)
    for iteration in range(max_iter + 1):
        f, g, U = _loss_and_grad(x, Z, objective)
        if monitor.record(iteration, x, f, U) or iteration == max_iter:
            break
        lr = 0.5 * learning_rate * (1 + math.cos(math.pi * iteration / max_iter))
        velocity.mul_(GD_MOMENTUM).add_(g)
        x = x - lr * velocity
    return monitor.result


def sgd(
    Z: torch.Tensor,
    Z_val: torch.Tensor | None,
    objective: Objective,
    vectors: torch.Tensor,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    generator: torch.Generator,
    callback: Callback | None = None,
) -> SolverResult:
    """The paper's loop: plain mini-batch SGD; keeps the epoch with the lowest validation loss.

    Without ``Z_val`` the epoch with the lowest mean training batch loss is kept.
    """
    V = torch.nn.Parameter(vectors.detach().clone())
    opt = torch.optim.SGD([V], lr=learning_rate)
    monitor = _Monitor(Z_val, objective, callback)
    n = Z.shape[0]
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator).to(Z.device)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = Z[order[start : start + batch_size]]
            loss = objective.value(batch @ householder_product(V).T)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        if monitor.record(epoch, V.detach(), total / n):
            break
    return monitor.result
