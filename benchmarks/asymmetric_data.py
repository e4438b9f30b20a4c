"""Data sets of the asymmetric-scoring benchmark, built from installed sources and cached.

Each builder returns a dict of float32 arrays: ``fit`` (rows a quantizer is fitted on),
``query`` and ``database`` (searched), plus ``y_query`` / ``y_database`` when labelled. The
results are cached as ``.npz`` files under ``cache_dir`` (written to a temp file, then
renamed), so a repeated run loads them.

- :func:`wordnet_minilm`: all-MiniLM-L6-v2 embeddings (384-d, unit length) of WordNet glosses
  (nouns and verbs), split with the ``"wordnet"`` scheme (seed 0) and the database fold capped
  so that ``train + val + database`` holds ``n_database`` items (58,000 by default); queries
  are the 2,000 ``query`` items. Only the texts of those folds are embedded.
- :func:`fashion_effnet`: EfficientNet-Lite0 pooled features (1280-d) of a seeded subset of
  Fashion-MNIST, from the project's feature cache (:mod:`h2q.features`).
- :func:`tiled`: ``n`` database rows made from a base set, tiled with Gaussian noise and
  renormalised (the speed set).
- :func:`synthetic`: a small clustered Gaussian set (tests and ``--quick`` without data).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]


def cached(path: Path, build: Callable[[], Arrays]) -> Arrays:
    """Load ``path`` (.npz) when it exists, else ``build()`` it and save it atomically.

    Parameters
    ----------
    path : Path
        Cache file.
    build : callable
        Returns the arrays to cache.

    Returns
    -------
    dict of numpy.ndarray
    """
    if path.is_file():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def wordnet_minilm(cache_dir: Path, n_database: int = 58_000, seed: int = 0) -> Arrays:
    """MiniLM embeddings of WordNet glosses: 2,000 queries, ``n_database`` database rows.

    Parameters
    ----------
    cache_dir : Path
        Folder for the result and the embedding chunks (resumable).
    n_database : int
        ``train + val + database`` rows (the database fold is capped to fit).
    seed : int
        Seed of the split.

    Returns
    -------
    dict
        ``fit`` (10,000, 384) train rows, ``query`` (2,000, 384), ``database``
        (n_database, 384): train, val then database fold, each float32, unit length.
    """

    def build() -> Arrays:
        from h2q.data import load_dataset, make_split
        from h2q.text import embed_texts

        data = load_dataset("wordnet")
        split = make_split(data, "wordnet", random_state=seed, max_database=None)
        cap = n_database - len(split.train) - len(split.val)
        split = make_split(data, "wordnet", random_state=seed, max_database=cap)
        db = np.concatenate([split.train, split.val, split.database])
        order = np.concatenate([split.query, db])
        texts = [data.X[i] for i in order]
        X = embed_texts(texts, cache_dir=cache_dir / "minilm-chunks", n_threads=2)
        nq = len(split.query)
        return {"fit": X[nq : nq + len(split.train)], "query": X[:nq], "database": X[nq:]}

    return cached(cache_dir / f"wordnet-minilm-{n_database}-s{seed}.npz", build)


def fashion_effnet(cache_dir: Path, n_items: int = 12_000, n_query: int = 1_000,
                   seed: int = 0, image_size: int = 64) -> Arrays:  # fmt: skip
    """EfficientNet-Lite0 features (1280-d) of a seeded subset of Fashion-MNIST.

    Parameters
    ----------
    cache_dir : Path
        Folder for the result.
    n_items : int
        Images drawn (queries included).
    n_query : int
        Of those, the queries; the rest is the database (and the fit set).
    seed : int
        Seed of the draw.
    image_size : int
        Side the images are resized to before the backbone.

    Returns
    -------
    dict
        ``fit`` = ``database`` (n_items - n_query, 1280), ``query`` (n_query, 1280), float32,
        plus ``y_query`` / ``y_database``.
    """

    def build() -> Arrays:
        from h2q.data import load_dataset
        from h2q.features import extract_features

        data = load_dataset("fashion-mnist")
        idx = np.sort(np.random.default_rng(seed).choice(len(data), n_items, replace=False))
        F = np.asarray(extract_features(data, idx, image_size=image_size), dtype=np.float32)
        perm = np.random.default_rng(seed + 1).permutation(n_items)
        q, d = perm[:n_query], perm[n_query:]
        y = np.asarray(data.y)[idx]
        return {"fit": F[d], "query": F[q], "database": F[d], "y_query": y[q], "y_database": y[d]}

    return cached(cache_dir / f"fashion-effnet-{n_items}-{image_size}-s{seed}.npz", build)


def tiled(base: np.ndarray, n: int, noise: float = 0.3, seed: int = 0,
          chunk: int = 100_000) -> np.ndarray:  # fmt: skip
    """``n`` unit rows: the rows of ``base`` repeated, each copy plus Gaussian noise.

    Parameters
    ----------
    base : numpy.ndarray
        ``(m, d)`` float rows.
    n : int
        Rows wanted.
    noise : float
        Noise norm relative to a unit row (per coordinate ``noise / sqrt(d)``).
    seed : int
        Seed of the noise.
    chunk : int
        Rows made at a time.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, d)``, unit length.
    """
    rng = np.random.default_rng(seed)
    m, d = base.shape
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = base[np.arange(start, stop) % m].astype(np.float32)
        rows += rng.standard_normal((stop - start, d), dtype=np.float32) * (noise / np.sqrt(d))
        out[start:stop] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def synthetic(n_database: int = 3_000, n_query: int = 100, d: int = 64, n_clusters: int = 20,
              seed: int = 0) -> Arrays:  # fmt: skip
    """A clustered Gaussian set, unit length (rows near one of ``n_clusters`` centres).

    Returns
    -------
    dict
        ``fit`` = ``database`` (n_database, d), ``query`` (n_query, d), float32.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d))
    X = centres[rng.integers(0, n_clusters, n_database + n_query)]
    X = X + 0.7 * rng.standard_normal(X.shape)
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    return {"fit": X[n_query:], "query": X[:n_query], "database": X[n_query:]}


