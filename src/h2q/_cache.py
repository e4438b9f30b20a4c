"""Where h2q keeps its caches: one folder per cache under one root.

The root is ``$H2Q_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/h2q``, else ``~/.cache/h2q``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(name: str) -> Path:
    """The folder of the cache ``name`` (``features``, ``text``, ``serve-demo``) under the root."""
    root = os.environ.get("H2Q_CACHE_DIR")
    if root:
        return Path(root) / name
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "h2q" / name
