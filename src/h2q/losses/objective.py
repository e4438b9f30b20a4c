"""The quantization strategies of the H²Q paper around any stage-1 similarity loss."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .hswd import HSWDPenalty

__all__ = ["HSWD", "HSWD_WEIGHT", "LAMBDA0", "PENALTY", "STRATEGIES", "HashingObjective"]

Strategy = Literal["lambda0", "penalty", "hswd"]
#: Names of the quantization strategies: lambda = 0 (H²Q stage 1), the method's own penalty
#: (the paper's "+lambda"), the HSWD penalty ("+HSWD").
LAMBDA0: Strategy = "lambda0"
PENALTY: Strategy = "penalty"
HSWD: Strategy = "hswd"
#: The quantization strategies, in the order of the paper's tables (the one list of names).
STRATEGIES: tuple[Strategy, ...] = (LAMBDA0, PENALTY, HSWD)
#: Weight of the HSWD term in the ``"hswd"`` strategy (the "+HSWD" rows), the paper's.
HSWD_WEIGHT = 0.1


class HashingObjective(nn.Module):
    r"""Similarity loss + quantization strategy: what the training loop minimises.

    Three strategies, with ``u`` the raw outputs of the hash layer:

    ``"lambda0"`` (H²Q stage 1, the default)
        :math:`L(u)`: the similarity term only, on the raw outputs. No tanh, no penalty term
        at all (not even a zero-weighted one). Codes are ``sign(u)``.
    ``"penalty"`` (the paper's "+lambda" baseline)
        :math:`L(h) + \lambda\, Q(h)` with :math:`h = a(u)` the loss's activation: ``tanh(u)``,
        or HashNet's continuation ``tanh(beta u)`` (its :meth:`activation`). :math:`Q` is the
        method's own penalty (``similarity_loss.penalty``). By default (``penalty_on="activation"``)
        the penalty sees the same tanh outputs as the similarity term: this is how the
        original DHN, DCH and HashNet hash layers are built (tanh codes) and how the H²Q
        experiments that produced the "+lambda" rows compute it, so the penalty and the
        similarity term judge one and the same code. ``penalty_on="raw"`` applies
        :math:`Q` to ``u`` instead (DPSH's and DSH's original, tanh-free formulation); note
        that it then pins :math:`|u|` near 1, i.e. :math:`|h|` near tanh(1) = 0.76. Methods
        without a penalty (HashNet, metric-learning losses) take ``lam=None``.
    ``"hswd"`` (the "+HSWD" baseline)
        :math:`L(u) + w\,\mathrm{HSWD}(u)` with :math:`w` = ``hswd_weight`` = 0.1, no tanh.

    At evaluation the codes are ``sign(output_transform(u)) = sign(u)`` for every strategy;
    :meth:`output_transform` gives the continuous features (used to break Hamming ties) the
    model was trained with: ``u`` itself, or the activation for ``"penalty"``
    (see :attr:`uses_tanh`).

    Parameters
    ----------
    similarity_loss : nn.Module
        A stage-1 loss, ``loss(embeddings, labels) -> scalar`` (any :mod:`h2q.losses` class
        or :class:`~h2q.losses.MetricLearningLoss`). Registered as a submodule, so learnable
        proxies reach the optimiser through ``objective.parameters()``.
    strategy : {"lambda0", "penalty", "hswd"}
    lam : float, optional
        Weight of the method's penalty; required (>= 0) for ``"penalty"`` when the loss has a
        penalty, and must be None (or 0) otherwise.
    penalty_on : {"activation", "raw"}, default "activation"
        Input of the penalty in the ``"penalty"`` strategy.
    hswd_weight : float, default 0.1
        Weight of the HSWD term in the ``"hswd"`` strategy.
    random_state : int or torch.Generator, optional
        Source of HSWD's random ±1 samples.

    Examples
    --------
    >>> objective = HashingObjective(DPSHLoss(n_bits=16))           # doctest: +SKIP
    >>> loss = objective(model(x), y); loss.backward(); objective.step()  # doctest: +SKIP
    """

    def __init__(
        self,
        similarity_loss: nn.Module,
        strategy: Strategy = LAMBDA0,
        lam: float | None = None,
        *,
        penalty_on: Literal["activation", "raw"] = "activation",
        hswd_weight: float = HSWD_WEIGHT,
        random_state: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(similarity_loss, nn.Module):
            raise TypeError(
                f"similarity_loss must be an nn.Module called as loss(embeddings, labels), got "
                f"{type(similarity_loss).__name__}. Build one with h2q.losses.make_loss."
            )
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
        if penalty_on not in ("activation", "raw"):
            raise ValueError(f"penalty_on must be 'activation' or 'raw', got {penalty_on!r}.")
        has_penalty = bool(getattr(similarity_loss, "has_penalty", False))
        name = type(similarity_loss).__name__
        if strategy == PENALTY and has_penalty:
            if lam is None or not lam >= 0:
                raise ValueError(
                    f"strategy='penalty' needs lam >= 0 (the weight of {name}'s quantization "
                    f"penalty), got {lam!r}. The H²Q paper picks it on validation mAP from a "
                    "small grid, e.g. {1, 0.1, 0.01} for DPSH, {1e-5, 1e-3, 0.1} for DHN/DCH."
                )
        elif lam not in (None, 0, 0.0):
            reason = (
                f"{name} has no quantization penalty"
                if strategy == PENALTY
                else f"strategy={strategy!r} uses no lambda-weighted penalty"
            )
            raise ValueError(
                f"lam={lam!r} was given but {reason}. Drop lam, or use strategy='penalty' with a "
                "loss that has a penalty."
            )
        if strategy == HSWD and not hswd_weight >= 0:
            raise ValueError(f"hswd_weight must be non-negative, got {hswd_weight!r}.")
        self.similarity_loss = similarity_loss
        self.strategy = strategy
        self.lam = None if lam is None else float(lam)
        self.penalty_on = penalty_on
        self.hswd_weight = float(hswd_weight)
        self.hswd = HSWDPenalty(random_state) if strategy == HSWD else None

    @property
    def uses_tanh(self) -> bool:
        """Whether outputs go through the (tanh) activation, in training and evaluation."""
        return self.strategy == PENALTY

    def output_transform(self, embeddings: Tensor) -> Tensor:
        """Continuous features the model was trained with: ``u``, or its tanh activation."""
        if self.uses_tanh:
            return self._activation(embeddings)
        return embeddings

    def _activation(self, embeddings: Tensor) -> Tensor:
        activation = getattr(self.similarity_loss, "activation", None)
        return torch.tanh(embeddings) if activation is None else activation(embeddings)

    def terms(self, embeddings: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """The objective's terms, for logging: ``similarity``, then ``penalty`` or ``hswd``
        when the strategy has one (unweighted), and ``total`` (what :meth:`forward` returns)."""
        if self.strategy == LAMBDA0:
            similarity = self.similarity_loss(embeddings, labels)
            return {"similarity": similarity, "total": similarity}
        if self.strategy == HSWD:
            assert self.hswd is not None
            similarity = self.similarity_loss(embeddings, labels)
            hswd = self.hswd(embeddings)
            return {
                "similarity": similarity,
                "hswd": hswd,
                "total": similarity + self.hswd_weight * hswd,
            }
        h = self._activation(embeddings)
        similarity = self.similarity_loss(h, labels)
        if not getattr(self.similarity_loss, "has_penalty", False) or not self.lam:
            return {"similarity": similarity, "total": similarity}
        penalty = self.similarity_loss.penalty(h if self.penalty_on == "activation" else embeddings)
        return {
            "similarity": similarity,
            "penalty": penalty,
            "total": similarity + self.lam * penalty,
        }

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Scalar objective for a batch of raw outputs (n_samples, n_bits) and their labels."""
        return self.terms(embeddings, labels)["total"]

    def set_iteration(self, iteration: int) -> None:
        """Forward the training iteration to the loss (drives HashNet's continuation)."""
        hook = getattr(self.similarity_loss, "set_iteration", None)
        if hook is not None:
            hook(iteration)

    def step(self) -> None:
        """Advance the loss's schedule by one iteration; call once per optimiser step."""
        hook = getattr(self.similarity_loss, "step", None)
        if hook is not None:
            hook()

    def extra_repr(self) -> str:
        parts = [f"strategy={self.strategy!r}"]
        if self.strategy == PENALTY:
            parts += [f"lam={self.lam}", f"penalty_on={self.penalty_on!r}"]
        if self.strategy == HSWD:
            parts.append(f"hswd_weight={self.hswd_weight}")
        return ", ".join(parts)
