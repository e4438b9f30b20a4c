"""Optimisers for the Householder vectors of stage 2.

``gd`` (the default): heavy-ball momentum descent on random batches of rows, keeping the
iterate with the lowest validation loss (checked every few iterations). The learning rate
stays constant until the validation loss stalls, then drops; the run stops at the stall that
follows the last drop. Each step forms ``U`` and the gradient of the Householder vectors in
closed form (compact WY, :func:`h2q.rotation.reflections_rotation_vjp`): no Python loop over
reflections and no autograd graph. So the number of iterations adapts to the problem (wider
codes take longer), and its constants are fixed for every data set and width: the user tunes
nothing.
The stage-2 losses are piecewise smooth with a kink wherever a coordinate crosses zero; on
them quasi-Newton methods (L-BFGS) stall in poor local minima, while momentum descent on
batches behaves like the paper's SGD at a small fraction of the steps.

``sgd`` (``solver="paper"``): the paper's loop, mini-batch SGD over epochs, keeping the epoch
with the lowest validation loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..rotation import reflections_rotation, reflections_rotation_vjp
from .objectives import Objective

#: ``callback(iteration, train_loss, validation_loss_or_None)``; return True to stop early.
Callback = Callable[[int, float, "float | None"], "bool | None"]

# Fixed constants of the default solver (not user hyperparameters). Chosen on the stage-2
# benchmark's Fashion-MNIST DPSH embeddings at 16, 32 and 64 bits and on MiniLM WordNet gloss
# embeddings (PCA) at 128, 256 and 384 bits against ITQ (50 iterations) and the paper's loop
# (benchmarks/stage2_solver_variants.py; benchmarks/bench_stage2.py measures the result side
# by side). At 16-64 bits, batches of 512 rows and stopping after the second drop (patience
# 2 checks) ended below ITQ and the paper's loop in every cell, at 1-2x ITQ's time; patience 4
# lowered the loss a little more but took up to twice as long; ITQ's rotation as the start
# (converted to Householder vectors) ended higher than the identity, and so did a random
# rotation at 256 and 384 bits. Wider codes have k^2 parameters and per-step cost dominated by
# the k^3 WY product, so the batch grows with the width: 8 rows per bit, from 512 to 2,048.
# From 256 bits the learning rate 0.5 is too noisy: its stall rule stopped after 135-150
# iterations at 0.2-0.9% above the loss that a rate of 0.2 with patience 4 reached in about
# 1.7x ITQ's time (6,000 MiniLM rows; at 128 bits 0.5 with patience 2 stayed the best).
# Known gap (the stage-2 benchmark, docs/benchmarks.md): at 384 bits the paper's loop, 45x
# slower, ends 0.7% lower; gd keeps improving past its stop at about the paper loop's rate
# per row seen, which the time budget (2x ITQ) does not allow.
GD_LEARNING_RATE = 0.5
GD_MOMENTUM = 0.95
GD_BATCH_SIZE = 512
GD_BATCH_PER_BIT = 8
GD_MAX_BATCH_SIZE = 2048
GD_CHECK_EVERY = 5
#: Checks in a row without a relative improvement of GD_TOLERANCE that count as a stall.
GD_PATIENCE = 2
GD_TOLERANCE = 1e-4
#: From this width on, the learning rate and the patience of wide codes apply.
GD_WIDE_BITS = 256
GD_WIDE_LEARNING_RATE = 0.2
GD_WIDE_PATIENCE = 4
#: Factor of the learning rate at each stall, and stalls after which the run stops.
GD_DECAY = 0.3
GD_MAX_DECAYS = 2
#: Iterations at most when ``max_iter`` is not given (the stall rule stops far earlier).
GD_MAX_ITERATIONS = 3000
#: Without validation data, the best iterate is judged on this many fixed training rows.
GD_MONITOR_ROWS = 2048


@dataclass
class SolverResult:
    vectors: torch.Tensor
    loss_curve: list[float] = field(default_factory=list)
    validation_curve: list[float] = field(default_factory=list)
    check_every: int = 1
    best_iteration: int = 0
    n_iter: int = 0


def _loss_and_grad(
    vectors: torch.Tensor, Z: torch.Tensor, objective: Objective
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Loss over Z, its gradient with respect to the Householder vectors, and U.

    Both parts use closed-form gradients (the loss's and the WY product's): no autograd graph.
    """
    U, vjp = reflections_rotation_vjp(vectors)
    with torch.no_grad():
        value, G = objective.value_and_grad(Z @ U.T)
        grad_U = G.T @ Z  # d loss / d U, since Zr = Z U^T
    return float(value), vjp(grad_U), U


