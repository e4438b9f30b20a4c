"""Unsupervised evaluation (recall of the exact float neighbours) against plain-loop references."""

from __future__ import annotations

import numpy as np
import pytest

from h2q.codes import unpack_bits
from h2q.evaluation.unsupervised import (
    UNSUPERVISED_METHODS,
    baseline_quantizers,
    evaluate_recall,
    render_recall_csv,
    render_recall_markdown,
)
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer
from h2q.quantizers.random import RandomRotationQuantizer, random_orthogonal


def _data(seed=0, n_fit=200, n_q=25, n_db=150, d=16, offset=0.3):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n_fit + n_q + n_db, d)) + offset
    M = (M / np.linalg.norm(M, axis=1, keepdims=True)).astype(np.float32)
    return M[:n_fit], M[n_fit : n_fit + n_q], M[n_fit + n_q :]


def _reference(quantizer, Q, X, ks, R, metric):
    """Recall of each column by plain loops over queries and database items."""
    Q64, X64 = Q.astype(np.float64), X.astype(np.float64)
    bq = unpack_bits(quantizer.encode(Q), quantizer.n_bits_)
    bx = unpack_bits(quantizer.encode(X), quantizer.n_bits_)
    out = {f"R@{k} {tie}": [] for k in ks for tie in ("ties by id", "ties by float", "rescored")}
    for i in range(len(Q)):

        def score(j, i=i):  # smaller is better
            if metric == "ip":
                return -float(Q64[i] @ X64[j])
            return float(((Q64[i] - X64[j]) ** 2).sum())

        def cosine_gap(j, i=i):
            a = Q64[i] / np.linalg.norm(Q64[i])
            b = X64[j] / np.linalg.norm(X64[j])
            return float(((a - b) ** 2).sum())

        ham = [int((bq[i] != bx[j]).sum()) for j in range(len(X))]
        truth = sorted(range(len(X)), key=lambda j: (score(j), j))
        by_id = sorted(range(len(X)), key=lambda j: (ham[j], j))
        by_float = sorted(range(len(X)), key=lambda j: (ham[j], cosine_gap(j), j))
        rescored = sorted(by_id[:R], key=lambda j: (score(j), j))
        for k in ks:
            t = set(truth[:k])
            out[f"R@{k} ties by id"].append(len(t & set(by_id[:k])) / k)
            out[f"R@{k} ties by float"].append(len(t & set(by_float[:k])) / k)
            out[f"R@{k} rescored"].append(len(t & set(rescored[:k])) / k)
    return {key: float(np.mean(v)) for key, v in out.items()}


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_matches_plain_loop_reference(metric):
    X_fit, Q, X = _data(d=8)  # 8-bit codes: many Hamming ties to break
    ks, R = (5, 20), 40
    quantizers = baseline_quantizers(seed=1)
    result = evaluate_recall(quantizers, X_fit, None, Q, X, ks=ks, rescore_size=R, metric=metric)
    assert [row.method for row in result.rows] == list(UNSUPERVISED_METHODS.values())
    assert result.ks == ks and result.rescore == R and result.n_database == len(X)
    for row in result.rows:
        expected = _reference(quantizers[row.method], Q, X, ks, R, metric)
        assert row.recall == pytest.approx(expected, abs=1e-12), row.method


def test_float_ties_beat_id_ties_on_heavy_ties():
    # 4-bit codes over 2,000 items: hundreds of items share each code, so the Hamming top-k
    # is almost all ties; breaking them by the float distance must help every method.
    X_fit, Q, X = _data(seed=3, n_fit=500, n_q=40, n_db=2000, d=32)
    result = evaluate_recall(baseline_quantizers(4, pca=True), X_fit, None, Q, X, ks=(10, 100))
    for row in result.rows:
        for k in (10, 100):
            assert row.recall[f"R@{k} ties by float"] >= row.recall[f"R@{k} ties by id"]
    gains = [r.recall["R@10 ties by float"] - r.recall["R@10 ties by id"] for r in result.rows]
    assert max(gains) > 0.05


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_rescoring_the_whole_database_is_exact(metric):
    X_fit, Q, X = _data(seed=2, d=12, offset=1.0)
    result = evaluate_recall(
        baseline_quantizers(), X_fit, None, Q, X, ks=(10, 100), rescore_size=len(X), metric=metric
    )
    for row in result.rows:
        assert row.recall["R@10 rescored"] == 1.0
        assert row.recall["R@100 rescored"] == 1.0
        assert row.recall["R@10 ties by id"] < 1.0  # the binary search alone is not exact


