import numpy as np
import pytest
import torch

from h2q import _io
from h2q.exceptions import FileFormatError, NotFittedError
from h2q.quantizers import (
    HouseholderQuantizer,
    ITQQuantizer,
    SignQuantizer,
    load_quantizer,
)

from .conftest import clustered

ALL = [
    lambda **kw: SignQuantizer(**kw),
    lambda **kw: ITQQuantizer(**kw),
    lambda **kw: HouseholderQuantizer(max_iter=30, **kw),
]
IDS = ["sign", "itq", "h2q"]


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_estimator_protocol(make, data16):
    X, Xv = data16
    q = make()
    with pytest.raises(NotFittedError, match="not fitted yet. Call fit"):
        q.transform(X)
    assert isinstance(NotFittedError("x"), ValueError) and isinstance(
        NotFittedError("x"), AttributeError
    )
    assert q.fit(X, X_val=Xv) is q
    assert q.n_features_in_ == 16 and q.n_bits_ == 16
    R = q.rotation_
    np.testing.assert_allclose(R @ R.T, np.eye(16), atol=1e-5)
    Z = q.transform(X)
    assert Z.shape == (600, 16) and Z.dtype == np.float32
    # rows are rescaled to norm sqrt(n_bits), and the rotation keeps it
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 4.0, rtol=1e-5)
    codes = q.encode(X)
    assert codes.shape == (600, 2) and codes.dtype == np.uint8
    np.testing.assert_array_equal(codes, np.packbits(Z >= 0, axis=1, bitorder="little"))
    assert "n_bits=None" in repr(q)


@pytest.mark.parametrize("solver", ["gd", "paper"])
def test_h2q_lowers_quantization_loss_below_sign(solver, data16):
    X, Xv = data16
    sign = SignQuantizer().fit(X)
    h2q = HouseholderQuantizer(solver=solver, max_iter=40).fit(X, X_val=Xv)
    assert h2q.quantization_loss(Xv) < 0.8 * sign.quantization_loss(Xv)


@pytest.mark.parametrize("loss", ["l2", "l1", "min_entry", "bit_var"])
def test_every_loss_improves_its_own_objective(loss, data16):
    X, Xv = data16
    q = HouseholderQuantizer(loss=loss, max_iter=60).fit(X, X_val=Xv)
    start = q.validation_curve_[0]  # U = -I
    assert q.quantization_loss(Xv, loss=loss) < start
    assert q.best_iteration_ > 0


def test_keeps_the_iterate_with_lowest_validation_loss(data16):
    X, Xv = data16
    q = HouseholderQuantizer(max_iter=50).fit(X, X_val=Xv)
    assert len(q.loss_curve_) == q.n_iter_ + 1 == 51
    assert q.validation_every_ == 5 and len(q.validation_curve_) == 11
    best = int(np.argmin(q.validation_curve_))
    assert q.best_iteration_ == 5 * best
    assert q.quantization_loss(Xv) == pytest.approx(q.validation_curve_[best], rel=1e-5)


def test_without_validation_keeps_lowest_training_loss(data16):
    X, _ = data16
    q = HouseholderQuantizer(max_iter=30, batch_size=600).fit(X)  # full batches, monitored on X
    assert q.validation_curve_ == []
    checked = q.loss_curve_[:: q.validation_every_]
    assert q.quantization_loss(X) == pytest.approx(min(checked), rel=1e-5)
    assert q.best_iteration_ == q.validation_every_ * int(np.argmin(checked))


def test_gd_uses_random_batches_on_large_inputs():
    X, Xv = clustered(3000, 8, 0), clustered(300, 8, 1)
    a = HouseholderQuantizer(max_iter=20).fit(X, X_val=Xv)
    b = HouseholderQuantizer(max_iter=20).fit(X, X_val=Xv)
    c = HouseholderQuantizer(max_iter=20, random_state=1).fit(X, X_val=Xv)
    np.testing.assert_array_equal(a.rotation_, b.rotation_)
    assert not np.array_equal(a.rotation_, c.rotation_)
    full = HouseholderQuantizer(max_iter=20, batch_size=3000).fit(X, X_val=Xv)
    assert not np.array_equal(a.rotation_, full.rotation_)


