"""Tests of h2q.evaluation.supervised: a hand-checked case, a brute-force reference, rendering,
errors."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import numpy as np
import pytest

from h2q.codes import unpack_bits
from h2q.embeddings import EmbeddingFolds
from h2q.evaluation import (
    EvaluationResult,
    evaluate_quantizers,
    plot_precision_recall,
    render_csv,
    render_markdown,
    supervised,
)
from h2q.evaluation.metrics import variant_name
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer

# --- a hand-checked world: 2 bits, no rotation, no centring ----------------------------------
# Query 0 = (1, 0.1), label 0, code 11. Database (code, Hamming distance to query 0, label):
#   0: (-1, -1)  00  2  label 1
#   1: ( 1,  1)  11  0  label 1
#   2: ( 1, .5)  11  0  label 0
#   3: (.5, -1)  10  1  label 0
#   4: ( 1, .05) 11  0  label 0
# Ties at distance 0 by angle to the query (5.7 deg): item 4 (2.9), item 2 (26.6), item 1 (45):
#   with tie-break:    ranking [4, 2, 1, 3, 0], relevance [1, 1, 0, 1, 0]
#   ties by id:        ranking [1, 2, 4, 3, 0], relevance [0, 1, 1, 1, 0]
# Query 1 = (-1, -0.5), label 2: no relevant item anywhere, so every score is 0 and counts.
X_DB = np.array([[-1, -1], [1, 1], [1, 0.5], [0.5, -1], [1, 0.05]], dtype=np.float64)
Y_DB = np.array([1, 1, 0, 0, 0])
X_Q = np.array([[1, 0.1], [-1, -0.5]], dtype=np.float64)
Y_Q = np.array([0, 2])
X_TRAIN = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.2]])
X_VAL = np.array([[3.0, 4.0]])


def _folds(X_train, X_val, X_query, y_query, X_db, y_db):
    return EmbeddingFolds(
        train=X_train, val=X_val, query=X_query, y_query=y_query, database=X_db, y_database=y_db
    )


HAND = {
    # (tie_break): (mAP@2, mAP@all, P@2, mAP@H<=0), query 0's score halved by query 1's 0
    True: (1.0 / 2, (1 + 1 + 3 / 4) / 3 / 2, 1.0 / 2, 1.0 / 2),
    False: ((1 / 2) / 1 / 2, (1 / 2 + 2 / 3 + 3 / 4) / 3 / 2, 0.5 / 2, (1 / 2 + 2 / 3) / 2 / 2),
}


@pytest.mark.parametrize("tie_break", [True, False])
def test_hand_checked_case(tie_break):
    result = evaluate_quantizers(
        {"sign": SignQuantizer(center=False)},
        _folds(X_TRAIN, X_VAL, X_Q, Y_Q, X_DB, Y_DB),
        k=2,
        radius=0,
        tie_break=tie_break,
    )
    (row,) = result.rows
    map_k, map_all, p_k, map_r = HAND[tie_break]
    assert row.method == "sign" and row.quantizer == "SignQuantizer" and row.n_bits == 2
    assert row.map_at_k == pytest.approx(map_k)
    assert row.map_all == pytest.approx(map_all)
    assert row.precision_at_k == pytest.approx(p_k)
    assert row.map_radius == pytest.approx(map_r)
    # rescaled to norm sqrt(2): z = sqrt(2) * (0.6, 0.8), both signs +1
    z = np.sqrt(2) * np.array([0.6, 0.8])
    assert row.quantization_loss == pytest.approx(np.mean((z - 1) ** 2))
    assert result.loss_fold == "val"
    # PR by radius 0, 1, 2. Query 0: retrieved 3/4/5 items, relevant 2/3/3 of 3.
    # Query 1 retrieves 1/2/5 items, none relevant (precision 0); its recall is 0/0 (skipped).
    assert row.pr_radius == [0, 1, 2]
    assert row.pr_precision == pytest.approx([(2 / 3) / 2, (3 / 4) / 2, (3 / 5) / 2])
    assert row.pr_recall == pytest.approx([2 / 3, 1.0, 1.0])
    assert row.fit_time_s >= 0
    assert (result.k, result.radius, result.tie_break) == (2, 0, tie_break)
    assert (result.n_train, result.n_queries, result.n_database) == (3, 2, 5)


def test_k_beyond_database_is_lowered_and_loss_falls_back_to_queries():
    result = evaluate_quantizers(
        {"sign": SignQuantizer(center=False)}, _folds(X_TRAIN, None, X_Q, Y_Q, X_DB, Y_DB), k=5000
    )
    assert result.k == 5 and result.map_variant == variant_name(5)
    assert result.loss_fold == "query"
    # with k = n_db, mAP@k is mAP over the whole ranking
    assert result.rows[0].map_at_k == pytest.approx(result.rows[0].map_all)


# --- against a slow, obviously-correct reference ------------------------------------------------


def _clusters(rng, n, centers, noise=0.6, multi_hot=False):
    y = rng.integers(0, len(centers), n)
    X = centers[y] + noise * rng.normal(size=(n, centers.shape[1]))
    if not multi_hot:
        return X.astype(np.float32), y
    Y = np.zeros((n, len(centers)), dtype=np.uint8)
    Y[np.arange(n), y] = 1
    Y[np.arange(n), rng.integers(0, len(centers), n)] = 1
    Y[rng.random(n) < 0.05] = 0  # a few items without any label
    return X.astype(np.float32), Y


def _reference(quantizer, X_q, y_q, X_db, y_db, k, radius, tie_break):
    """Per-query Python loops over a full distance matrix, with np.lexsort rankings."""
    n_bits = quantizer.n_bits_
    bq = unpack_bits(quantizer.encode(X_q), n_bits).astype(int)
    bd = unpack_bits(quantizer.encode(X_db), n_bits).astype(int)
    fq = np.asarray(quantizer.transform(X_q), dtype=np.float64)
    fd = np.asarray(quantizer.transform(X_db), dtype=np.float64)
    fq /= np.linalg.norm(fq, axis=1, keepdims=True)
    fd /= np.linalg.norm(fd, axis=1, keepdims=True)
    ids = np.arange(len(X_db))
    out = {"map_at_k": [], "map_all": [], "precision_at_k": [], "map_radius": []}

    def ap(rel):
        hits, total = 0, 0.0
        for r, is_rel in enumerate(rel, start=1):
            if is_rel:
                hits += 1
                total += hits / r
        return total / hits if hits else 0.0

    for i in range(len(X_q)):
        ham = np.array([np.sum(bq[i] != bd[j]) for j in range(len(X_db))])
        feat = ((fd - fq[i]) ** 2).sum(axis=1)
        order = np.lexsort((ids, feat, ham)) if tie_break else np.lexsort((ids, ham))
        if y_q.ndim == 1:
            rel = [bool(y_q[i] == y_db[j]) for j in order]
        else:
            rel = [bool(np.any(y_q[i] & y_db[j])) for j in order]
        out["map_at_k"].append(ap(rel[:k]))
        out["map_all"].append(ap(rel))
        out["precision_at_k"].append(sum(rel[:k]) / k)
        within = [r for r, j in zip(rel, order, strict=True) if ham[j] <= radius]
        out["map_radius"].append(ap(within))
    return {key: float(np.mean(v)) for key, v in out.items()}


@pytest.mark.parametrize("multi_hot", [False, True])
def test_matches_brute_force_reference(multi_hot, monkeypatch):
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(5, 12))
    X_train, _ = _clusters(rng, 200, centers)
    X_val, _ = _clusters(rng, 60, centers)
    X_q, y_q = _clusters(rng, 23, centers, multi_hot=multi_hot)
    X_db, y_db = _clusters(rng, 150, centers, multi_hot=multi_hot)
    # small blocks: several blocks of queries, the last one partial
    monkeypatch.setattr(supervised, "_BLOCK_BYTES", 40 * 150 * 4)
    quantizers = {
        "sign": SignQuantizer(8, projection="pca"),
        "itq": ITQQuantizer(8, projection="pca", max_iter=10),
        "h2q": HouseholderQuantizer(8, projection="pca", max_iter=30),
    }
    for tie_break in (True, False):
        result = evaluate_quantizers(
            quantizers,
            _folds(X_train, X_val, X_q, y_q, X_db, y_db),
            k=20,
            radius=1,
            tie_break=tie_break,
        )
        assert [r.method for r in result.rows] == ["sign", "itq", "h2q"]
        for row in result.rows:
            expected = _reference(quantizers[row.method], X_q, y_q, X_db, y_db, 20, 1, tie_break)
            for key, value in expected.items():
                assert getattr(row, key) == pytest.approx(value, abs=1e-12), (row.method, key)


def test_clustered_rotations_beat_sign_and_progress_is_reported():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 8))
    X_train, _ = _clusters(rng, 200, centers)
    X_val, _ = _clusters(rng, 50, centers)
    X_q, y_q = _clusters(rng, 40, centers)
    X_db, y_db = _clusters(rng, 200, centers)
    calls = []
    result = evaluate_quantizers(
        {
            "sign": SignQuantizer(center=False),
            "itq": ITQQuantizer(max_iter=20, center=False),
            "h2q": HouseholderQuantizer(max_iter=60, center=False),
        },
        _folds(X_train, X_val, X_q, y_q, X_db, y_db),
        k=100,
        progress=lambda *args: calls.append(args),
    )
    loss = {r.method: r.quantization_loss for r in result.rows}
    assert loss["h2q"] < loss["sign"] and loss["itq"] < loss["sign"]
    fit_calls = [c for c in calls if c[:2] == ("h2q", "fit")]
    # the default solver stops when its validation loss stalls, at most at max_iter
    assert fit_calls[0][2] == 0 and fit_calls[-1][3] == 60 and 0 < fit_calls[-1][2] <= 60
    for method in ("sign", "itq", "h2q"):
        assert [c for c in calls if c[:2] == (method, "rank")][-1][2:] == (40, 40)
    assert not [c for c in calls if c[0] in ("sign", "itq") and c[1] == "fit"]


# --- rendering -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_result() -> EvaluationResult:
    return evaluate_quantizers(
        {"sign": SignQuantizer(), "other": SignQuantizer()},
        _folds(X_TRAIN, X_VAL, X_Q, Y_Q, X_DB, Y_DB),
        k=2,
        radius=0,
    )


def test_markdown_names_the_variant(small_result):
    text = render_markdown(small_result)
    lines = text.splitlines()
    assert variant_name(2) in lines[0]
    assert "mAP@all" in lines[0] and "mAP@H<=0" in lines[0] and "P@2" in lines[0]
    assert "quantization loss (l2, val)" in lines[0]
    assert lines[1].startswith("|:---|")
    assert lines[2].startswith("| sign | 2 | 50.00 |")
    assert lines[3].startswith("| other |")
    assert "ties by squared L2 distance" in text


def test_csv_round_trips(small_result):
    rows = list(csv.reader(io.StringIO(render_csv(small_result))))
    assert rows[0][:3] == ["method", "bits", variant_name(2)]
    assert len(rows) == 3 and all(len(r) == len(rows[0]) for r in rows)
    assert rows[1][0] == "sign" and float(rows[1][2]) == pytest.approx(0.5)


def test_to_dict_is_strict_json(small_result):
    data = json.loads(json.dumps(small_result.to_dict(), allow_nan=False))
    assert data["map_variant"] == variant_name(2)
    assert data["columns"]["map_at_k"] == variant_name(2)
    assert data["rows"][0]["pr_radius"] == [0, 1, 2]
    assert data["relevance"] == "share at least one label"


def test_pr_curves_are_each_rows_points(small_result):
    curves = small_result.pr_curves()
    assert list(curves) == [f"{r.method} ({r.n_bits} bits)" for r in small_result.rows]
    for row, curve in zip(small_result.rows, curves.values(), strict=True):
        assert curve.radius.tolist() == row.pr_radius
        np.testing.assert_array_equal(curve.precision, row.pr_precision)
        np.testing.assert_array_equal(curve.recall, row.pr_recall)
    # as a cell file keeps them: a missing point (None) reads as NaN
    first = small_result.rows[0]
    read_back = dataclasses.replace(first, pr_recall=[None, *first.pr_recall[1:]])
    assert np.isnan(read_back.pr_curve.recall[0]) and read_back.pr_curve.recall.dtype == np.float64


def test_plot_writes_png(small_result, tmp_path):
    path = tmp_path / "pr.png"
    plot_precision_recall(small_result.pr_curves(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    buffer = io.BytesIO()
    plot_precision_recall(small_result.pr_curves(), buffer, title="t")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_plot_without_matplotlib(small_result, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"pip install 'h2q\[plot\]'"):
        plot_precision_recall(small_result.pr_curves(), tmp_path / "pr.png")
    assert not (tmp_path / "pr.png").exists()


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"database": X_DB[:, :1]}, "database has 1 features, but train has 2"),
        ({"val": np.ones((1, 3))}, "val has 3 features"),
        ({"y_database": Y_DB[:4]}, "y_database has 4 entries but there are 5 samples"),
        ({"y_query": np.ones((2, 3), dtype=int)}, "class ids on both sides"),
        ({"query": None}, r"lacks \['query'\]"),
        ({"train": None}, r"lacks \['train'\]"),
    ],
)
def test_errors(change, match):
    folds = _folds(X_TRAIN, X_VAL, X_Q, Y_Q, X_DB, Y_DB).replace(**change)
    with pytest.raises(ValueError, match=match):
        evaluate_quantizers({"sign": SignQuantizer()}, folds)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantizers": {}}, "non-empty dict"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"radius": -1}, "radius must be an integer >= 0"),
    ],
)
def test_bad_settings(kwargs, match):
    args = {"quantizers": {"sign": SignQuantizer()}, **kwargs}
    with pytest.raises(ValueError, match=match):
        evaluate_quantizers(folds=_folds(X_TRAIN, X_VAL, X_Q, Y_Q, X_DB, Y_DB), **args)


def test_folds_must_be_embedding_folds():
    with pytest.raises(TypeError, match="folds must be an h2q.EmbeddingFolds"):
        evaluate_quantizers({"sign": SignQuantizer()}, {"train": X_TRAIN})


def test_asymmetric_map_sits_beside_hamming_and_matches_its_ranking():
    from h2q.evaluation.metrics import mean_average_precision
    from h2q.search import AsymmetricIndex

    rng = np.random.default_rng(1)
    centers = rng.normal(size=(5, 16))
    X_train, _ = _clusters(rng, 200, centers)
    X_q, y_q = _clusters(rng, 30, centers)
    X_db, y_db = _clusters(rng, 150, centers)
    folds = _folds(X_train, None, X_q, y_q, X_db, y_db)
    plain = evaluate_quantizers({"itq": ITQQuantizer(max_iter=5)}, folds, k=50)
    both = evaluate_quantizers({"itq": ITQQuantizer(max_iter=5)}, folds, k=50, asymmetric=True)
    assert plain.rows[0].map_at_k == both.rows[0].map_at_k  # the Hamming default is unchanged
    assert "asymmetric" not in render_markdown(plain) and "asymmetric" in render_markdown(both)
    index = AsymmetricIndex(both_quantizer := ITQQuantizer(max_iter=5).fit(X_train), "ip")
    index.add(X_db)
    expected = mean_average_precision(index.search(X_q, 50)[1], y_q, y_db, 50)
    assert both.rows[0].map_at_k_asymmetric == pytest.approx(expected)
    assert both_quantizer.n_bits_ == 16
