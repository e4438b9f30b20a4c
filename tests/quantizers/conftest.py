import numpy as np
import pytest


def clustered(n: int, k: int, seed: int, n_classes: int = 6, noise: float = 0.6) -> np.ndarray:
    """Embeddings with class structure, like a stage-1 model's output."""
    centers = np.random.default_rng(1234 + k).standard_normal((n_classes, k))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return (centers[y] + noise * rng.standard_normal((n, k))).astype(np.float32)


@pytest.fixture
def data16():
    return clustered(600, 16, 0), clustered(200, 16, 1)
