import numpy as np
import pytest


def tied_codes(n: int, n_bits: int, seed: int) -> np.ndarray:
    """Packed codes with many Hamming ties: few random bits per code, padding bits zero."""
    from h2q.codes import pack_bits

    rng = np.random.default_rng(seed)
    bits = np.zeros((n, n_bits), dtype=np.uint8)
    active = rng.choice(n_bits, size=min(n_bits, 8), replace=False)
    bits[:, active] = rng.integers(0, 2, (n, len(active)))
    return pack_bits(bits)


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1500, 32)).astype(np.float32)
