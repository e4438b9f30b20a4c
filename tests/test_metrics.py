"""Tests of h2q.evaluation.metrics: hand-computed cases, slow pure-Python references, error
paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from h2q.evaluation.metrics import (
    MAP_VARIANTS,
    PrecisionRecallCurve,
    average_precision,
    map_within_radius,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    variant_name,
)

# --- a small hand-checked world ---------------------------------------------------------------
# Database labels (class ids): items 0..5. Query 0 has label 0, so the relevant items are
# 0, 2, 3 and 5. Ranking [0, 1, 2, 3, 4] gives the relevance pattern [1, 0, 1, 1, 0]; item 5
# (relevant) is not in the ranking.
DB = np.array([0, 1, 0, 0, 1, 0])
RANK = np.array([[0, 1, 2, 3, 4]])
Q = np.array([0])

# Top-k denominator: 3 relevant in the top 5, at ranks 1, 3, 4 with precision 1/1, 2/3, 3/4.
AP_TOPK = (1 / 1 + 2 / 3 + 3 / 4) / 3
# Database denominator: the same sum over the 4 relevant items of the whole database.
AP_DATABASE = (1 / 1 + 2 / 3 + 3 / 4) / 4


# --- slow, obviously-correct references -------------------------------------------------------


def _label_set(y: np.ndarray) -> set[int]:
    """Class id -> {id}; multi-hot row -> {classes set}."""
    return {int(y)} if np.ndim(y) == 0 else {int(c) for c in np.flatnonzero(y)}


def _relevant(q_label, d_label) -> bool:
    return bool(_label_set(q_label) & _label_set(d_label))


def _slow_ap(ranking, q_labels, db_labels, k, denominator, empty) -> list[float]:
    out = []
    for i in range(len(ranking)):
        hits, total = 0, 0.0
        for r, item in enumerate(ranking[i][:k], start=1):
            if _relevant(q_labels[i], db_labels[item]):
                hits += 1
                total += hits / r
        if denominator == "topk":
            denom = hits
        else:
            denom = sum(_relevant(q_labels[i], d) for d in db_labels)
        if denom == 0:
            out.append(0.0 if empty == "zero" else float("nan"))
        else:
            out.append(total / denom)
    return out


def _slow_hamming(a: np.ndarray, b: np.ndarray) -> int:
    return sum(int(x) != int(y) for x, y in zip(a, b, strict=True))


def _slow_pr(D, q_labels, db_labels, n_bits, empty):
    precision, recall = [], []
    for r in range(n_bits + 1):
        ps, rs = [], []
        for i in range(len(q_labels)):
            retrieved = [j for j in range(len(db_labels)) if D[i][j] <= r]
            relevant = [j for j in range(len(db_labels)) if _relevant(q_labels[i], db_labels[j])]
            true_pos = [j for j in retrieved if j in relevant]
            for values, denom in ((ps, len(retrieved)), (rs, len(relevant))):
                if denom:
                    values.append(len(true_pos) / denom)
                elif empty == "zero":
                    values.append(0.0)
        precision.append(np.mean(ps) if ps else np.nan)
        recall.append(np.mean(rs) if rs else np.nan)
    return np.array(precision), np.array(recall)


def _random_world(seed: int, multi_hot: bool, n_q: int = 13, n_db: int = 40, n_classes: int = 5):
    rng = np.random.default_rng(seed)
    if multi_hot:
        q = (rng.random((n_q, n_classes)) < 0.25).astype(np.int64)
        db = (rng.random((n_db, n_classes)) < 0.25).astype(np.int64)
    else:
        q = rng.integers(0, n_classes, n_q)
        db = rng.integers(0, n_classes, n_db)
        q[0] = n_classes + 3  # a query with no relevant item anywhere
    ranking = np.stack([rng.permutation(n_db) for _ in range(n_q)])
    return rng, q, db, ranking


# --- average precision: hand-computed cases ---------------------------------------------------


@pytest.mark.parametrize(
    ("denominator", "expected"), [("topk", AP_TOPK), ("database", AP_DATABASE)]
)
def test_average_precision_hand_computed(denominator, expected):
    ap = average_precision(RANK, Q, DB, denominator=denominator)
    assert ap.shape == (1,) and ap.dtype == np.float64
    assert ap[0] == pytest.approx(expected)
    assert AP_TOPK != pytest.approx(AP_DATABASE)  # the two denominators differ here


@pytest.mark.parametrize(
    ("k", "denominator", "expected"),
    [
        (1, "topk", 1.0),  # [1]: 1/1 over 1 relevant
        (2, "topk", 1.0),  # [1, 0]: 1/1 over 1 relevant
        (3, "topk", (1 + 2 / 3) / 2),  # [1, 0, 1]
        (2, "database", 1 / 4),  # [1, 0]: 1/1 over 4 relevant in the database
        (3, "database", (1 + 2 / 3) / 4),
    ],
)
def test_average_precision_k_below_ranking_width(k, denominator, expected):
    assert average_precision(RANK, Q, DB, k, denominator=denominator)[0] == pytest.approx(expected)


def test_empty_query_scores_zero_and_counts():
    # Query 1 has label 9: nothing relevant anywhere, so AP = 0 and it still counts.
    q = np.array([0, 9])
    ranking = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    np.testing.assert_allclose(average_precision(ranking, q, DB), [AP_TOPK, 0.0])
    assert mean_average_precision(ranking, q, DB) == pytest.approx(AP_TOPK / 2)


@pytest.mark.parametrize("denominator", ["topk", "database"])
def test_empty_query_skip_gives_nan_and_mean_skips_it(denominator):
    q = np.array([0, 9])
    ranking = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    ap = average_precision(ranking, q, DB, denominator=denominator, empty="skip")
    assert np.isnan(ap[1]) and not np.isnan(ap[0])
    expected = AP_TOPK if denominator == "topk" else AP_DATABASE
    assert mean_average_precision(
        ranking, q, DB, denominator=denominator, empty="skip"
    ) == pytest.approx(expected)


def test_all_queries_skipped_gives_nan_without_warning(recwarn):
    assert np.isnan(mean_average_precision(RANK, np.array([9]), DB, empty="skip"))
    assert len(recwarn) == 0


def test_no_relevant_in_top_k_but_some_in_database():
    # Top 1 is item 1 (irrelevant). "topk": denominator 0 -> empty policy. "database": the
    # denominator is 4, so the AP is a genuine 0 and is not skipped.
    ranking = np.array([[1, 0]])
    assert average_precision(ranking, Q, DB, 1)[0] == 0.0
    assert np.isnan(average_precision(ranking, Q, DB, 1, empty="skip")[0])
    assert average_precision(ranking, Q, DB, 1, denominator="database", empty="skip")[0] == 0.0


def test_multi_hot_labels():
    # Query classes {0, 2}; database rows {1}, {0, 1}, {2}, {1} -> relevance [0, 1, 1, 0].
    # AP = (1/2 + 2/3) / 2 (top-k), and the same sum over 2 relevant in the database.
    q = np.array([[1, 0, 1]])
    db = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]])
    ranking = np.array([[0, 1, 2, 3]])
    expected = (1 / 2 + 2 / 3) / 2
    assert average_precision(ranking, q, db)[0] == pytest.approx(expected)
    assert average_precision(ranking, q, db, denominator="database")[0] == pytest.approx(expected)
    # A query with no class at all shares nothing.
    assert average_precision(ranking, np.array([[0, 0, 0]]), db)[0] == 0.0


def test_ties_are_the_callers_choice():
    # Items 0 (relevant) and 1 (irrelevant) at the same Hamming distance: the metric scores
    # the order it is given, so the two tie-breaks give AP 1 and 1/2.
    assert average_precision(np.array([[0, 1]]), Q, DB)[0] == 1.0
    assert average_precision(np.array([[1, 0]]), Q, DB)[0] == pytest.approx(1 / 2)


def test_perfect_ranking_scores_one():
    ranking = np.array([[0, 2, 3, 5, 1, 4]])
    for denominator in ("topk", "database"):
        assert mean_average_precision(ranking, Q, DB, denominator=denominator) == 1.0


def test_accepts_torch_and_lists():
    got = mean_average_precision(torch.tensor(RANK), torch.tensor(Q), DB.tolist())
    assert got == pytest.approx(AP_TOPK)


# --- average precision: randomized against the slow loop --------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("multi_hot", [False, True])
@pytest.mark.parametrize("k", [None, 1, 7, 25])
@pytest.mark.parametrize("denominator", ["topk", "database"])
@pytest.mark.parametrize("empty", ["zero", "skip"])
def test_average_precision_matches_slow_loop(seed, multi_hot, k, denominator, empty):
    _, q, db, ranking = _random_world(seed, multi_hot)
    ranking = ranking[:, :30]  # a ranking narrower than the database
    expected = _slow_ap(ranking, q, db, k or 30, denominator, empty)
    got = average_precision(ranking, q, db, k, denominator=denominator, empty=empty, chunk_size=4)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert mean_average_precision(
        ranking, q, db, k, denominator=denominator, empty=empty
    ) == pytest.approx(np.nanmean(expected), nan_ok=True)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunking_invariance(chunk_size):
    rng, q, db, ranking = _random_world(5, multi_hot=True, n_q=20, n_db=50)
    D = np.sort(rng.integers(0, 9, ranking.shape), axis=1)
    kwargs = {"chunk_size": chunk_size}
    reference = {"chunk_size": 256}
    for denominator in ("topk", "database"):
        np.testing.assert_array_equal(
            average_precision(ranking, q, db, 17, denominator=denominator, **kwargs),
            average_precision(ranking, q, db, 17, denominator=denominator, **reference),
        )
    assert precision_at_k(ranking, q, db, 9, **kwargs) == precision_at_k(
        ranking, q, db, 9, **reference
    )
    for fn in (map_within_radius, precision_within_radius):
        assert fn(D, ranking, q, db, 3, **kwargs) == fn(D, ranking, q, db, 3, **reference)
    full = rng.integers(0, 9, (len(q), len(db)))
    a = precision_recall_curve(full, q, db, 8, **kwargs)
    b = precision_recall_curve(full, q, db, 8, **reference)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# --- precision@k --------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "expected"), [(1, 1.0), (2, 1 / 2), (3, 2 / 3), (5, 3 / 5)])
def test_precision_at_k_hand_computed(k, expected):
    # Relevance pattern [1, 0, 1, 1, 0].
    assert precision_at_k(RANK, Q, DB, k) == pytest.approx(expected)


def test_precision_at_k_counts_every_query():
    # Query 1 (label 9) has precision 0 and still counts: mean of 3/5 and 0.
    ranking = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    assert precision_at_k(ranking, np.array([0, 9]), DB, 5) == pytest.approx(3 / 10)


# --- within a Hamming radius -------------------------------------------------------------------

# Query 0: distances [0, 1, 2, 3, 5] to items [0, 1, 2, 3, 4], relevance [1, 0, 1, 1, 0].
# Within radius 2: items 0, 1, 2, relevance [1, 0, 1] -> AP = (1/1 + 2/3) / 2, precision 2/3.
# Query 1 (label 0): every item farther than 2 -> nothing within the radius.
D_SMALL = np.array([[0, 1, 2, 3, 5], [3, 3, 4, 4, 6]])
I_SMALL = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
Q_SMALL = np.array([0, 0])
AP_R2 = (1 + 2 / 3) / 2


def test_map_within_radius_hand_computed():
    # The query with no item in the radius scores 0 and counts.
    assert map_within_radius(D_SMALL, I_SMALL, Q_SMALL, DB, 2) == pytest.approx(AP_R2 / 2)
    assert map_within_radius(D_SMALL, I_SMALL, Q_SMALL, DB, 2, empty="skip") == pytest.approx(AP_R2)
    # Radius 0: only item 0 (relevant) for query 0 -> AP 1.
    assert map_within_radius(D_SMALL[:1], I_SMALL[:1], Q_SMALL[:1], DB, 0) == 1.0
    # Radius 3 admits item 3 for query 0 and items 0, 1 ([1, 0]) for query 1.
    expected = ((1 + 2 / 3 + 3 / 4) / 3 + 1.0) / 2
    assert map_within_radius(D_SMALL, I_SMALL, Q_SMALL, DB, 3) == pytest.approx(expected)


def test_precision_within_radius_hand_computed():
    assert precision_within_radius(D_SMALL, I_SMALL, Q_SMALL, DB, 2) == pytest.approx(1 / 3)
    assert precision_within_radius(D_SMALL, I_SMALL, Q_SMALL, DB, 2, empty="skip") == pytest.approx(
        2 / 3
    )
    # Radius 3: query 0 has [1, 0, 1, 1] -> 3/4; query 1 has [1, 0] -> 1/2.
    assert precision_within_radius(D_SMALL, I_SMALL, Q_SMALL, DB, 3) == pytest.approx(5 / 8)


def test_map_within_radius_equals_map_of_the_prefix():
    # With every row's items within the radius, it is plain mAP (top-k denominator).
    rng, q, db, ranking = _random_world(3, multi_hot=False)
    D = np.zeros(ranking.shape, dtype=np.int32)
    assert map_within_radius(D, ranking, q, db, 0) == pytest.approx(
        mean_average_precision(ranking, q, db)
    )


@pytest.mark.parametrize("fn", [map_within_radius, precision_within_radius])
def test_within_radius_warns_when_results_may_be_cut_off(fn):
    # 5 results out of 6 database items, and query 0's last result is within radius 5.
    with pytest.warns(UserWarning, match="1 of 2 queries have all 5 returned items within"):
        fn(D_SMALL, I_SMALL, Q_SMALL, DB, 5)


# --- precision-recall curve --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("multi_hot", [False, True])
@pytest.mark.parametrize("empty", ["skip", "zero"])
def test_precision_recall_curve_matches_slow_reference(seed, multi_hot, empty):
    rng, q, db, _ = _random_world(seed, multi_hot, n_q=9, n_db=30)
    n_bits = 6
    q_codes = rng.integers(0, 2, (len(q), n_bits))
    db_codes = rng.integers(0, 2, (len(db), n_bits))
    D = np.array([[_slow_hamming(a, b) for b in db_codes] for a in q_codes])
    expected_p, expected_r = _slow_pr(D, q, db, n_bits, empty)
    curve = precision_recall_curve(D, q, db, n_bits, empty=empty, chunk_size=4)
    assert isinstance(curve, PrecisionRecallCurve)
    np.testing.assert_array_equal(curve.radius, np.arange(n_bits + 1))
    np.testing.assert_allclose(curve.precision, expected_p, rtol=1e-12)
    np.testing.assert_allclose(curve.recall, expected_r, rtol=1e-12)
    # The same matrix through a block callable (the full matrix never needs to exist).
    calls = []

    def blocks(start, stop):
        calls.append((start, stop))
        return D[start:stop]

    radius, precision, recall = precision_recall_curve(blocks, q, db, n_bits, chunk_size=4)
    assert calls == [(0, 4), (4, 8), (8, 9)]
    if empty == "skip":
        np.testing.assert_array_equal(precision, curve.precision)
        np.testing.assert_array_equal(recall, curve.recall)


def test_precision_recall_curve_hand_computed():
    # One query (label 0) against DB; distances to items 0..5 are [0, 1, 1, 2, 2, 2].
    # Relevant: items 0, 2, 3, 5 (4 in all).
    # r=0: {0} -> P 1, R 1/4.  r=1: {0, 1, 2} -> P 2/3, R 2/4.  r=2: all -> P 4/6, R 1.
    D = np.array([[0, 1, 1, 2, 2, 2]])
    radius, precision, recall = precision_recall_curve(D, Q, DB, 2)
    np.testing.assert_array_equal(radius, [0, 1, 2])
    np.testing.assert_allclose(precision, [1, 2 / 3, 4 / 6])
    np.testing.assert_allclose(recall, [1 / 4, 2 / 4, 1])


def test_precision_recall_curve_empty_policy():
    # Query 1 is at distance 2 from everything: at r=0 and r=1 it retrieves nothing.
    D = np.array([[0, 1, 1, 2, 2, 2], [2, 2, 2, 2, 2, 2]])
    q = np.array([0, 0])
    skip = precision_recall_curve(D, q, DB, 2, empty="skip")
    zero = precision_recall_curve(D, q, DB, 2, empty="zero")
    np.testing.assert_allclose(skip.precision, [1, 2 / 3, 4 / 6])
    np.testing.assert_allclose(zero.precision, [1 / 2, 1 / 3, 4 / 6])
    np.testing.assert_allclose(zero.recall, [1 / 8, 2 / 8, 1])


def test_precision_recall_curve_reads_memmap(tmp_path):
    D = np.array([[0, 1, 1, 2, 2, 2]], dtype=np.uint8)
    path = tmp_path / "d.bin"
    D.tofile(path)
    mm = np.memmap(path, dtype=np.uint8, mode="r", shape=D.shape)
    np.testing.assert_array_equal(
        precision_recall_curve(mm, Q, DB, 2).precision,
        precision_recall_curve(D, Q, DB, 2).precision,
    )


# --- variant names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"k": 5000}, "mAP@5000 (top-k relevant denominator; empty queries score 0)"),
        (
            {"k": 1000, "denominator": "database", "empty": "skip"},
            "mAP@1000 (database relevant denominator; empty queries skipped)",
        ),
        ({}, "mAP@all (top-k relevant denominator; empty queries score 0)"),
    ],
)
def test_variant_name(kwargs, expected):
    assert variant_name(**kwargs) == expected


def test_map_variants_constant():
    assert MAP_VARIANTS == {
        "topk": "mAP@k (top-k relevant denominator)",
        "database": "mAP@k (database relevant denominator)",
    }


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranking", "q", "db", "kwargs", "error", "match"),
    [
        (np.array([[0, 6]]), Q, DB, {}, ValueError, r"contains id 6, but db_labels has 6 rows"),
        (np.array([[0, -1]]), Q, DB, {}, ValueError, r"faiss pads missing results with -1"),
        (np.array([[0, 1]]), np.array([0, 1]), DB, {}, ValueError, r"has 1 rows but query_labels"),
        (np.array([0, 1]), Q, DB, {}, ValueError, r"ranking must be 2-D"),
        (np.array([[0.0, 1.0]]), Q, DB, {}, TypeError, r"database ids must be integers"),
        (np.zeros((1, 0), dtype=int), Q, DB, {}, ValueError, r"has no columns"),
        (np.array([[0, 1, 0]]), Q, DB, {}, ValueError, r"repeats a database id in 1 row"),
        (RANK, Q, DB, {"k": 0}, ValueError, r"k must be a positive integer"),
        (RANK, Q, DB, {"k": 2.5}, ValueError, r"k must be a positive integer"),
        (RANK, Q, DB, {"k": 6}, ValueError, r"k=6 but the ranking has only 5 columns"),
        (RANK, Q, DB, {"denominator": "all"}, ValueError, r"denominator must be one of"),
        (RANK, Q, DB, {"empty": "nan"}, ValueError, r"empty must be one of"),
        (RANK, Q, DB, {"chunk_size": 0}, ValueError, r"chunk_size must be a positive"),
        (RANK, np.array([], dtype=int), DB, {}, ValueError, r"query_labels is empty"),
        (RANK, Q, np.array([], dtype=int), {}, ValueError, r"db_labels is empty"),
        (RANK, np.array([[1, 0]]), DB, {}, ValueError, r"labels of different kinds"),
        (RANK, np.array([[1, 0]]), np.eye(6, 3), {}, ValueError, r"same class list"),
        (RANK, np.array([0.5]), DB, {}, TypeError, r"labels must be integer class ids"),
        (RANK, np.array(0), DB, {}, ValueError, r"query_labels must be class ids"),
    ],
)
def test_ranking_errors(ranking, q, db, kwargs, error, match):
    with pytest.raises(error, match=match):
        mean_average_precision(ranking, q, db, **kwargs)


@pytest.mark.parametrize(
    ("k", "match"),
    [(0, "k must be a positive integer"), (6, "k=6 but the ranking has only 5 columns")],
)
def test_precision_at_k_errors(k, match):
    with pytest.raises(ValueError, match=match):
        precision_at_k(RANK, Q, DB, k)


@pytest.mark.parametrize("fn", [map_within_radius, precision_within_radius])
@pytest.mark.parametrize(
    ("D", "I", "kwargs", "error", "match"),
    [
        (D_SMALL[:, :4], I_SMALL, {}, ValueError, r"D has shape \(2, 4\) but I has shape"),
        (D_SMALL[:, ::-1], I_SMALL, {}, ValueError, r"sorted ascending within each row"),
        (D_SMALL.astype(str), I_SMALL, {}, TypeError, r"must be numbers"),
        (D_SMALL, I_SMALL, {"radius": -1}, ValueError, r"radius must be a non-negative"),
        (D_SMALL, I_SMALL, {"empty": "x"}, ValueError, r"empty must be one of"),
        (D_SMALL, I_SMALL + 5, {}, ValueError, r"I contains id 9"),
    ],
)
def test_within_radius_errors(fn, D, I, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(D, I, Q_SMALL, DB, **kwargs)


@pytest.mark.parametrize(
    ("D", "n_bits", "error", "match"),
    [
        (np.zeros((1, 5), dtype=int), 2, ValueError, r"D has shape \(1, 5\), but 1 query"),
        (np.full((1, 6), 3), 2, ValueError, r"outside \[0, 2\]"),
        (np.full((1, 6), -1), 2, ValueError, r"outside \[0, 2\]"),
        (np.full((1, 6), 0.5), 2, ValueError, r"non-integer distances"),
        (np.full((1, 6), True), 2, TypeError, r"must be integers"),
        (np.zeros((1, 6), dtype=int), 0, ValueError, r"n_bits must be a positive integer"),
        (lambda start, stop: np.zeros((1, 5)), 2, ValueError, r"expected \(1, 6\)"),
    ],
)
def test_precision_recall_curve_errors(D, n_bits, error, match):
    with pytest.raises(error, match=match):
        precision_recall_curve(D, Q, DB, n_bits)
