"""The main job's fast paths against the slow, obviously correct ones they replace.

Each fast path but the last must give the same numbers bit for bit (so the stage-1 validation
mAP, the best-checkpoint choice and every cell score stay as they were):

- the whole-database ranking with the feature tie-break, a block of queries at a time
  (:func:`h2q.search.rank_database` with ``k=None``), against the per-query order of
  ``feature_distances`` + ``feature_order``, with the block's distances from the compiled
  kernel and from numpy;
- the repeated-id check of the metrics by counting, against sorting each row;
- the evaluation's one-pass AP@all / AP@k / precision@k, against the three public metrics,
  and the scores of a ranking of :mod:`h2q.search` without re-checking its ids;
- the sorted distances of a whole-database ranking and the precision-recall counts by
  radius (compiled), against numpy's gather and histograms;
- the training loop's Adam (torch's fused Adam, :func:`h2q.training.loop.make_adam`), against
  torch's per-parameter Adam, within float32 rounding.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from h2q.codes import encode_sign
from h2q.evaluation.metrics import (
    _ranking_scores,
    _rows_with_repeats,
    _trusted_map,
    _whole_ranking_map,
    average_precision,
    mean_average_precision,
    precision_at_k,
)
from h2q.search import _common as common
from h2q.search import rank_database
from h2q.search._scan import feature_order


def _slow_full_ranking(q: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The old path: per query, feature_distances then feature_order, over all items."""
    qf = q / np.linalg.norm(q, axis=1, keepdims=True)
    dbf = np.ascontiguousarray(db / np.linalg.norm(db, axis=1, keepdims=True))
    qc, dc = encode_sign(q), encode_sign(db)
    n_bits = 8 * qc.shape[1]
    bits_q = np.unpackbits(qc, axis=1)[:, :n_bits].astype(np.int64)
    bits_d = np.unpackbits(dc, axis=1)[:, :n_bits].astype(np.int64)
    buffer = np.empty_like(dbf)
    D, I = [], []
    for r in range(len(q)):
        dist = (bits_q[r] != bits_d).sum(axis=1)
        fd = common.feature_distances(dbf, None, qf[r].astype(dbf.dtype), buffer)
        order = feature_order(dist, fd, np.arange(len(db)), n_bits, len(db))
        D.append(dist[order])
        I.append(order)
    return np.array(D), np.array(I)


def _data(n_q: int, n_db: int, d: int, seed: int, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, d))
    yq, ydb = rng.integers(0, 5, n_q), rng.integers(0, 5, n_db)
    q = (centres[yq] + rng.standard_normal((n_q, d))).astype(dtype)
    db = (centres[ydb] + rng.standard_normal((n_db, d))).astype(dtype)
    db[7] = db[3]  # equal codes and features: the id decides
    db[11] = 2 * db[3]  # equal after normalisation (up to rounding)
    q[0] = db[5]
    return q, db, yq, ydb


@pytest.mark.parametrize(
    ("n_q", "n_db", "d"),
    [(60, 700, 32), (40, 500, 16), (30, 300, 64), (20, 200, 5), (10, 150, 1), (9, 300, 130)],
)
def test_full_ranking_blocks_equal_the_per_query_order(n_q, n_db, d):
    q, db, _, _ = _data(n_q, n_db, d, seed=d)
    D, I = rank_database(encode_sign(q), encode_sign(db), None, query_features=q, db_features=db)
    D_ref, I_ref = _slow_full_ranking(q, db)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(D, D_ref)


def test_feature_distances_block_is_bitwise_the_row_wise_sum():
    rng = np.random.default_rng(3)
    for d in (1, 7, 8, 9, 31, 32, 64, 127, 128, 129, 200, 300):
        db = rng.standard_normal((50, d)).astype(np.float32)
        q = rng.standard_normal((6, d)).astype(np.float32)
        block = common.feature_distances_block(np.ascontiguousarray(db.T), q)
        buffer = np.empty_like(db)
        rows = np.stack([common.feature_distances(db, None, x, buffer) for x in q])
        np.testing.assert_array_equal(block, rows, err_msg=f"d={d}")