class _Monitor:
    """Records the curves and keeps the iterate with the lowest loss on a monitored set:
    the validation data when given, else (``fallback``) the training losses."""

    def __init__(self, Z_val: torch.Tensor | None, objective: Objective, callback) -> None:
        self.Z_val, self.objective, self.callback = Z_val, objective, callback
        self.result = SolverResult(vectors=torch.empty(0))
        self.best = math.inf

    def check(self, iteration: int, vectors: torch.Tensor, U: torch.Tensor, Z_mon) -> float:
        """Evaluate the monitored loss of an iterate and keep it if it is the best."""
        with torch.no_grad():
            value = float(self.objective.value(Z_mon @ U.T))
        self.keep_if_best(iteration, vectors, value)
        return value

    def keep_if_best(self, iteration: int, vectors: torch.Tensor, value: float) -> None:
        if value < self.best:
            self.best = value
            self.result.vectors = vectors.detach().clone()
            self.result.best_iteration = iteration

    def step(self, iteration: int, train_loss: float, val: float | None) -> bool:
        """Record one iteration; return True when the callback asks to stop."""
        self.result.loss_curve.append(train_loss)
        if val is not None and self.Z_val is not None:
            self.result.validation_curve.append(val)
        self.result.n_iter = iteration
        return bool(self.callback(iteration, train_loss, val)) if self.callback else False


class _Plateau:
    """The learning rate of ``gd``: constant until the monitored loss stalls (``patience``
    checks in a row without a relative gain of ``GD_TOLERANCE``), then times ``GD_DECAY``;
    ``stop`` turns True at the stall after ``GD_MAX_DECAYS`` drops."""

    def __init__(self, learning_rate: float, patience: int = GD_PATIENCE) -> None:
        self.lr, self.patience = learning_rate, patience
        self.best, self.stalls, self.decays, self.stop = math.inf, 0, 0, False

    def update(self, value: float) -> None:
        if value < self.best * (1 - GD_TOLERANCE):
            self.best, self.stalls = value, 0
            return
        self.stalls += 1
        if self.stalls >= self.patience:
            self.stalls = 0
            self.stop = self.decays >= GD_MAX_DECAYS
            self.decays += 1
            self.lr *= GD_DECAY


