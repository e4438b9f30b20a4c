"""Precision of an MLP's matrix products: float32, or bfloat16 where the CPU computes it natively.

The hidden layers of an MLP head over frozen features hold most of a stage-1 run's arithmetic
(1280 x 512 in the main job). On a CPU with native bfloat16 dot products (AVX-512 BF16 or AMX)
those products run about 2.2x faster in bfloat16 with float32 accumulation. Only the products
change: the weights, their gradients, Adam's state, batch norm, the hash layer and the loss stay
float32, and each product's output is cast back to float32.

:data:`PRECISIONS` names the choices; :func:`resolve_precision` turns ``"auto"`` into the one a
device should use; :class:`PrecisionLinear` is the linear layer that honours it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PRECISIONS",
    "PrecisionLinear",
    "check_precision",
    "native_bfloat16",
    "resolve_precision",
]

#: ``"float32"``; ``"bfloat16"`` (products in bfloat16, float32 accumulation and outputs);
#: ``"auto"``: bfloat16 on a CPU with native bfloat16 dot products, else float32.
PRECISIONS = ("float32", "bfloat16", "auto")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (AVX-512 BF16 or AMX).

    Note: elsewhere torch emulates them, often slower than float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"float32"`` or ``"bfloat16"``: ``precision``, with ``"auto"`` decided for ``device``
    (bfloat16 only on a CPU with :func:`native_bfloat16`)."""
    check_precision(precision)
    if precision != "auto":
        return precision
    native = torch.device(device).type == "cpu" and native_bfloat16()
    return "bfloat16" if native else "float32"


def check_precision(precision: object) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    return str(precision)


class PrecisionLinear(nn.Linear):
    """``nn.Linear`` whose product runs in ``precision`` (``"float32"`` or ``"bfloat16"``).

    Parameters and state dict are those of ``nn.Linear`` (float32), so checkpoints load into
    either. In bfloat16 the input, weight and bias are cast for the product and the output is
    cast back to float32; autograd casts the gradients back the same way.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, precision: str = "float32"
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if precision not in _DTYPES:
            raise ValueError(
                f"precision must be float32 or bfloat16 (resolve 'auto' first with "
                f"resolve_precision); got {precision!r}."
            )
        self.precision = precision

    def forward(self, x: Tensor) -> Tensor:
        if self.precision == "float32":
            return super().forward(x)
        dtype = _DTYPES[self.precision]
        bias = None if self.bias is None else self.bias.to(dtype)
        return F.linear(x.to(dtype), self.weight.to(dtype), bias).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, precision={self.precision}"
