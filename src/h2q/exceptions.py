"""Exceptions raised by h2q."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """Raised when a quantizer is used before ``fit``.

    Subclasses both ``ValueError`` and ``AttributeError`` (the scikit-learn convention), so
    code that catches either keeps working.
    """


class FileFormatError(ValueError):
    """Raised when a saved h2q file is truncated, corrupted, of another kind or version."""