@pytest.mark.parametrize("compiled", [True, False])
def test_feature_distances_block_both_paths_are_bitwise_the_row_wise_sum(monkeypatch, compiled):
    """The compiled kernel (numba) and the numpy fallback, on blocks wider than a vector."""
    if compiled:
        pytest.importorskip("numba")
        if not common.numba_available():
            pytest.skip("numba is disabled here")
    else:
        monkeypatch.setattr(common, "numba_available", lambda: False)
    rng = np.random.default_rng(5)
    for d in (1, 3, 8, 15, 16, 33, 64, 120, 128):
        db = rng.standard_normal((1003, d)).astype(np.float32)
        q = rng.standard_normal((17, d)).astype(np.float32)
        buffer = np.empty_like(db)
        rows = np.stack([common.feature_distances(db, None, x, buffer) for x in q])
        assert common._compiled_distances(np.ascontiguousarray(db.T), q) is compiled
        block = common.feature_distances_block(np.ascontiguousarray(db.T), q)
        np.testing.assert_array_equal(block, rows, err_msg=f"d={d}")


def test_full_ranking_falls_back_when_the_block_sum_differs(monkeypatch):
    """Should numpy change its summation order, the row-wise path is used (and is correct)."""
    q, db, _, _ = _data(20, 300, 16, seed=1)
    _, I_ref = _slow_full_ranking(q, db)
    calls = []
    original = common.feature_distances_block

    def off_by_a_bit(db_t, queries):
        calls.append(len(queries))
        return np.nextafter(original(db_t, queries), np.float32(np.inf))

    monkeypatch.setattr("h2q.search._scan.feature_distances_block", off_by_a_bit)
    _, I = rank_database(encode_sign(q), encode_sign(db), None, query_features=q, db_features=db)
    assert calls, "the block path was not tried"
    np.testing.assert_array_equal(I, I_ref)


def test_full_ranking_float64_features_take_the_row_wise_path():
    q, db, _, _ = _data(15, 200, 8, seed=2, dtype=np.float64)
    _, I = rank_database(encode_sign(q), encode_sign(db), None, query_features=q, db_features=db)
    _, I_ref = _slow_full_ranking(q, db)
    np.testing.assert_array_equal(I, I_ref)


def test_rows_with_repeats_counts_like_the_sort():
    rng = np.random.default_rng(0)
    full = np.stack([rng.permutation(50) for _ in range(30)])
    full[4, 9] = full[4, 10]
    full[17, 0] = full[17, 49]
    short = full[:, :5].copy()
    short[2, 1] = short[2, 3]
    for ids in (full, short):
        ref = np.flatnonzero((np.diff(np.sort(ids, axis=1), axis=1) == 0).any(axis=1))
        for dtype in (np.int64, np.int32, np.uint64, np.uint16):
            np.testing.assert_array_equal(_rows_with_repeats(ids.astype(dtype), 50), ref)
    with pytest.raises(ValueError, match="repeats a database id in 2 row"):
        average_precision(full, rng.integers(0, 3, 30), rng.integers(0, 3, 50))
    labels = rng.integers(0, 3, 30), rng.integers(0, 3, 50)
    fine = np.stack([rng.permutation(50) for _ in range(30)])
    np.testing.assert_array_equal(
        average_precision(fine.astype(np.uint64), *labels), average_precision(fine, *labels)
    )


def test_ranking_scores_equal_the_three_metrics():
    q, db, yq, ydb = _data(300, 900, 16, seed=4)
    _, I = rank_database(encode_sign(q), encode_sign(db), None, query_features=q, db_features=db)
    for k in (1, 100, 900):
        ap_all, ap_k, p_k = _ranking_scores(I, yq, ydb, k)
        np.testing.assert_array_equal(ap_all, average_precision(I, yq, ydb, None))
        np.testing.assert_array_equal(ap_k, average_precision(I[:, :k], yq, ydb, k))
        assert p_k == precision_at_k(I[:, :k], yq, ydb, k)
    assert float(ap_all.mean()) == mean_average_precision(I, yq, ydb)