def stage1(cache_dir: Path, dataset: str = "fashion-mnist", bits: int = 64, epochs: int = 5,
           seed: int = 0, threads: int = 2) -> Arrays:  # fmt: skip
    """Stage-1 embeddings of a short ``h2q train`` run (DPSH, H²Q's stage 1, ``lambda0``).

    Parameters
    ----------
    cache_dir : Path
        Folder for the run (``stage1-<dataset>-<bits>``) and the result.
    dataset : str
        A labelled image data set (``"fashion-mnist"``: small CNN from scratch; ``"digits"``).
    bits, epochs, seed, threads
        As ``h2q train --bits --epochs --seed --threads``.

    Returns
    -------
    dict
        ``fit`` (train fold), ``query``, ``database``, ``y_query``, ``y_database``, float32.
    """

    def build() -> Arrays:
        import subprocess
        import sys

        from h2q.embeddings import load_embeddings

        out = cache_dir / f"stage1-{dataset}-{bits}-e{epochs}-s{seed}"
        cmd = [sys.executable, "-m", "h2q.cli.main", "train", "--dataset", dataset,
               "--method", "dpsh", "--bits", str(bits), "--epochs", str(epochs),
               "--seed", str(seed), "--threads", str(threads), "--out", str(out),
               "--no-progress", "--resume"]  # fmt: skip
        subprocess.run(cmd, check=True)
        e = load_embeddings(out / "embeddings.npz", required=("train", "query", "database"))
        keep = ("query", "database", "y_query", "y_database")
        return {"fit": e["train"], **{k: e[k].astype(e[k].dtype) for k in keep}}

    return cached(cache_dir / f"stage1-{dataset}-{bits}-e{epochs}-s{seed}.npz", build)