def test_paper_solver_settings(data16):
    X, Xv = data16
    q = HouseholderQuantizer(solver="paper", max_iter=3).fit(X, X_val=Xv)
    assert q.n_iter_ == 3 and len(q.validation_curve_) == 3
    same = HouseholderQuantizer(solver="paper", max_iter=3).fit(X, X_val=Xv)
    np.testing.assert_array_equal(q.rotation_, same.rotation_)  # seeded batch order
    other = HouseholderQuantizer(solver="paper", max_iter=3, random_state=1).fit(X, X_val=Xv)
    assert not np.array_equal(q.rotation_, other.rotation_)


def test_callback_can_stop_and_sees_losses(data16):
    X, Xv = data16
    seen = []

    def cb(it, train, val):
        seen.append((it, train, val))
        return it >= 4

    q = HouseholderQuantizer(max_iter=100).fit(X, X_val=Xv, callback=cb)
    assert q.n_iter_ == 4 and len(seen) == 5 and seen[0][2] is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_itq_error_never_rises(seed):
    X = clustered(500, 24, seed)
    q = ITQQuantizer(random_state=seed).fit(X)
    curve = np.array(q.loss_curve_)
    assert len(curve) == 51
    assert np.all(np.diff(curve) <= 1e-6)
    assert curve[-1] < curve[0]


def test_itq_procrustes_is_correct_and_beats_no_rotation():
    # The wrong SVD factor leaves ITQ no better than sign; the right one is much better.
    X = clustered(800, 16, 0)
    itq = ITQQuantizer().fit(X)
    assert itq.quantization_loss(X) < 0.8 * SignQuantizer().fit(X).quantization_loss(X)
    # the final rotation is the polar factor of Z^T B for its own codes (a fixed point)
    Z = X / np.linalg.norm(X, axis=1, keepdims=True) * 4
    B = np.where(Z @ itq.rotation_.T >= 0, 1.0, -1.0)
    P, _, Qt = np.linalg.svd(Z.T @ B)
    R_next = (P @ Qt).T
    err_now = np.mean((Z @ itq.rotation_.T - B) ** 2)
    err_next = np.mean((Z @ R_next.T - B) ** 2)
    assert err_next <= err_now + 1e-6


def test_itq_centering():
    X = clustered(300, 8, 0) + 3.0
    q = ITQQuantizer(center=True).fit(X)
    assert q.mean_ is not None and q.mean_.shape == (8,)
    np.testing.assert_allclose(q.mean_, X.mean(axis=0), rtol=1e-5)
    assert (
        np.abs(q.transform(X).mean(axis=0)).max()
        < np.abs(ITQQuantizer(center=False).fit(X).transform(X).mean(axis=0)).max()
    )


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_pca_projection_for_wide_embeddings(make):
    X = clustered(400, 48, 0)
    q = make(n_bits=16, projection="pca").fit(X)
    assert q.components_.shape == (16, 48) and q.mean_.shape == (48,)
    np.testing.assert_allclose(q.components_ @ q.components_.T, np.eye(16), atol=1e-5)
    assert q.transform(X).shape == (400, 16)
    codes = q.encode(X)
    np.testing.assert_array_equal(
        codes, np.packbits(q.transform(X) >= 0, axis=1, bitorder="little")
    )


def test_bits_and_width_errors():
    X = clustered(50, 8, 0)
    with pytest.raises(ValueError, match="n_bits=16 is larger than the embedding width 8"):
        HouseholderQuantizer(16).fit(X)
    with pytest.raises(
        ValueError, match="n_bits=4 is smaller than the embedding width 8. Pass projection='pca'"
    ):
        ITQQuantizer(4).fit(X)
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        SignQuantizer(0).fit(X)
    with pytest.raises(ValueError, match="projection must be None or 'pca'"):
        SignQuantizer(projection="svd").fit(X)
    with pytest.raises(ValueError, match="solver must be one of"):
        HouseholderQuantizer(solver="adam").fit(X)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        HouseholderQuantizer(loss="hinge").fit(X)