def test_trusted_scores_equal_the_checked_ones():
    """Scoring a ranking of h2q.search without re-checking its ids gives the same numbers."""
    q, db, yq, ydb = _data(300, 900, 16, seed=6)
    multi = np.random.default_rng(6).integers(0, 2, (1200, 4))  # multi-hot labels
    _, I = rank_database(encode_sign(q), encode_sign(db), None, query_features=q, db_features=db)
    for labels in ((yq, ydb), (multi[:300], multi[300:])):
        for k in (1, 50, 900):
            assert _trusted_map(I, *labels, k) == mean_average_precision(I, *labels, k)
            fast, slow = (
                _ranking_scores(I, *labels, k, trusted=True),
                _ranking_scores(I, *labels, k),
            )
            for a, b in zip(fast, slow, strict=True):
                np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="one row per query"):
        _trusted_map(I[:10], yq, ydb, 900)
    with pytest.raises(ValueError, match="k=901"):
        _trusted_map(I, yq, ydb, 901)


def test_compiled_ap_terms_equal_numpys(monkeypatch):
    """The compiled AP terms, summed by numpy, are numpy's own terms bit for bit, in all and
    in the first k ranks (every AP and mAP path of h2q.evaluation.metrics goes through them)."""
    from h2q.evaluation import metrics
    from h2q.search import _jit

    if not _jit.numba_available():
        pytest.skip("numba is missing or disabled here")
    q, db, yq, ydb = _data(300, 900, 16, seed=6)
    multi = np.random.default_rng(6).integers(0, 2, (1200, 4))  # multi-hot labels, some empty
    _, I = rank_database(encode_sign(q), encode_sign(db), None, query_features=q, db_features=db)
    for labels in ((yq, ydb), (multi[:300], multi[300:])):
        for k in (1, 50, 900):
            relevance = metrics._Relevance(*labels)
            compiled = metrics._ranked_terms(relevance, 0, 300, I, k)
            monkeypatch.setattr(_jit, "numba_available", lambda: False)
            reference = metrics._ranked_terms(relevance, 0, 300, I, k)
            monkeypatch.undo()
            for a, b in zip(compiled, reference, strict=True):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("compiled", [True, False])
def test_whole_ranking_map_equals_the_trusted_map(monkeypatch, compiled):
    """The validation's score of the whole ranking, a chunk of queries at a time (compiled
    terms, or numpy's passes), is the number of _trusted_map on the whole ranking."""
    from h2q.search import _jit, iter_rank_order

    if compiled and not _jit.numba_available():
        pytest.skip("numba is missing or disabled here")
    if not compiled:
        monkeypatch.setattr(_jit, "numba_available", lambda: False)
    q, db, yq, ydb = _data(300, 900, 16, seed=6)
    multi = np.random.default_rng(6).integers(0, 2, (1200, 4))  # multi-hot labels, some empty
    features = {"query_features": q, "db_features": db}
    _, I = rank_database(encode_sign(q), encode_sign(db), None, **features)
    for labels in ((yq, ydb), (multi[:300], multi[300:])):
        blocks = iter_rank_order(encode_sign(q), encode_sign(db), chunk_size=64, **features)
        assert _whole_ranking_map(blocks, *labels) == _trusted_map(I, *labels, 900)
    with pytest.raises(ValueError, match="every query"):
        _whole_ranking_map([(slice(0, 10), I[:10])], yq, ydb)
    with pytest.raises(ValueError, match="whole database"):
        _whole_ranking_map([(slice(0, 300), I[:, :50])], yq, ydb)


