"""h2q: deep hashing with Householder quantization."""

from ._version import __version__

__all__ = ["__version__"]
