"""Tests for binary search + rescore, exact float neighbours, recall@k and range metrics."""

from __future__ import annotations

import numpy as np
import pytest

from h2q import (
    HammingIndex,
    MultiIndexHammingIndex,
    encode_sign,
    map_within_radius,
    precision_within_radius,
    recall_at_k,
    within_radius_metrics,
)
from h2q.search import rescore
from h2q.search.exact import exact_neighbors


def _brute_force(Q, X, k, metric):
    """Full float scores, sorted by (score, id) with numpy's stable sort."""
    if metric == "ip":
        key = -(Q @ X.T)
    else:
        key = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    score = np.take_along_axis(key, order, axis=1)
    return (-score if metric == "ip" else score), order


def _data(n=500, nq=20, d=8, seed=0, duplicates=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if duplicates:
        X[100:140] = X[5]  # exact float ties
    Q = rng.standard_normal((nq, d))
    Q[0] = X[5]
    return Q, X


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize(("query_block", "db_block"), [(1024, 65536), (3, 7), (7, 64)])
def test_exact_neighbors_match_brute_force(metric, query_block, db_block):
    Q, X = _data()
    for k in (1, 10, 60):
        S, I = exact_neighbors(Q, X, k, metric=metric, query_block=query_block, db_block=db_block)
        ref_S, ref_I = _brute_force(Q, X, k, metric)
        np.testing.assert_allclose(S, ref_S, rtol=1e-9, atol=1e-9)
        # Where the ids differ, both items must be exact copies (X[100:140] = X[5]): BLAS may
        # round the same dot product differently at another place in a block, which orders
        # such ties by rounding noise (it does on some CPUs for the tiny blocks).
        same = (X[I] == X[ref_I]).all(axis=2)
        np.testing.assert_array_equal(same, np.ones_like(same))
        assert all(len(set(row)) == k for row in I.tolist())


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_rescore_orders_the_shortlist_exactly(metric):
    Q, X = _data(seed=1)
    shortlist = np.random.default_rng(2).permuted(np.tile(np.arange(500), (20, 1)), axis=1)[:, :80]
    S, I = rescore(shortlist, Q, X, 15, metric)
    for r in range(20):
        cands = shortlist[r]
        key = -(X[cands] @ Q[r]) if metric == "ip" else ((X[cands] - Q[r]) ** 2).sum(axis=1)
        order = np.lexsort((cands, key))[:15]
        np.testing.assert_array_equal(I[r], cands[order])
    # A shortlist of everything gives the exact float neighbours.
    everything = np.tile(np.arange(500), (20, 1))
    np.testing.assert_array_equal(
        rescore(everything, Q, X, 15, metric)[1], _brute_force(Q, X, 15, metric)[1]
    )


@pytest.mark.parametrize("index_class", [HammingIndex, MultiIndexHammingIndex])
def test_index_search_with_rescore(index_class):
    Q, X = _data(n=400, d=16, seed=3, duplicates=False)
    codes, q_codes = encode_sign(X), encode_sign(Q)
    index = index_class(16)
    index.add(codes)
    S, I = index.search(q_codes, 10, rescore=400, query_vectors=Q, database_vectors=X)
    np.testing.assert_array_equal(I, _brute_force(Q, X, 10, "ip")[1])
    _, short = index.search(q_codes, 50)
    S2, I2 = index.search(q_codes, 10, rescore=50, query_vectors=Q, database_vectors=X, metric="l2")
    np.testing.assert_array_equal(I2, rescore(short, Q, X, 10, "l2")[1])
    # Rescoring a shortlist can only raise recall against the float neighbours.
    plain = recall_at_k(index.search(q_codes, 10)[1], Q, X, 10)
    assert recall_at_k(I2, Q, X, 10, metric="l2") >= 0 and recall_at_k(I, Q, X, 10) == 1.0
    assert (
        recall_at_k(
            index.search(q_codes, 10, rescore=100, query_vectors=Q, database_vectors=X)[1], Q, X, 10
        )
        >= plain
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rescore": 5}, "smaller than k"),
        ({"rescore": 50}, "needs query_vectors and database_vectors"),
        (
            {"rescore": 50, "query_vectors": np.ones((3, 4)), "database_vectors": np.ones((9, 4))},
            "database_vectors has 9 rows",
        ),
        (
            {"rescore": 50, "query_vectors": np.ones((2, 4)), "database_vectors": np.ones((60, 4))},
            "query_vectors has 2 rows",
        ),
        (
            {
                "rescore": 50,
                "query_vectors": np.ones((3, 4)),
                "database_vectors": np.ones((60, 4)),
                "metric": "cos",
            },
            "metric must be",
        ),
    ],
)
def test_rescore_rejects_bad_input(kwargs, match):
    index = HammingIndex(8)
    index.add(np.zeros((60, 1), np.uint8))
    with pytest.raises(ValueError, match=match):
        index.search(np.zeros((3, 1), np.uint8), 10, **kwargs)


def test_recall_at_k_against_brute_force():
    Q, X = _data(seed=4)
    true = _brute_force(Q, X, 10, "ip")[1]
    rng = np.random.default_rng(5)
    I = true.copy()
    I[:, 5:] = rng.integers(600, 700, (20, 5))  # half replaced by ids that are never neighbours
    I[3, 0] = -1
    expected = np.mean([len(set(I[r]) & set(true[r])) / 10 for r in range(20)])
    assert recall_at_k(I, Q, X, 10) == pytest.approx(expected)
    assert recall_at_k(I, true_neighbors=true) == pytest.approx(expected)
    assert recall_at_k(true, Q, X) == 1.0
    assert recall_at_k(true[:, ::-1], Q, X, 5) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="needs query_vectors"):
        recall_at_k(I)
    with pytest.raises(ValueError, match="k=11"):
        recall_at_k(I, Q, X, 11)


@pytest.mark.parametrize("empty", ["zero", "skip"])
def test_within_radius_metrics_equal_the_padded_versions(empty):
    rng = np.random.default_rng(6)
    db = rng.integers(0, 4, (300, 2), dtype=np.uint8)
    q = rng.integers(0, 4, (25, 2), dtype=np.uint8)
    q[0] = 255  # nothing within the radius
    labels_db, labels_q = rng.integers(0, 3, 300), rng.integers(0, 3, 25)
    index = MultiIndexHammingIndex(16)
    index.add(db)
    lims, _, I = index.range_search(q, 2)
    D_full, I_full = HammingIndex(16, backend="numpy"), None
    D_full.add(db)
    D_full, I_full = D_full.search(q, 300)
    got = within_radius_metrics(lims, I, labels_q, labels_db, empty=empty)
    assert got[0] == pytest.approx(
        precision_within_radius(D_full, I_full, labels_q, labels_db, 2, empty=empty), nan_ok=True
    )
    assert got[1] == pytest.approx(
        map_within_radius(D_full, I_full, labels_q, labels_db, 2, empty=empty), nan_ok=True
    )
    with pytest.raises(ValueError, match="lims must be"):
        within_radius_metrics(lims[:-1], I, labels_q, labels_db)