def test_cutoffs_are_lowered_to_the_database_size():
    X_fit, Q, X = _data(n_db=50)
    result = evaluate_recall(baseline_quantizers(methods=("sign",)), X_fit, None, Q, X)
    assert result.ks == (10, 50) and result.rescore == 50
    assert result.rows[0].recall["R@50 ties by id"] == 1.0  # the whole database


def test_random_rotation_is_seeded_sign_of_rotated_centred_vectors():
    R = random_orthogonal(6, seed=4)
    np.testing.assert_allclose(R @ R.T, np.eye(6), atol=1e-12)
    np.testing.assert_array_equal(R, random_orthogonal(6, seed=4))
    assert not np.allclose(R, random_orthogonal(6, seed=5))
    X_fit, Q, _ = _data(d=6)
    q = RandomRotationQuantizer(random_state=4).fit(X_fit)
    Z = (Q.astype(np.float64) - X_fit.astype(np.float64).mean(axis=0)) @ R.T
    assert (unpack_bits(q.encode(Q), 6) == (Z >= 0)).mean() > 0.999
    assert q.n_bits_ == 6 and q.transform(Q).shape == (len(Q), 6)


def test_render_names_every_column():
    X_fit, Q, X = _data()
    result = evaluate_recall(baseline_quantizers(methods=("sign", "itq")), X_fit, None, Q, X)
    md, csv = render_recall_markdown(result), render_recall_csv(result)
    for text in (md, csv):
        assert "R@10 ties by id" in text and "R@100 rescored top-100" in text and "ITQ" in text
    assert "inner product" in md and len(csv.splitlines()) == 3
    assert result.to_dict()["rows"][1]["method"] == "ITQ"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rescore_size": 5}, "rescore=5 is smaller than k=100"),
        ({"metric": "cosine"}, "metric must be 'ip' or 'l2'"),
        ({"ks": (0,)}, "k must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    X_fit, Q, X = _data()
    with pytest.raises(ValueError, match=match):
        evaluate_recall(baseline_quantizers(methods=("sign",)), X_fit, None, Q, X, **kwargs)


def test_pca_names_the_sign_row_and_drops_centred_sign():
    assert list(baseline_quantizers(4, pca=True)) == ["PCA sign", "random rotation", "ITQ", "H2Q"]
    with pytest.raises(ValueError, match="centred sign is the same as sign after PCA"):
        baseline_quantizers(4, pca=True, methods=("sign", "centred-sign"))


@pytest.mark.parametrize("pca", [False, True])
def test_baseline_quantizers_settings(pca):
    """Each method's quantizer: centred (but raw sign), seeded, PCA when asked, defaults kept."""
    projection = "pca" if pca else None
    expected = {
        "PCA sign" if pca else "sign": SignQuantizer(8, projection=projection),
        "centred sign": SignQuantizer(8, center=True, projection=projection),
        "random rotation": RandomRotationQuantizer(
            8, center=True, projection=projection, rescale=False, random_state=3
        ),
        "ITQ": ITQQuantizer(8, center=True, projection=projection, random_state=3),
        "H2Q": HouseholderQuantizer(8, center=True, projection=projection, random_state=3),
    }
    if pca:
        del expected["centred sign"]
    got = baseline_quantizers(8, pca=pca, seed=3)
    assert list(got) == list(expected)
    for name, q in got.items():
        assert type(q) is type(expected[name]) and q.get_params() == expected[name].get_params()


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        baseline_quantizers(methods=("pq",))
    with pytest.raises(ValueError, match="X_query has 4 features, but X_fit has 3"):
        evaluate_recall(baseline_quantizers(), np.ones((5, 3)), None, np.ones((2, 4)), None)


def test_asymmetric_columns_sit_beside_hamming():
    X_fit, Q, X = _data()
    plain = evaluate_recall(baseline_quantizers(methods=("itq",)), X_fit, None, Q, X)
    both = evaluate_recall(
        baseline_quantizers(methods=("itq",)), X_fit, None, Q, X, asymmetric=True
    )
    assert "R@10 asymmetric" in both.columns() and "R@10 asymmetric" not in plain.columns()
    for column in plain.columns():  # the Hamming columns do not change
        assert both.rows[0].recall[column] == plain.rows[0].recall[column]
    # the estimator ranks the float neighbours better than Hamming distance does
    assert both.rows[0].recall["R@10 asymmetric"] > both.rows[0].recall["R@10 ties by id"]
    assert "asymmetric" in render_recall_markdown(both) and both.to_dict()["asymmetric"]
