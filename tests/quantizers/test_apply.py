"""transform/encode on the CPU (numpy, rotate then rescale) against the torch reference that
peak-scales and rescales each row before rotating it."""

import numpy as np
import pytest
import torch

from h2q.codes import pack_bits
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer, _apply

from .conftest import clustered

MAKERS = {
    "sign": lambda **kw: SignQuantizer(**kw),
    "itq": lambda **kw: ITQQuantizer(**{"max_iter": 10, **kw}),
    "h2q": lambda **kw: HouseholderQuantizer(**{"max_iter": 20, **kw}),
}


def reference_transform(q, X) -> np.ndarray:
    """Slow and plain: centre, project, divide each row by its largest |entry|, rescale to
    norm sqrt(n_bits), rotate; all in torch, in X's dtype."""
    Xt = torch.as_tensor(np.asarray(X))
    if q.mean_ is not None:
        Xt = Xt - torch.as_tensor(q.mean_, dtype=Xt.dtype)
    if q.components_ is not None:
        Xt = Xt @ torch.as_tensor(q.components_, dtype=Xt.dtype).T
    if q.rescale:
        Xt = Xt / Xt.abs().amax(dim=1, keepdim=True)
        Xt = Xt * (q.n_bits_**0.5 / torch.linalg.vector_norm(Xt, dim=1, keepdim=True))
    return (Xt @ torch.as_tensor(q.rotation_, dtype=Xt.dtype).T).numpy()


def reference_encode(q, X) -> np.ndarray:
    return pack_bits(reference_transform(q, X) >= 0)


def _fitted(name, dtype, center, projection, rescale=True):
    X = clustered(900, 24, 0).astype(dtype) + 0.5
    n_bits = 16 if projection else None
    kw = {"center": center, "projection": projection, "n_bits": n_bits, "rescale": rescale}
    return MAKERS[name](**kw).fit(X), clustered(700, 24, 1).astype(dtype) + 0.5


@pytest.mark.parametrize("rescale", [True, False])
@pytest.mark.parametrize("projection", [None, "pca"])
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MAKERS)
def test_codes_and_floats_match_the_reference(name, dtype, center, projection, rescale):
    q, X = _fitted(name, dtype, center, projection, rescale)
    codes = q.encode(X)
    assert len(np.unique(codes, axis=0)) > 10  # varied codes: a constant output would fail
    np.testing.assert_array_equal(codes, reference_encode(q, X))
    Z = q.transform(X)
    assert Z.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Z, reference_transform(q, X), rtol=tol, atol=tol)
    np.testing.assert_array_equal(pack_bits(Z >= 0), codes)


@pytest.mark.parametrize("name", MAKERS)
def test_torch_input_gives_the_same_codes_and_a_tensor(name):
    q, X = _fitted(name, np.float32, True, None)
    Xt = torch.from_numpy(X).requires_grad_(True)
    np.testing.assert_array_equal(q.encode(Xt), reference_encode(q, X))
    Z = q.transform(Xt)
    assert isinstance(Z, torch.Tensor) and not Z.requires_grad
    np.testing.assert_array_equal(Z.numpy(), q.transform(X))
    half = torch.from_numpy(X).half()
    np.testing.assert_array_equal(q.encode(half), reference_encode(q, half.float().numpy()))


def _overflowing(q, X) -> np.ndarray:
    """X with every third row replaced by a row of the rotation plus noise, scaled so that its
    largest entry is 3.3e38: one entry of its product, near 3.3e38 / that entry, overflows
    (the noise keeps the other entries of the product well away from 0)."""
    R = q.rotation_.astype(np.float64)
    big = X.astype(np.float64) * 1e37
    rows = np.arange(0, len(X), 3)
    noise = 0.1 * np.random.default_rng(0).standard_normal((len(rows), R.shape[1]))
    picked = R[rows % len(R)] + noise
    big[rows] = picked * (3.3e38 / np.abs(picked).max(axis=1, keepdims=True))
    big = big.astype(np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(big @ q.rotation_.astype(np.float32).T).all()
    return big


@pytest.mark.parametrize("scale", [1e-30, 1e30, "overflow"])
@pytest.mark.parametrize("name", ["itq", "h2q"])
def test_extreme_magnitudes_match_the_reference(name, scale):
    q, X = _fitted(name, np.float32, False, None)
    if scale == "overflow":  # X @ R.T overflows: those rows are recomputed scaled
        big = _overflowing(q, X)
    else:
        big = (X.astype(np.float64) * scale).astype(np.float32)
    codes = q.encode(big)
    np.testing.assert_array_equal(codes, reference_encode(q, big))
    Z = q.transform(big)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), np.sqrt(24), rtol=1e-4)
    np.testing.assert_array_equal(pack_bits(Z >= 0), codes)


def test_zero_and_non_finite_rows_are_named_across_chunks(monkeypatch):
    monkeypatch.setattr(_apply, "CHUNK_BYTES", 64 * 24 * 4)  # 64-row chunks
    q, X = _fitted("sign", np.float32, False, None)
    X = X.copy()
    X[[130, 131]] = 0  # in the third chunk: the rows are named by their place in X
    for method in (q.encode, q.transform):
        with pytest.raises(ValueError, match=r"2 all-zero row\(s\) \(rows 130, 131\)"):
            method(X)
    X[[130, 131]] = 1.0
    X[200, 3] = np.nan
    for method in (q.encode, q.transform):
        with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
            method(X)
    ok = SignQuantizer(rescale=False).fit(clustered(100, 24, 0))
    zeros = np.zeros((3, 24), dtype=np.float32)
    np.testing.assert_array_equal(ok.encode(zeros), np.full((3, 3), 255, dtype=np.uint8))
