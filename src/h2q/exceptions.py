"""Exceptions raised by h2q."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """Raised when a quantizer is used before ``fit``.

    Subclasses both ``ValueError`` and ``AttributeError`` (the scikit-learn convention), so
    code that catches either keeps working.
    """


class FileFormatError(ValueError):
    """Raised when a saved h2q file is truncated, corrupted, of another kind or version."""


def extra_missing(what: str, packages: str, extra: str, after: str = "") -> ImportError:
    """The ``ImportError`` for a piece of h2q whose optional extra is not installed.

    Its message: ``"{what} needs {packages}, which are not installed. Install the extra:
    pip install 'h2q[{extra}]'{after}."``
    """
    return ImportError(
        f"{what} needs {packages}, which are not installed. Install the extra: "
        f"pip install 'h2q[{extra}]'{after}."
    )