def gd(
    Z: torch.Tensor,
    Z_val: torch.Tensor | None,
    objective: Objective,
    vectors: torch.Tensor,
    *,
    generator: torch.Generator,
    max_iter: int | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    callback: Callback | None = None,
) -> SolverResult:
    """Momentum descent on random batches, with the learning rate dropped at each stall of
    the monitored loss; returns the best iterate checked.

    ``loss_curve[i]`` is the batch loss at iterate i (0 = the start); the monitored loss is
    checked at iterates 0, ``GD_CHECK_EVERY``, 2 * ``GD_CHECK_EVERY``, ... and the last. The
    run stops at the stall after ``GD_MAX_DECAYS`` drops, or after ``max_iter`` iterations
    (default ``GD_MAX_ITERATIONS``), whichever comes first. ``learning_rate``, ``batch_size``:
    None for the width's defaults (:func:`gd_learning_rate`, :func:`gd_batch_size`).
    """
    n = Z.shape[0]
    max_iter = GD_MAX_ITERATIONS if max_iter is None else max_iter
    batch_size = gd_batch_size(Z.shape[1]) if batch_size is None else batch_size
    Z_mon = Z_val
    if Z_mon is None:
        Z_mon = Z if n <= GD_MONITOR_ROWS else Z[_sample(n, GD_MONITOR_ROWS, generator, Z)]
    x = vectors.detach().clone()
    velocity = torch.zeros_like(x)
    monitor = _Monitor(Z_val, objective, callback)
    monitor.result.check_every = GD_CHECK_EVERY
    k = Z.shape[1]
    lr = gd_learning_rate(k) if learning_rate is None else learning_rate
    schedule = _Plateau(lr, gd_patience(k))
    batches = _Batches(n, batch_size, generator, Z)
    for iteration in range(max_iter + 1):
        f, g, U = _loss_and_grad(x, batches.next(Z), objective)
        val = None
        if iteration % GD_CHECK_EVERY == 0 or iteration == max_iter:
            val = monitor.check(iteration, x, U, Z_mon)
            schedule.update(val)
        if monitor.step(iteration, f, val) or iteration == max_iter or schedule.stop:
            break
        velocity.mul_(GD_MOMENTUM).add_(g)
        x.sub_(velocity, alpha=schedule.lr)  # the monitor keeps copies, not this tensor
    return monitor.result


def gd_learning_rate(n_bits: int) -> float:
    """Starting learning rate of ``gd``: 0.5, or 0.2 from ``GD_WIDE_BITS`` bits."""
    return GD_WIDE_LEARNING_RATE if n_bits >= GD_WIDE_BITS else GD_LEARNING_RATE


def gd_patience(n_bits: int) -> int:
    """Checks without gain that make a stall: 2, or 4 from ``GD_WIDE_BITS`` bits."""
    return GD_WIDE_PATIENCE if n_bits >= GD_WIDE_BITS else GD_PATIENCE


def gd_batch_size(n_bits: int) -> int:
    """Rows per step of ``gd`` for codes of ``n_bits``: 8 per bit, within [512, 2048]."""
    return min(GD_MAX_BATCH_SIZE, max(GD_BATCH_SIZE, GD_BATCH_PER_BIT * n_bits))


class _Batches:
    """Random batches of rows: all of ``Z`` when it has at most ``size`` rows, else ``size``
    rows drawn with replacement, their indices drawn for ``_BATCH_DRAWS`` steps at a time (one
    call to the generator instead of one per step)."""

    def __init__(self, n: int, size: int, generator: torch.Generator, like: torch.Tensor) -> None:
        self.n, self.size, self.generator, self.like = n, size, generator, like
        self.drawn, self.used = torch.empty(0, size, dtype=torch.long), 0

    def next(self, Z: torch.Tensor) -> torch.Tensor:
        if self.n <= self.size:
            return Z
        if self.used == len(self.drawn):
            self.drawn = _sample(self.n, _BATCH_DRAWS * self.size, self.generator, self.like)
            self.drawn, self.used = self.drawn.view(_BATCH_DRAWS, self.size), 0
        self.used += 1
        return torch.index_select(Z, 0, self.drawn[self.used - 1])


_BATCH_DRAWS = 32


def _sample(n: int, size: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``size`` row indices drawn uniformly with replacement, on ``like``'s device."""
    return torch.randint(0, n, (size,), generator=generator).to(like.device)


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
            loss = objective.value(batch @ reflections_rotation(V).T)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        val = None
        if Z_val is not None:
            with torch.no_grad():
                U = reflections_rotation(V.detach())
            val = monitor.check(epoch, V.detach(), U, Z_val)
        else:  # no validation: the epoch with the lowest mean batch loss
            monitor.keep_if_best(epoch, V.detach(), total / n)
        if monitor.step(epoch, total / n, val):
            break
    return monitor.result


#: Solver names -> functions; the first is the default. Read by the registry.
SOLVERS: dict[str, Callable[..., SolverResult]] = {"gd": gd, "paper": sgd}