BAD_INPUTS = [
    (np.array([[1.0, np.nan], [1.0, 2.0]]), ValueError, "1 NaN or infinite value"),
    (np.array([[1.0, np.inf], [1.0, 2.0]]), ValueError, "NaN or infinite"),
    (np.ones(4), ValueError, "must be 2-D with shape \\(n_samples, n_features\\), got 1-D"),
    (np.ones((2, 2, 2)), ValueError, "got 3-D"),
    (np.ones((0, 4)), ValueError, "has 0 samples"),
    (np.ones((3, 0)), ValueError, "has 0 features"),
    (np.ones((3, 4), dtype=np.int64), TypeError, "has dtype int64, but floating-point"),
    (np.array([[1.0, "a"]], dtype=object), TypeError, "dtype object"),
    (np.array([[1.0, 2.0], [0.0, 0.0]]), ValueError, "1 all-zero row\\(s\\) \\(rows 1\\)"),
]


@pytest.mark.parametrize("make", ALL, ids=IDS)
@pytest.mark.parametrize("X,exc,msg", BAD_INPUTS)
def test_bad_input_is_named(make, X, exc, msg):
    with pytest.raises(exc, match=msg):
        make(center=False).fit(X)


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_width_mismatch_after_fit(make, data16):
    X, _ = data16
    q = make().fit(X)
    with pytest.raises(
        ValueError, match="X has 8 features, but this quantizer was fitted with 16. Refit"
    ):
        q.transform(X[:, :8])
    with pytest.raises(ValueError, match="X has 8 features"):
        q.encode(X[:, :8])
    with pytest.raises(ValueError, match="X_val has 8 features"):
        make().fit(X, X_val=X[:, :8])


def test_torch_input_gives_torch_output(data16):
    X, Xv = data16
    q = HouseholderQuantizer(max_iter=10).fit(torch.from_numpy(X), X_val=torch.from_numpy(Xv))
    Xt = torch.from_numpy(X).double()
    Z = q.transform(Xt)
    assert isinstance(Z, torch.Tensor) and Z.dtype == torch.float64
    np.testing.assert_allclose(Z.numpy(), q.transform(X), atol=1e-5)
    np.testing.assert_array_equal(q.encode(Xt[:50]), q.encode(X[:50]))


