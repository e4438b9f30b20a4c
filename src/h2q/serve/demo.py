"""``h2q serve --demo``: the main job's results when present, else a small digits run.

The main job is ``h2q reproduce`` with its default ``--out results``; when ``results/`` (or
the folder given) holds a finished lambda = 0 run and its kept quantizers, the demo serves
them. Otherwise it runs a small grid on scikit-learn's digits (one method, 16 bits, the
lambda = 0 run with its sign, ITQ and H²Q cells; a few seconds on a CPU) into a cache folder,
reused by later calls, and serves that.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .engine import Catalog
from .loading import load_results, served_rows

__all__ = ["demo_catalog", "demo_dir"]

logger = logging.getLogger(__name__)

DEMO_BITS = 16


def demo_dir() -> Path:
    """``$H2Q_CACHE_DIR/serve-demo``, else ``$XDG_CACHE_HOME/h2q/serve-demo``, else ``~/.cache``."""
    root = os.environ.get("H2Q_CACHE_DIR")
    if root:
        return Path(root) / "serve-demo"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "h2q" / "serve-demo"


def _fit_digits(out: Path, progress: bool) -> None:
    from ..experiments.config import get_config
    from ..experiments.grid import run_grid

    config = get_config("quick", bits=(DEMO_BITS,), rows=served_rows())
    run_grid(config, out, device="cpu", progress=progress, threads=1)


def demo_catalog(
    results: str | os.PathLike | None = "results",
    *,
    kind: str = "flat",
    cache: str | os.PathLike | None = None,
    progress: bool = False,
) -> Catalog:
    """The demo's catalog (see the module notes).

    Parameters
    ----------
    results : path-like, optional
        Results folder of the main job to try first (None: go straight to digits).
    kind : {"flat", "mih", "asymmetric"}
    cache : path-like, optional
        Folder of the digits run (default :func:`demo_dir`).
    progress : bool
        Show the digits run's progress bar.
    """
    if results is not None and (Path(results) / "grid.json").is_file():
        try:
            return load_results(results, kind=kind)
        except (FileNotFoundError, ValueError) as exc:
            logger.warning("not serving %s: %s; using the digits demo", results, exc)
    out = Path(cache) if cache is not None else demo_dir()
    _fit_digits(out, progress)
    return load_results(out, kind=kind)
