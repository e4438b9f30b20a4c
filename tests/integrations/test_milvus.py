"""MilvusHammingIndex against HammingIndex, on a real in-process Milvus Lite."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="needs the milvus extra: pip install 'h2q[milvus]'")
pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'h2q[milvus]'")

from h2q import HammingIndex, HouseholderQuantizer, ITQQuantizer  # noqa: E402
from h2q.integrations.milvus import MilvusHammingIndex  # noqa: E402

from .conftest import tied_codes  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:UserWarning")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One Milvus Lite file for the module (each file starts one embedded server)."""
    return str(tmp_path_factory.mktemp("milvus") / "h2q.db")


def _reference(codes, queries, k, n_bits):
    index = HammingIndex(n_bits, backend="numpy")
    index.add(codes)
    return index.search(queries, k)


@pytest.mark.parametrize("n_bits", [64, 256, 24])
def test_same_D_and_I_as_hamming_index(db, n_bits):
    codes = tied_codes(1200, n_bits, seed=n_bits)
    queries = tied_codes(40, n_bits, seed=n_bits + 1)
    index = MilvusHammingIndex(db, f"same_{n_bits}", n_bits, batch_size=500)
    index.add(codes)  # ids 0..n-1, inserted in increasing order
    assert index.ntotal == len(codes)
    for k in (1, 37, 1300):  # 1300 > ntotal: padded rows
        D, I = index.search(queries, k)
        D_ref, I_ref = _reference(codes, queries, k, n_bits)
        assert D.dtype == np.int32 and I.dtype == np.int64
        np.testing.assert_array_equal(D, D_ref)
        np.testing.assert_array_equal(I, I_ref)
    assert (I[:, len(codes) :] == -1).all()


def test_ties_in_shuffled_insertion(db):
    """The documented tie rule: rows sorted by (distance, id); of the items tied at the k-th
    distance Milvus Lite keeps the earliest inserted."""
    n_bits, k = 64, 25
    codes = tied_codes(1000, n_bits, seed=3)
    queries = tied_codes(30, n_bits, seed=4)
    ids = np.random.default_rng(5).permutation(len(codes)) * 7 + 3  # sparse, shuffled ids
    index = MilvusHammingIndex(db, "shuffled", n_bits, batch_size=256)
    index.add(codes, ids=ids)
    D, I = index.search(queries, k)
    D_ref, _ = _reference(codes, queries, k, n_bits)
    np.testing.assert_array_equal(D, D_ref)
    position = {int(i): p for p, i in enumerate(ids)}
    all_d = _reference(codes, queries, len(codes), n_bits)
    for r in range(len(queries)):
        assert np.all((np.diff(D[r]) > 0) | ((np.diff(D[r]) == 0) & (np.diff(I[r]) > 0)))
        kth = D[r, -1]
        strictly_closer = {
            int(ids[j]) for j, d in zip(all_d[1][r], all_d[0][r], strict=True) if d < kth
        }
        assert strictly_closer <= set(I[r].tolist())
        tied = sorted(
            (int(ids[j]) for j, d in zip(all_d[1][r], all_d[0][r], strict=True) if d == kth),
            key=position.__getitem__,
        )
        chosen = set(I[r][D[r] == kth].tolist())
        assert chosen == set(tied[: len(chosen)])  # the earliest inserted


def test_remove_payload_and_duplicates(db):
    codes = tied_codes(300, 32, seed=7)
    index = MilvusHammingIndex(db, "remove", 32, batch_size=64)
    ids = index.add(codes, payload=[{"row": i} for i in range(300)])
    np.testing.assert_array_equal(ids, np.arange(300))
    assert index.payloads([5, 299, 1000]) == [{"row": 5}, {"row": 299}, None]
    with pytest.raises(ValueError, match="already in collection"):
        index.add(codes[:3], ids=[10, 11, 400])
    with pytest.raises(ValueError, match="duplicates"):
        index.add(codes[:2], ids=[500, 500])
    assert index.remove_ids(np.arange(0, 300, 2)) == 150
    assert index.remove_ids([0, 2]) == 0
    assert index.ntotal == 150
    D, I = index.search(codes[:5], 150)
    keep = np.arange(1, 300, 2)
    D_ref, I_ref = _reference(codes[keep], codes[:5], 150, 32)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, keep[I_ref])
    with pytest.raises(ValueError, match="already in collection"):
        index.add(codes[:200])  # default ids 150.. collide with the odd ids left


def test_quantizer_metadata_refuses_a_mismatch(db, embeddings):
    q = HouseholderQuantizer(32, max_iter=3, random_state=0).fit(embeddings)
    other = HouseholderQuantizer(32, max_iter=3, random_state=1).fit(embeddings)
    MilvusHammingIndex.from_quantizer(db, "fitted", q, embeddings).close()
    index = MilvusHammingIndex(db, "fitted")  # reopened: metadata from the collection
    assert index.n_bits == 32 and index.metadata["quantizer"]["kind"] == "HouseholderQuantizer"
    D, I = index.search_embeddings(embeddings[:20], 10, q)
    D_ref, I_ref = _reference(q.encode(embeddings), q.encode(embeddings[:20]), 10, 32)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, I_ref)
    with pytest.raises(ValueError, match="is not the one the codes"):
        index.search_embeddings(embeddings[:2], 10, other)
    with pytest.raises(ValueError, match="is not the one the codes"):
        MilvusHammingIndex(db, "fitted", quantizer=ITQQuantizer(32, max_iter=2).fit(embeddings))
    with pytest.raises(ValueError, match="holds 32-bit codes, but n_bits=64"):
        MilvusHammingIndex(db, "fitted", 64)
    bare = MilvusHammingIndex(db, "bare", 32)
    with pytest.raises(ValueError, match="records no quantizer"):
        bare.search_embeddings(embeddings[:2], 5, q)


def test_bad_input(db, tmp_path):
    with pytest.raises(ValueError, match=r"end in \.db"):
        MilvusHammingIndex(str(tmp_path / "x.sqlite"), "c", 8)
    with pytest.raises(ValueError, match="unsupported Milvus URI"):
        MilvusHammingIndex("s3://bucket/x", "c", 8)
    with pytest.raises(ValueError, match="pass n_bits to create"):
        MilvusHammingIndex(db, "missing")
    with pytest.raises(ValueError, match="supports only index='BIN_FLAT'"):
        MilvusHammingIndex(db, "ivf", 64, "BIN_IVF_FLAT")
    index = MilvusHammingIndex(db, "bad", 16)
    with pytest.raises(ValueError, match="bytes"):
        index.add(np.zeros((3, 3), np.uint8))
    index.add(np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 16384\]"):
        index.search(np.zeros((1, 2), np.uint8), 0)
