"""Image preprocessing in plain torch, on whatever device the pixels are on.

Every backbone turns the pixels h2q's data sets hold (uint8, ``(n, H, W)`` grey or
``(n, H, W, 3)`` RGB, channels last) into the float ``(n, C, S, S)`` tensor its network takes.
The steps are torch operations, so they run on the GPU when the batch is there, and they need
no torchvision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "center_crop",
    "resize",
    "resize_shorter_side",
    "to_channels_first",
]

#: ImageNet channel means and standard deviations on the 0..1 scale (torchvision's values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_channels_first(images: Tensor, channels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixels as a float ``(n, channels, H, W)`` tensor on the 0..255 scale.

    Parameters
    ----------
    images : tensor
        ``(n, H, W)`` grey, ``(n, H, W, 1|3)`` channels last, or already ``(n, 1|3, H, W)``
        channels first (recognised when dimension 1 has size 1 or 3 and the last does not),
        any numeric dtype, values on the 0..255 scale.
    channels : {1, 3}
        Channels wanted: grey images are repeated to 3 channels; RGB images become grey by
        the ITU-R 601 luma weights when 1 is wanted.
    dtype : torch.dtype, default float32
        Floating dtype of the result.

    Returns
    -------
    tensor of shape (n, channels, H, W), ``dtype``, on the device of ``images``.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}.")
    if images.ndim == 3:
        x = images.unsqueeze(1)
    elif images.ndim == 4:
        if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            x = images.permute(0, 3, 1, 2)
        elif images.shape[1] in (1, 3):
            x = images
        else:
            raise ValueError(
                f"images of shape {tuple(images.shape)} have neither 1 nor 3 channels; pass "
                "(n, H, W) grey or (n, H, W, 3) RGB pixels."
            )
    else:
        raise ValueError(
            f"images must be (n, H, W) or (n, H, W, 3), got shape {tuple(images.shape)}."
        )
    x = x.to(dtype)
    if x.shape[1] == channels:
        return x.contiguous()
    if channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=dtype, device=x.device)
        return (x * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    raise ValueError(f"channels must be 1 or 3, got {channels!r}.")


def resize(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(n, C, H, W)`` to ``size`` (antialiased when shrinking)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    # Note: antialias only matters (and is only supported on every backend) when shrinking.
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrink)


def resize_shorter_side(x: Tensor, size: int) -> Tensor:
    """Resize ``(n, C, H, W)`` so that its shorter side is ``size``, keeping the aspect ratio."""
    h, w = x.shape[-2:]
    if h <= w:
        new = (size, max(1, int(size * w / h)))
    else:
        new = (max(1, int(size * h / w)), size)
    return resize(x, new)


def center_crop(x: Tensor, size: int) -> Tensor:
    """Central ``size`` x ``size`` window of ``(n, C, H, W)`` (torchvision's rounding)."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from images of {h}x{w}; resize first.")
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]
