"""Frozen-backbone features: extract once, cache on disk, reuse.

With a pretrained backbone kept frozen, its features do not change during training, so they
are computed once (batched, ``torch.no_grad``, backbone in eval mode) and only the head on top
is trained (:func:`h2q.training.run_training` with ``frozen=True``). On 2 CPU cores this is
the practical way to use EfficientNet-Lite0 (about 100 images/s at 64 px).

Cache layout: one folder per (backbone settings, data) pair under ``cache_dir``::

    <cache_dir>/<backbone>-<image_size>px-<key[:20]>/
        features.npy   float32 (n_samples, feature_dim), rows in the order of the items
        meta.json      the key, the backbone's settings, the data fingerprint, the shape
        partial/       while extracting: key.txt and one chunk-<start>.npy per finished chunk
                       of rows, so that an interrupted extraction resumes where it stopped
                       (removed once features.npy and meta.json are written)

``key`` is the SHA-256 of the backbone's settings (name, image size, weights file name and
size) and of the data fingerprint (:func:`data_fingerprint`: number of items, labels
fingerprint, hash of the image bytes). Both files are written atomically, ``meta.json`` last,
so a folder with a ``meta.json`` is complete; a damaged entry is recomputed. The default
``cache_dir`` is ``$H2Q_CACHE_DIR/features``, else ``$XDG_CACHE_HOME/h2q/features``, else
``~/.cache/h2q/features``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import _cache
from ._io import atomic_write, save_npy
from ._validation import check_positive_int
from ._version import __version__
from .data.dataset import labels_fingerprint

__all__ = [
    "CachedFeatures",
    "cached_features",
    "data_fingerprint",
    "default_cache_dir",
    "extract_features",
    "feature_cache_key",
]

logger = logging.getLogger(__name__)

#: Version of the cache's layout and of how features are extracted (format 2: channels-last
#: batches); a change makes old entries misses.
CACHE_FORMAT = 2
#: Batches per saved chunk of an extraction (a multiple of the batch size, so that the batches
#: are those of one uninterrupted pass): 2,048 images at the default batch size, a few seconds
#: of EfficientNet-Lite0 at 64 px, the most an interruption loses.
CHUNK_BATCHES = 64


def default_cache_dir() -> Path:
    """``$H2Q_CACHE_DIR/features``, else ``$XDG_CACHE_HOME/h2q/features``, else ``~/.cache/...``."""
    return _cache.cache_dir("features")


def data_fingerprint(items: Any, y: np.ndarray) -> str:
    """SHA-256 of a set of items and their labels, for cache keys.

    Parameters
    ----------
    items : numpy.ndarray or object with a ``fingerprint()`` method
        In-memory items (their shape, dtype and bytes are hashed), or a lazy image source such
        as :class:`h2q.training.ImageFiles` (which hashes its file paths, sizes and
        modification times instead of reading every file).
    y : numpy.ndarray
        Labels, class ids ``(n,)`` or multi-hot ``(n, n_classes)``.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    digest.update(f"n={len(y)};labels={labels_fingerprint(y)};".encode())
    fingerprint = getattr(items, "fingerprint", None)
    if callable(fingerprint):
        digest.update(str(fingerprint()).encode())
    else:
        arr = np.ascontiguousarray(items)
        digest.update(f"{arr.dtype.str};{arr.shape};".encode())
        digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def feature_cache_key(backbone_config: dict[str, Any], fingerprint: str) -> str:
    """SHA-256 of the backbone's settings, the data fingerprint and the cache format."""
    payload = json.dumps(
        {"format": CACHE_FORMAT, "backbone": backbone_config, "data": fingerprint},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _resolve_device(device: str | torch.device | None, module: nn.Module) -> torch.device:
    if device is not None:
        return torch.device(device)
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def extract_features(
    backbone: nn.Module,
    items: Any,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Features of ``items`` under ``backbone``, in batches, without gradients.

    The backbone is put in eval mode (batch-norm statistics and dropout frozen) and restored
    to its previous mode afterwards. Image batches (4-D) run in the channels-last memory
    layout, whose convolutions oneDNN runs faster on CPUs (EfficientNet-Lite0 at 64 px: about
    1.4x with 1 thread, ``benchmarks/bench_extract.py``); the weights get their layout back
    afterwards.

    Parameters
    ----------
    backbone : nn.Module
        A backbone with ``preprocess`` and ``forward`` (see :mod:`h2q.models`).
    items : numpy.ndarray or indexable
        Raw items (e.g. uint8 pixels ``(n, H, W)``), or a lazy source where ``items[idx]``
        with an index array returns such an array.
    batch_size : int, default 32
    device : str or torch.device, optional
        Where to run; default the backbone's device. The backbone is moved there.
    progress : bool, default False
        Show a tqdm bar.

    Returns
    -------
    numpy.ndarray of float32, shape (n_samples, feature_dim)
    """
    check_positive_int(batch_size, "batch_size")
    n = len(items)
    if n == 0:
        raise ValueError("no items to extract features from.")
    device = _resolve_device(device, backbone)
    backbone.to(device)
    was_training = backbone.training
    backbone.eval()
    preprocess = getattr(backbone, "preprocess", None)
    out: np.ndarray | None = None
    backbone.to(memory_format=torch.channels_last)
    try:
        with (
            torch.no_grad(),
            tqdm(total=n, disable=not progress, desc="features", unit="img", leave=False) as bar,
        ):
            for start in range(0, n, batch_size):
                idx = np.arange(start, min(start + batch_size, n))
                x = torch.as_tensor(np.asarray(items[idx])).to(device)
                if preprocess is not None:
                    x = preprocess(x)
                if x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                f = backbone(x).float().cpu().numpy()
                if out is None:
                    out = np.empty((n, f.shape[1]), dtype=np.float32)
                out[start : start + len(idx)] = f
                bar.update(len(idx))
    finally:
        backbone.to(memory_format=torch.contiguous_format)
        backbone.train(was_training)
    assert out is not None
    return out


class CachedFeatures(NamedTuple):
    """Result of :func:`cached_features`."""

    features: np.ndarray
    """float32 (n_samples, feature_dim)."""
    path: Path
    """The cache folder of this entry."""
    hit: bool
    """True when the features were read from the cache, False when computed (and stored)."""


def cached_features(
    backbone: nn.Module,
    items: Any,
    y: np.ndarray,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> CachedFeatures:
    """Features of ``items`` from the cache, or extracted and stored there.

    Parameters
    ----------
    backbone : nn.Module
        A backbone with ``config()`` (its settings; the cache key depends on them).
    items : numpy.ndarray or lazy source
        As in :func:`extract_features`; fingerprinted by :func:`data_fingerprint`.
    y : numpy.ndarray
        Labels of the items (part of the key).
    cache_dir : path-like, optional
        Root of the cache; default :func:`default_cache_dir`. Created if missing.
    batch_size, device, progress
        As in :func:`extract_features`.

    Returns
    -------
    CachedFeatures
    """
    y = np.asarray(y)
    if len(items) != len(y):
        raise ValueError(f"{len(items)} items but {len(y)} labels; pass one label per item.")
    config_fn = getattr(backbone, "config", None)
    config = config_fn() if callable(config_fn) else {"name": type(backbone).__name__}
    key = feature_cache_key(config, data_fingerprint(items, y))
    name = str(config.get("name", "backbone"))
    size = config.get("image_size")
    folder_name = f"{name}-{size}px-{key[:20]}" if size else f"{name}-{key[:20]}"
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / folder_name
    features = _read_entry(folder, key, len(y))
    if features is not None:
        logger.info("feature cache hit: %s", folder)
        return CachedFeatures(features, folder, True)
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / f".{folder_name}.lock"):  # one extraction per entry at a time
        features = _read_entry(folder, key, len(y))  # another process may have just made it
        if features is not None:
            logger.info("feature cache hit after waiting for another process: %s", folder)
            return CachedFeatures(features, folder, True)
        logger.info("feature cache miss: extracting %d items with %s", len(y), name)
        features = _extract_entry(
            backbone, config, items, folder, key, batch_size, device, progress
        )
    return CachedFeatures(features, folder, False)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created when missing) for the body.

    Note: two processes that extract the same entry at once would share its ``partial/``
    folder, and the first to finish deletes it under the other; the second waits here instead.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            # Removed before release, so that the cache holds only its entries; a process
            # still waiting on it then finds the entry written (or extracts it itself).
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _extract_entry(
    backbone: Any,
    config: dict[str, Any],
    items: Any,
    folder: Path,
    key: str,
    batch_size: int,
    device: Any,
    progress: bool,
) -> np.ndarray:
    """Extract the features of a cache entry and write it (features, then its meta.json)."""
    extract = functools.partial(
        extract_features, backbone, batch_size=batch_size, device=device, progress=False
    )
    features = _extract_in_chunks(extract, items, folder / "partial", key, batch_size, progress)
    save_npy(folder / "features.npy", features)
    meta = {
        "key": key,
        "backbone": config,
        "n_samples": int(features.shape[0]),
        "feature_dim": int(features.shape[1]),
        "format": CACHE_FORMAT,
        "h2q_version": __version__,
    }
    atomic_write(folder / "meta.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
    shutil.rmtree(folder / "partial", ignore_errors=True)
    return features


class _Rows:
    """Rows ``start:stop`` of an indexable source of items (``items[idx]`` with index arrays)."""

    def __init__(self, items: Any, start: int, stop: int) -> None:
        self.items, self.start, self.stop = items, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, idx: np.ndarray) -> Any:
        return self.items[np.asarray(idx) + self.start]


def _extract_in_chunks(
    extract: Any, items: Any, partial: Path, key: str, batch_size: int, progress: bool
) -> np.ndarray:
    """Extract chunk by chunk, saving each; chunks a previous, interrupted call saved are read."""
    n = len(items)
    if (partial / "key.txt").is_file() and (partial / "key.txt").read_text() != key:
        shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    atomic_write(partial / "key.txt", lambda f: f.write(key.encode()))
    chunk = batch_size * CHUNK_BATCHES
    parts = []
    with tqdm(total=n, disable=not progress, desc="features", unit="img", leave=False) as bar:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            path = partial / f"chunk-{start:010d}.npy"
            part = _read_chunk(path, stop - start)
            if part is None:
                part = extract(_Rows(items, start, stop))
                save_npy(path, part)
            parts.append(part)
            bar.update(stop - start)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _read_chunk(path: Path, rows: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        part = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = part.ndim == 2 and part.shape[0] == rows and part.dtype == np.float32
    return part if ok else None


def _read_entry(folder: Path, key: str, n: int) -> np.ndarray | None:
    meta_path, feat_path = folder / "meta.json", folder / "features.npy"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        features = np.load(feat_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        logger.warning("damaged feature cache entry %s (%s); recomputing", folder, exc)
        return None
    if (
        meta.get("key") != key
        or features.ndim != 2
        or features.shape[0] != n
        or features.dtype != np.float32
    ):
        logger.warning("feature cache entry %s does not match; recomputing", folder)
        return None
    return features