def test_loop_adam_is_fused_and_close_to_the_multi_tensor_one(monkeypatch):
    """The loop trains with torch's fused Adam; a run with the multi-tensor Adam (nine passes,
    other float32 roundings) ends at nearly the same weights and validation mAP."""
    from h2q.losses import HashingObjective, make_loss
    from h2q.models import HashingModel, MLPBackbone
    from h2q.training import LoopSettings, loop, train

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)).astype(np.float32)
    y = rng.integers(0, 4, 300)
    settings = LoopSettings(epochs=3, lr_head=1e-3, batch_size=32, seed=0)
    made = []
    original = loop.make_adam

    def recorded(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    def run() -> tuple[list[torch.Tensor], float]:
        torch.manual_seed(0)
        model = HashingModel(MLPBackbone(20, hidden=(16,)), 8)
        objective = HashingObjective(make_loss("dpsh", 8, 4), "hswd", None, random_state=0)
        result = train(model, objective, (X, y), (X[:60], y[:60]), settings, progress=False)
        return [p.detach().clone() for p in model.parameters()], result.best_val_map

    monkeypatch.setattr(loop, "make_adam", recorded)
    fused, fused_map = run()
    assert made[-1].defaults["fused"] is True
    monkeypatch.setattr(
        loop, "make_adam", lambda groups, wd: torch.optim.Adam(groups, weight_decay=wd)
    )
    multi, multi_map = run()
    assert abs(fused_map - multi_map) < 0.02
    assert any(not torch.equal(a, b) for a, b in zip(fused, multi, strict=True))
    for a, b in zip(fused, multi, strict=True):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


_SHAPES = [(96, 160), (96,), (7,), (33, 5), (1,)]


def _adam_run(make, steps, state=None):
    """Weights and optimiser after ``steps`` steps on seeded gradients (two groups)."""
    torch.manual_seed(0)
    params = [(torch.randn(s) * 0.1).requires_grad_(True) for s in _SHAPES]
    groups = [{"params": params[:2], "lr": 1e-3}, {"params": params[2:], "lr": 3e-4}]
    opt = make(groups, 5e-4)
    if state is not None:
        opt.load_state_dict(copy.deepcopy(state))  # loading shares the tensors otherwise
    gen = torch.Generator().manual_seed(1 if state is None else 2)
    for i in range(steps):
        for p in params:
            # Occasional large gradients reach the moments' and the division's extremes.
            p.grad = torch.randn(p.shape, generator=gen) * (3.0 if i % 7 == 3 else 0.01)
        opt.step()
    return params, opt


def test_loop_adam_follows_torchs_adam_and_its_checkpoints():
    """make_adam's steps stay within float32 rounding of torch's per-parameter Adam, and a
    state_dict of either continues in the other."""
    from h2q.training.loop import make_adam

    def per_parameter(groups, wd):
        return torch.optim.Adam(groups, weight_decay=wd, foreach=False)

    ref, fast = _adam_run(per_parameter, 60), _adam_run(make_adam, 60)
    assert fast[1].defaults["fused"] is True
    start = _adam_run(make_adam, 0)[0]
    for a, b, c in zip(ref[0], fast[0], start, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        assert not torch.equal(b, c)  # the weights moved
    more_ref = _adam_run(per_parameter, 5, ref[1].state_dict())
    more_fast = _adam_run(make_adam, 5, ref[1].state_dict())
    for a, b in zip(more_ref[0], more_fast[0], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_make_adam_falls_back_to_multi_tensor_when_fused_is_refused(monkeypatch):
    from h2q.training import loop

    adam = torch.optim.Adam

    def picky(groups, **kwargs):
        if kwargs.get("fused"):
            raise RuntimeError("fused=True is not supported here")
        return adam(groups, **kwargs)

    monkeypatch.setattr(loop.torch.optim, "Adam", picky)
    opt = loop.make_adam([torch.zeros(3, requires_grad=True)], 0.0)
    assert opt.defaults["foreach"] is True and not opt.defaults["fused"]


@pytest.mark.parametrize(("dtype", "n_vals"), [(np.uint8, 65), (np.uint16, 300)])
def test_radix_order_equals_sorted_keys(monkeypatch, dtype, n_vals):
    from h2q.search import _scan

    if not _scan.numba_available():
        pytest.skip("numba is missing or disabled here")
    rng = np.random.default_rng(7)
    dist = rng.integers(0, n_vals, (6, 3000)).astype(dtype)
    fd = rng.random((6, 3000), dtype=np.float32) * 4
    fd[1] = fd[1, :7].repeat(3000 // 7 + 1)[:3000]  # many equal feature distances: ids decide
    fd[2] = 0.0  # every pass skipped: one digit for all
    dist[3] = 5
    compiled = np.empty(dist.shape, dtype=np.int64)
    _scan._sort_rows(dist, fd, 12, n_vals, compiled)
    monkeypatch.setattr(_scan, "numba_available", lambda: False)
    reference = np.empty_like(compiled)
    _scan._sort_rows(dist, fd, 12, n_vals, reference)
    np.testing.assert_array_equal(compiled, reference)
    key = _scan._order_keys(dist, fd, 12)
    assert len(np.unique(key)) == key.size  # unique keys: ids in the low bits
    assert np.all(np.diff(np.take_along_axis(key, reference, axis=1), axis=1) > 0)


@pytest.mark.parametrize(("dtype", "n_vals"), [(np.uint8, 65), (np.uint16, 300)])
def test_sorted_distances_equal_the_gather_through_the_order(monkeypatch, dtype, n_vals):
    """The compiled counting sort of a block's distances is the block gathered through its
    ranking order (the D of a whole-database ranking), as int32."""
    from h2q.search import _scan

    if not _scan.numba_available():
        pytest.skip("numba is missing or disabled here")
    rng = np.random.default_rng(8)
    dist = rng.integers(0, n_vals, (5, 2000)).astype(dtype)
    dist[1] = n_vals - 1  # one value for all
    dist[2, :5] = 0  # a short bucket first
    fd = rng.random((5, 2000), dtype=np.float32)
    order = np.empty(dist.shape, dtype=np.int64)
    _scan._sort_rows(dist, fd, 11, n_vals, order)
    scan = _scan.Scan.__new__(_scan.Scan)  # only n_bits is read
    scan.n_bits = n_vals - 1
    compiled = scan._ranked_distances(dist, order)
    monkeypatch.setattr(_scan, "numba_available", lambda: False)
    reference = scan._ranked_distances(dist, order)
    assert compiled.dtype == reference.dtype == np.int32
    np.testing.assert_array_equal(compiled, reference)
    assert np.all(np.diff(compiled, axis=1) >= 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_compiled_radius_counts_equal_numpys_histograms(monkeypatch, dtype):
    """The precision-recall curve from the compiled per-radius counts is numpy's, bit for
    bit, with single labels and multi-hot ones (some empty)."""
    from h2q.evaluation.metrics import precision_recall_curve
    from h2q.search import _jit

    if not _jit.numba_available():
        pytest.skip("numba is missing or disabled here")
    q, db, yq, ydb = _data(300, 900, 16, seed=9)
    multi = np.random.default_rng(9).integers(0, 2, (1200, 4))
    D = (
        np.unpackbits(encode_sign(q)[:, None, :] ^ encode_sign(db)[None, :, :], axis=2)
        .sum(axis=2)
        .astype(dtype)
    )
    for labels in ((yq, ydb), (multi[:300], multi[300:])):
        for empty in ("skip", "zero"):
            compiled = precision_recall_curve(D, *labels, 16, empty=empty, chunk_size=128)
            monkeypatch.setattr(_jit, "numba_available", lambda: False)
            reference = precision_recall_curve(D, *labels, 16, empty=empty, chunk_size=128)
            monkeypatch.undo()
            for a, b in zip(compiled, reference, strict=True):
                np.testing.assert_array_equal(a, b)
