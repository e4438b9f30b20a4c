"""HSWD: sliced Wasserstein distance of each output coordinate to a random ±1 sample."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import check_embeddings_tensor

__all__ = ["HSWDPenalty"]


class HSWDPenalty(nn.Module):
    r"""Distributional quantization penalty of the "+HSWD" strategy.

    K. D. Doan, P. Yang and P. Li, "One Loss for Quantization: Deep Hashing with Discrete
    Wasserstein Distributional Matching", CVPR 2022. Each coordinate (bit) j of the batch is
    compared, as a 1-D empirical distribution, with a fresh sample :math:`b_{\cdot j}` of
    independent fair :math:`\pm 1` signs of the same size. In 1-D the optimal transport pairs
    order statistics, so with :math:`u_{(r)j}` and :math:`b_{(r)j}` sorted along the batch

    .. math::

        \mathrm{HSWD}(u) = \frac{1}{k}\sum_{j=1}^{k} W_2^2\big(u_{\cdot j}, b_{\cdot j}\big)
        = \frac{1}{n k}\sum_{j=1}^{k}\sum_{r=1}^{n}\big(u_{(r)j} - b_{(r)j}\big)^2 .

    It pulls every bit toward a balanced ±1 distribution without forcing each entry to its own
    sign. The H²Q paper uses it with weight 0.1 on the raw outputs (no tanh), see
    :class:`~h2q.losses.HashingObjective`.

    Parameters
    ----------
    random_state : int or torch.Generator, optional
        Source of the ±1 samples. An int seeds a private CPU generator (reproducible runs); a
        generator is used as given (its device decides where samples are drawn); ``None`` uses
        torch's global generator on the embeddings' device.
    """

    def __init__(self, random_state: int | torch.Generator | None = None) -> None:
        super().__init__()
        if random_state is not None and not isinstance(random_state, (int, torch.Generator)):
            raise TypeError(
                f"random_state must be an int, a torch.Generator or None, got "
                f"{type(random_state).__name__}."
            )
        self.random_state = random_state
        self._generator: torch.Generator | None = (
            random_state if isinstance(random_state, torch.Generator) else None
        )

    def _random_signs(self, like: Tensor) -> Tensor:
        """Independent fair ±1 signs with the shape, dtype and device of ``like``."""
        if self._generator is None and isinstance(self.random_state, int):
            self._generator = torch.Generator().manual_seed(self.random_state)
        if self._generator is None:
            bits = torch.randint(0, 2, like.shape, device=like.device)
        else:
            bits = torch.randint(
                0, 2, like.shape, generator=self._generator, device=self._generator.device
            )
        return (2 * bits - 1).to(device=like.device, dtype=like.dtype)

    def forward(self, embeddings: Tensor) -> Tensor:
        """Penalty of a batch of outputs, shape (n_samples, n_bits) -> scalar."""
        u = check_embeddings_tensor(embeddings, min_samples=1)
        target = self._random_signs(u)
        u_sorted = torch.sort(u, dim=0).values
        target_sorted = torch.sort(target, dim=0).values
        return (u_sorted - target_sorted).pow(2).mean()

    def extra_repr(self) -> str:
        return f"random_state={self.random_state!r}"