def test_float64_fit_keeps_float64(data16):
    X, Xv = data16
    q = HouseholderQuantizer(max_iter=5).fit(X.astype(np.float64), X_val=Xv.astype(np.float64))
    assert q.rotation_.dtype == np.float64 and q.transform(X.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_save_load_round_trip(make, tmp_path, data16):
    X, Xv = data16
    q = make(n_bits=8, projection="pca").fit(X, X_val=Xv)
    path = tmp_path / "q.npz"
    q.save(path)
    for loaded in (type(q).load(path), load_quantizer(path)):
        assert type(loaded) is type(q) and loaded.get_params() == q.get_params()
        np.testing.assert_array_equal(loaded.encode(X), q.encode(X))
        np.testing.assert_allclose(loaded.transform(X), q.transform(X))
    assert not [p for p in tmp_path.iterdir() if p.name != "q.npz"], "no temporary file left"


def test_saved_curves_survive(tmp_path, data16):
    X, Xv = data16
    q = HouseholderQuantizer(max_iter=5).fit(X, X_val=Xv)
    q.save(tmp_path / "h.npz")
    r = HouseholderQuantizer.load(tmp_path / "h.npz")
    assert r.loss_curve_ == pytest.approx(q.loss_curve_) and r.best_iteration_ == q.best_iteration_
    np.testing.assert_array_equal(r.rotation_module()[1].matrix().detach().numpy(), r.rotation_)


def test_corrupted_truncated_and_foreign_files(tmp_path, data16):
    X, _ = data16
    path = tmp_path / "q.npz"
    HouseholderQuantizer(max_iter=3).fit(X).save(path)
    blob = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(FileFormatError, match="truncated or corrupted"):
        HouseholderQuantizer.load(tmp_path / "trunc.npz")
    flipped = bytearray(blob)
    q = HouseholderQuantizer.load(path)
    at = blob.index(q.rotation_.tobytes()[:64]) + 16  # inside the rotation's stored values
    flipped[at : at + 8] = bytes(b ^ 0xFF for b in flipped[at : at + 8])
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(FileFormatError, match="truncated or corrupted .*CRC-32"):
        HouseholderQuantizer.load(tmp_path / "flip.npz")
    with pytest.raises(FileFormatError, match="holds a HouseholderQuantizer, not a ITQQuantizer"):
        ITQQuantizer.load(path)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(FileFormatError, match="not an h2q file"):
        load_quantizer(tmp_path / "plain.npz")
    _io.save_state(tmp_path / "v99.npz", "HouseholderQuantizer", 99, {}, {})
    with pytest.raises(FileFormatError, match="format version 99, but this release"):
        HouseholderQuantizer.load(tmp_path / "v99.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        HouseholderQuantizer.load(tmp_path / "missing.npz")


def test_failed_save_leaves_previous_file(tmp_path, data16):
    X, _ = data16
    path = tmp_path / "q.npz"
    HouseholderQuantizer(max_iter=3).fit(X).save(path)
    before = path.read_bytes()
    with pytest.raises(NotFittedError):
        HouseholderQuantizer().save(path)
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        SignQuantizer().fit(X).save(tmp_path / "nope" / "q.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.npz"]


@pytest.mark.gpu
def test_fit_on_cuda_matches_cpu(data16):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    X, Xv = data16
    gpu = HouseholderQuantizer(max_iter=20).fit(
        torch.from_numpy(X).cuda(), X_val=torch.from_numpy(Xv).cuda()
    )
    cpu = HouseholderQuantizer(max_iter=20).fit(X, X_val=Xv)
    np.testing.assert_allclose(gpu.rotation_, cpu.rotation_, atol=1e-3)
    assert isinstance(gpu.transform(torch.from_numpy(X).cuda()), torch.Tensor)


def test_saved_file_gets_the_umask_mode(tmp_path, data16):
    import os

    X, _ = data16
    SignQuantizer().fit(X).save(tmp_path / "q.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "q.npz").stat().st_mode & 0o777 == 0o666 & ~umask


def test_paper_solver_without_validation_keeps_best_epoch(data16):
    X, _ = data16
    q = HouseholderQuantizer(solver="paper", max_iter=4).fit(X)
    assert q.validation_curve_ == [] and len(q.loss_curve_) == 4
    assert q.best_iteration_ == 1 + int(np.argmin(q.loss_curve_))


def test_stall_rule_stops_the_default_solver(data16):
    from h2q.quantizers import _solvers

    X, Xv = data16
    # a learning rate too small to change anything: every check is a stall, so the run stops
    # at the stall after the last drop
    q = HouseholderQuantizer(learning_rate=1e-12).fit(X, X_val=Xv)
    stalls = _solvers.gd_patience(X.shape[1]) * (_solvers.GD_MAX_DECAYS + 1)
    assert q.n_iter_ == _solvers.GD_CHECK_EVERY * stalls
    assert len(q.validation_curve_) == stalls + 1
    # a real run stops on its own, long before the cap, and max_iter caps it
    q = HouseholderQuantizer().fit(X, X_val=Xv)
    assert 0 < q.n_iter_ < _solvers.GD_MAX_ITERATIONS and q.best_iteration_ > 0
    assert HouseholderQuantizer(max_iter=7).fit(X, X_val=Xv).n_iter_ == 7


def test_gd_batch_grows_with_width():
    from h2q.quantizers._solvers import gd_batch_size

    assert [gd_batch_size(k) for k in (16, 64, 128, 256, 384, 1024)] == [
        512,
        512,
        1024,
        2048,
        2048,
        2048,
    ]


def test_wide_codes_get_their_learning_rate_and_patience():
    from h2q.quantizers._solvers import gd_learning_rate, gd_patience

    assert [gd_learning_rate(k) for k in (16, 128, 255, 256, 384)] == [0.5, 0.5, 0.5, 0.2, 0.2]
    assert [gd_patience(k) for k in (16, 128, 255, 256, 384)] == [2, 2, 2, 4, 4]


@pytest.mark.parametrize("patience", [2, 4])
def test_plateau_drops_the_rate_at_each_stall_and_stops_after_the_last(patience):
    from h2q.quantizers._solvers import GD_DECAY, GD_MAX_DECAYS, _Plateau

    schedule = _Plateau(0.5, patience)
    for value in (1.0, 0.9, 0.8):  # improving: no stall
        schedule.update(value)
    assert schedule.lr == 0.5 and schedule.stalls == 0
    schedule.update(0.8 * (1 - 1e-5))  # a gain below the tolerance counts as a stall
    assert schedule.stalls == 1
    updates = 1
    while not schedule.stop:
        schedule.update(0.8)
        updates += 1
        assert updates <= patience * (GD_MAX_DECAYS + 1)
    assert updates == patience * (GD_MAX_DECAYS + 1)  # stopped at the stall after the last drop
    assert schedule.lr == pytest.approx(0.5 * GD_DECAY ** (GD_MAX_DECAYS + 1))
    # a real gain resets the count of checks without gain
    schedule = _Plateau(0.5, patience)
    for value in [1.0] + [1.0] * (patience - 1) + [0.5] + [0.5] * (patience - 1):
        schedule.update(value)
    assert schedule.lr == 0.5 and schedule.decays == 0


def test_gd_stops_on_a_stalled_loss_at_the_width_patience():
    """A loss that never moves (zero gradients): the run stops at the stall after the last
    drop, after ``patience * (drops + 1)`` checks, for narrow and wide codes alike."""
    from h2q.quantizers import _solvers
    from h2q.quantizers.objectives import Objective

    flat = Objective(
        "flat", lambda z: z.sum() * 0.0, lambda z: (z.sum() * 0.0, torch.zeros_like(z)), 0.1
    )
    for k in (8, 256):
        Z = torch.randn(64, k, generator=torch.Generator().manual_seed(0))
        result = _solvers.gd(
            Z, Z, flat, torch.eye(k), generator=torch.Generator().manual_seed(0), max_iter=10_000
        )
        checks = _solvers.gd_patience(k) * (_solvers.GD_MAX_DECAYS + 1)
        assert result.n_iter == _solvers.GD_CHECK_EVERY * checks
        assert len(result.validation_curve) == checks + 1 and result.best_iteration == 0


def test_batches_are_rows_drawn_with_replacement_and_reproducible():
    from h2q.quantizers._solvers import _BATCH_DRAWS, _Batches

    Z = torch.arange(50.0).reshape(50, 1)
    draws = []
    for _ in range(2):
        batches = _Batches(50, 8, torch.Generator().manual_seed(3), Z)
        draws.append(torch.stack([batches.next(Z) for _ in range(2 * _BATCH_DRAWS + 3)]))
    torch.testing.assert_close(draws[0], draws[1])
    rows = draws[0].flatten()
    assert rows.shape == ((2 * _BATCH_DRAWS + 3) * 8,) and bool(((rows >= 0) & (rows < 50)).all())
    assert len(torch.unique(rows)) > 40  # every step a fresh draw, not one batch repeated
    assert len({tuple(b.flatten().tolist()) for b in draws[0]}) == len(draws[0])
    small = _Batches(5, 8, torch.Generator().manual_seed(3), Z[:5])
    assert torch.equal(small.next(Z[:5]), Z[:5])  # all rows when there are few
