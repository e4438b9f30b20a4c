"""Fixtures of the service tests: small fitted files, and a live ``h2q serve`` on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

N_DB, N_FEATURES, N_CLASSES = 600, 32, 5  # the tests read the same sizes


def _clustered(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(size=(N_CLASSES, N_FEATURES)) * 2
    y = rng.integers(0, N_CLASSES, size=n)
    return (centres[y] + rng.normal(size=(n, N_FEATURES))).astype(np.float32), y


@pytest.fixture(scope="session")
def served_files(tmp_path_factory) -> dict[str, Path]:
    """``q.npz`` (ITQ, 32 bits), ``db.npz`` (codes of ``h2q encode``) and ``embeddings.npz``."""
    from h2q import ITQQuantizer
    from h2q.embeddings import save_embeddings

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("served")
    X_train, y_train = _clustered(rng, 400)
    X_db, y_db = _clustered(rng, N_DB)
    save_embeddings(
        root / "embeddings.npz", train=X_train, y_train=y_train, database=X_db, y_database=y_db
    )
    q = ITQQuantizer(N_FEATURES, max_iter=20, random_state=0).fit(X_train)
    q.save(root / "q.npz")
    np.savez(root / "db.npz", codes=q.encode(X_db))
    return {
        "root": root,
        "quantizer": root / "q.npz",
        "database": root / "db.npz",
        "embeddings": root / "embeddings.npz",
    }


def files_args(files: dict[str, Path]) -> list[str]:
    return [
        "--quantizer",
        str(files["quantizer"]),
        "--database",
        str(files["database"]),
        "--embeddings",
        str(files["embeddings"]),
        "--threads",
        "1",
    ]


@pytest.fixture(scope="session")
def files_server(served_files):
    """A live server over the files (one index), shared by the API tests."""
    from h2q.serve.launch import ServerProcess

    with ServerProcess(files_args(served_files)) as server:
        yield server


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """The demo's digits run, fitted once in this process (what ``--demo`` does first)."""
    from h2q.serve.demo import _fit_digits

    cache = tmp_path_factory.mktemp("demo-cache")
    _fit_digits(cache / "serve-demo", progress=False)
    return cache


@pytest.fixture(scope="session")
def demo_server(demo_cache, tmp_path_factory):
    """``h2q serve --demo`` over that digits run (three indexes, images)."""
    from h2q.serve.launch import ServerProcess

    cwd = tmp_path_factory.mktemp("demo-cwd")  # no ./results there: the digits run is used
    with ServerProcess(["--demo"], env={"H2Q_CACHE_DIR": str(demo_cache)}, cwd=cwd) as server:
        yield server
