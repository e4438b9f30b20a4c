"""A checksum of a fitted quantizer's content, stored with exported codes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from ..exceptions import NotFittedError
from ..quantizers import BaseQuantizer

#: Fitted arrays that decide a quantizer's codes.
_CODE_ARRAYS = ("rotation_", "mean_", "components_")


def quantizer_checksum(quantizer: BaseQuantizer) -> str:
    """SHA-256 (hex) of what decides a fitted quantizer's codes.

    The checksum covers the class name, ``n_features_in_``, ``n_bits_`` and the bytes of
    ``rotation_``, ``mean_`` and ``components_`` (float64, little-endian). It is the same for a
    quantizer and for the file it was saved to once loaded (unlike a hash of the ``.npz``
    bytes, which also covers zip timestamps), and it changes when any of those arrays does.

    Raises
    ------
    TypeError
        When ``quantizer`` is not an h2q quantizer.
    h2q.NotFittedError
        When it is not fitted.
    """
    if not isinstance(quantizer, BaseQuantizer):
        raise TypeError(
            f"expected a fitted h2q quantizer, got {type(quantizer).__name__}. Load one with "
            "h2q.load_quantizer(path)."
        )
    if not hasattr(quantizer, "rotation_"):
        raise NotFittedError(
            f"This {type(quantizer).__name__} is not fitted yet. Call fit(X) first, or load a "
            "fitted one with h2q.load_quantizer(path)."
        )
    digest = hashlib.sha256()
    head: dict[str, Any] = {
        "kind": type(quantizer).__name__,
        "n_features_in_": int(quantizer.n_features_in_),
        "n_bits_": int(quantizer.n_bits_),
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for name in _CODE_ARRAYS:
        value = getattr(quantizer, name, None)
        digest.update(name.encode())
        if value is not None:
            array = np.ascontiguousarray(np.asarray(value, dtype="<f8"))
            digest.update(repr(array.shape).encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def quantizer_n_bits(quantizer: BaseQuantizer) -> int:
    """Bits per code of a fitted quantizer (a clear error when it is not one)."""
    quantizer_checksum(quantizer)  # raises TypeError / NotFittedError
    return int(quantizer.n_bits_)
