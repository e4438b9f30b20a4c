"""Data sets of the asymmetric-scoring benchmark, built from installed sources and cached.

Each builder returns a dict of float32 arrays: ``fit`` (rows a quantizer is fitted on),
``query`` and ``database`` (searched), plus ``y_query`` / ``y_database`` when labelled. The
results are cached as ``.npz`` files under ``cache_dir`` (written to a temp file, then
renamed), so a repeated run loads them.

- :func:`wordnet_minilm`: all-MiniLM-L6-v2 embeddings (384-d, unit length) of WordNet glosses
  (nouns and verbs), split with the ``"wordnet"`` scheme (seed 0) and the database fold capped
  so that ``train + val + database`` holds ``n_database`` items (58,000 by default); queries
  are the 2,000 ``query`` items. Only the texts of those folds are embedded.
- :func:`fashion_effnet`: EfficientNet-Lite0 pooled features (1280-d, 64 px) of the default
  experiment's 17,000 Fashion-MNIST items, from the project's feature cache
  (:mod:`h2q.features`);
- :func:`stage1`: stage-1 embeddings (labelled) of a short ``h2q train`` on those features.
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


def wordnet_minilm(
    cache_dir: Path, n_database: int = 58_000, seed: int = 0, embedded_only: bool = False
) -> Arrays:
    """MiniLM embeddings of WordNet glosses: 2,000 queries, ``n_database`` database rows.

    The texts are embedded in the order query, train, val, database fold, in resumable
    chunks (:func:`h2q.text.embed_texts` with a cache folder).

    Parameters
    ----------
    cache_dir : Path
        Folder for the result and the embedding chunks (resumable).
    n_database : int
        ``train + val + database`` rows (the database fold is capped to fit).
    seed : int
        Seed of the split.
    embedded_only : bool
        Embed nothing: use the chunks already on disk (the leading run of them), so the
        database is cut short where they end. For a time-boxed run; the sizes say so.

    Returns
    -------
    dict
        ``fit`` (10,000, 384) train rows, ``query`` (2,000, 384), ``database``
        (n_database, 384): train, val then database fold, each float32, unit length.
    """
    from h2q.data import load_dataset, make_split

    data = load_dataset("wordnet")
    split = make_split(data, "wordnet", random_state=seed)
    cap = n_database - len(split.train) - len(split.val)
    split = make_split(data, "wordnet", random_state=seed, max_database=cap)
    order = np.concatenate([split.query, split.train, split.val, split.database])
    texts = [data.X[i] for i in order]
    nq, nf = len(split.query), len(split.train)
    if embedded_only:
        X = _embedded_chunks(texts, cache_dir / "minilm-chunks")
        return {"fit": X[nq : nq + nf], "query": X[:nq], "database": X[nq:]}

    def build() -> Arrays:
        from h2q.text import embed_texts

        X = embed_texts(texts, cache_dir=cache_dir / "minilm-chunks", n_threads=2)
        return {"fit": X[nq : nq + nf], "query": X[:nq], "database": X[nq:]}

    return cached(cache_dir / f"wordnet-minilm-{n_database}-s{seed}.npz", build)


def _embedded_chunks(texts: list[str], folder: Path, chunk_size: int = 1024) -> np.ndarray:
    """The leading chunks of ``texts``' embeddings that :func:`h2q.text.embed_texts` has
    cached under ``folder`` (all-MiniLM-L6-v2), concatenated."""
    from h2q.text import DEFAULT_MODEL, _ChunkCache, texts_fingerprint

    cache = _ChunkCache(folder, DEFAULT_MODEL, texts_fingerprint(texts), len(texts), chunk_size)
    chunks = []
    for i, start in enumerate(range(0, len(texts), chunk_size)):
        X = cache.load(i, len(texts[start : start + chunk_size]))
        if X is None:
            break
        chunks.append(X)
    if not chunks:
        raise FileNotFoundError(f"no embedded chunks under {folder}; run without embedded_only.")
    return np.concatenate(chunks)


def fashion_effnet(
    cache_dir: Path,
    feature_cache: Path | None = None,
    max_database: int = 10_000,
    seed: int = 0,
    image_size: int = 64,
) -> Arrays:
    """EfficientNet-Lite0 features (1280-d) of Fashion-MNIST, the default experiment's items.

    The items are those of the ``"fashion-mnist"`` split (seed ``seed``, database fold capped
    at ``max_database``): train 5,000, query 1,000, val 1,000, database 10,000, as the default
    stage-1 runs use them, so the features come from the same cache entry
    (:func:`h2q.features.cached_features`; extracted when missing, about 2-5 minutes on 2 cores).

    Parameters
    ----------
    cache_dir : Path
        Folder for the result.
    feature_cache : Path, optional
        The feature cache; default :func:`h2q.features.default_cache_dir`
        (``$H2Q_CACHE_DIR/features``).
    max_database, seed, image_size
        As ``h2q train --max-database --seed --image-size``.

    Returns
    -------
    dict
        ``fit`` = train fold (5,000, 1280), ``query`` (1,000, 1280), ``database`` = train + val
        + database folds (16,000, 1280), float32, with ``y_query`` / ``y_database``.
    """

    def build() -> Arrays:
        from h2q.data import load_dataset, make_split
        from h2q.features import cached_features
        from h2q.models import build_backbone

        data = load_dataset("fashion-mnist")
        split = make_split(data, "fashion-mnist", random_state=seed, max_database=max_database)
        idx = np.unique(np.concatenate([split.train, split.query, split.val, split.database]))
        net = build_backbone("efficientnet-lite0", in_channels=1, image_size=image_size)
        X, y = np.asarray(data.X)[idx], np.asarray(data.y)[idx]
        F = np.asarray(cached_features(net, X, y, cache_dir=feature_cache).features, np.float32)
        row = {int(i): r for r, i in enumerate(idx)}
        pick = lambda fold: np.array([row[int(i)] for i in fold])  # noqa: E731
        db = pick(np.concatenate([split.train, split.val, split.database]))
        q, tr = pick(split.query), pick(split.train)
        return {
            "fit": F[tr],
            "query": F[q],
            "database": F[db],
            "y_query": y[q],
            "y_database": y[db],
        }

    return cached(cache_dir / f"fashion-effnet-{image_size}-{max_database}-s{seed}.npz", build)


def tiled(
    base: np.ndarray, n: int, noise: float = 0.3, seed: int = 0, chunk: int = 100_000
) -> np.ndarray:
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


def synthetic(
    n_database: int = 5_000, n_query: int = 100, d: int = 64, n_clusters: int = 20, seed: int = 0
) -> Arrays:
    """A clustered Gaussian set, unit length (rows near one of ``n_clusters`` centres),
    labelled by cluster.

    Returns
    -------
    dict
        ``fit`` = ``database`` (n_database, d), ``query`` (n_query, d), float32, and their
        cluster ids ``y_database`` / ``y_query``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d))
    y = rng.integers(0, n_clusters, n_database + n_query)
    X = centres[y] + 1.5 * rng.standard_normal((len(y), d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    q, db = slice(0, n_query), slice(n_query, None)
    return {"fit": X[db], "query": X[q], "database": X[db], "y_query": y[q], "y_database": y[db]}


def stage1(
    cache_dir: Path,
    bits: int = 64,
    epochs: int = 10,
    seed: int = 0,
    threads: int = 2,
    feature_cache: Path | None = None,
) -> Arrays:
    """Stage-1 embeddings of a short ``h2q train`` run on the default experiment's data.

    DPSH with H²Q's stage 1 (``lambda0``), on Fashion-MNIST through a frozen EfficientNet-Lite0
    at 64 px (the features of :func:`fashion_effnet`, from the same cache), database capped at
    10,000, ``epochs`` epochs: the default grid's setting, shortened.

    Parameters
    ----------
    cache_dir : Path
        Folder for the run (``stage1-fashion-<bits>-e<epochs>-s<seed>``) and the result.
    bits, epochs, seed, threads
        As ``h2q train --bits --epochs --seed --threads``.
    feature_cache : Path, optional
        As ``h2q train --cache-dir`` (default: ``$H2Q_CACHE_DIR/features``).

    Returns
    -------
    dict
        ``fit`` (train fold), ``query``, ``database``, ``y_query``, ``y_database``.
    """
    name = f"stage1-fashion-{bits}-e{epochs}-s{seed}"

    def build() -> Arrays:
        import subprocess
        import sys

        from h2q.embeddings import load_embeddings

        out = cache_dir / name
        cmd = [
            sys.executable,
            "-m",
            "h2q.cli.main",
            "train",
            "--dataset",
            "fashion-mnist",
            "--method",
            "dpsh",
            "--bits",
            str(bits),
            "--epochs",
            str(epochs),
            "--backbone",
            "efficientnet-lite0",
            "--frozen",
            "--image-size",
            "64",
            "--max-database",
            "10000",
            "--seed",
            str(seed),
            "--threads",
            str(threads),
            "--out",
            str(out),
            "--no-progress",
        ]
        if feature_cache is not None:
            cmd += ["--cache-dir", str(feature_cache)]
        if (out / "config.json").is_file():
            cmd.append("--resume")
        if not (out / "summary.json").is_file():  # a finished run is not trained again
            subprocess.run(cmd, check=True)
        e = load_embeddings(out / "embeddings.npz", required=("train", "query", "database"))
        return {
            "fit": e.train,
            "query": e.query,
            "database": e.database,
            "y_query": e.y_query,
            "y_database": e.y_database,
        }

    return cached(cache_dir / f"{name}.npz", build)
