"""quantizer_checksum: stable across save/load, different for another quantizer."""

from __future__ import annotations

import pytest

from h2q import HouseholderQuantizer, ITQQuantizer, NotFittedError, load_quantizer
from h2q.integrations import quantizer_checksum


def test_checksum_survives_save_and_load(tmp_path, embeddings):
    q = HouseholderQuantizer(16, projection="pca", max_iter=3, random_state=0).fit(embeddings)
    q.save(tmp_path / "a.npz")
    q.save(tmp_path / "b.npz")
    loaded = load_quantizer(tmp_path / "b.npz")
    assert quantizer_checksum(loaded) == quantizer_checksum(q)
    assert len(quantizer_checksum(q)) == 64


def test_checksum_tells_quantizers_apart(embeddings):
    a = HouseholderQuantizer(32, max_iter=3, random_state=0).fit(embeddings)
    b = HouseholderQuantizer(32, max_iter=3, random_state=1).fit(embeddings)
    c = ITQQuantizer(32, max_iter=3, random_state=0).fit(embeddings)
    assert len({quantizer_checksum(x) for x in (a, b, c)}) == 3
    b.rotation_ = a.rotation_.copy()
    assert quantizer_checksum(b) == quantizer_checksum(a)  # same arrays, same class
    b.rotation_[0, 0] += 1e-7
    assert quantizer_checksum(b) != quantizer_checksum(a)


def test_checksum_bad_input():
    with pytest.raises(NotFittedError, match="not fitted"):
        quantizer_checksum(HouseholderQuantizer(8))
    with pytest.raises(TypeError, match="fitted h2q quantizer"):
        quantizer_checksum("q.npz")
