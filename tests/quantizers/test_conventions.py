"""Properties every quantizer configuration must have, scikit-learn conventions, parameter
checks, inputs of every dtype and magnitude, threads."""

import numpy as np
import pytest
import torch

from h2q import _io
from h2q.codes import pack_bits
from h2q.exceptions import FileFormatError
from h2q.quantizers import (
    QUANTIZERS,
    HouseholderQuantizer,
    ITQQuantizer,
    RandomRotationQuantizer,
    SignQuantizer,
    load_quantizer,
)

from .conftest import clustered

MAKERS = {
    "sign": lambda **kw: SignQuantizer(**kw),
    "itq": lambda **kw: ITQQuantizer(**{"max_iter": 10, **kw}),
    "h2q": lambda **kw: HouseholderQuantizer(**{"max_iter": 20, **kw}),
}
INPUTS = {
    "float32": lambda X: X.astype(np.float32),
    "float64": lambda X: X.astype(np.float64),
    "torch": lambda X: torch.from_numpy(X.astype(np.float32)),
}


def _numpy(a):
    return a.numpy() if isinstance(a, torch.Tensor) else a


def _fitted_state(q) -> dict:
    return {k: v for k, v in vars(q).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        if value is None or isinstance(value, (int, float, list)):
            assert value == b[name], name
        else:
            np.testing.assert_array_equal(value, b[name], err_msg=name)


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize("projection", [None, "pca"])
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("name", MAKERS)
def test_codes_are_signs_of_transform_and_refit_is_stable(name, center, projection, kind):
    base = clustered(300, 24, 0) + 2.0  # off-centre, so centring matters
    X = INPUTS[kind](base)
    n_bits = 16 if projection else None
    q = MAKERS[name](n_bits=n_bits, center=center, projection=projection)
    q.fit(X)
    codes = q.encode(X)
    np.testing.assert_array_equal(codes, pack_bits(_numpy(q.transform(X)) >= 0))
    first = _fitted_state(q)
    assert (first["mean_"] is not None) == (center or projection == "pca")
    q.fit(X)  # refitting the same data gives the same fitted state
    _assert_same_state(first, _fitted_state(q))
    np.testing.assert_array_equal(q.encode(X), codes)


@pytest.mark.parametrize("name", MAKERS)
def test_itq_centre_is_the_training_mean_on_every_refit(name):
    X = clustered(200, 8, 0) + 3.0
    q = MAKERS[name](center=True)
    for _ in range(3):
        q.fit(X)
        np.testing.assert_allclose(q.mean_, X.mean(axis=0), rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("name", MAKERS)
def test_tiny_and_huge_magnitudes(name, center, scale):
    X = clustered(300, 16, 0) + 1.0
    ref = MAKERS[name](center=center).fit(X)
    big = (X.astype(np.float64) * scale).astype(np.float32)
    q = MAKERS[name](center=center).fit(big)
    Z = q.transform(big)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 4.0, rtol=1e-4)
    # the same data up to rounding: ITQ's few steps land on the same rotation; the many
    # random-batch steps of H²Q's solver amplify the rounding, but reach as low a loss
    loss, ref_loss = q.quantization_loss(big), ref.quantization_loss(X)
    assert 0.5 * ref_loss < loss < 1.05 * ref_loss
    if name != "h2q":
        np.testing.assert_allclose(q.rotation_, ref.rotation_, atol=2e-3)
        assert (q.encode(big) == ref.encode(X)).mean() > 0.99


def test_zero_rows_are_still_rejected():
    X = clustered(20, 4, 0)
    X[3] = 0
    with pytest.raises(ValueError, match="1 all-zero row"):
        SignQuantizer(center=False).fit(X)
    with pytest.raises(ValueError, match="X minus the training mean has 2 all-zero row"):
        q = SignQuantizer(center=True).fit(X)
        q.transform(np.tile(q.mean_, (2, 1)))


# -- scikit-learn conventions -----------------------------------------------------------------


@pytest.mark.parametrize("name", MAKERS)
def test_clone_get_set_params(name):
    from sklearn.base import clone

    q = MAKERS[name](n_bits=8, projection="pca")
    assert q.get_params(deep=True) == q.get_params(deep=False) == q.get_params()
    assert "n_threads" in q.get_params() and "center" in q.get_params()
    c = clone(q)
    assert type(c) is type(q) and c.get_params() == q.get_params()
    assert q.set_params(n_bits=4) is q and q.n_bits == 4
    with pytest.raises(ValueError, match="'bits' is not a parameter of .*valid parameters"):
        q.set_params(bits=4)


@pytest.mark.parametrize("name", MAKERS)
def test_pipeline(name):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X = clustered(200, 12, 0)
    y = np.arange(200) % 3
    pipe = Pipeline([("scale", StandardScaler()), ("q", MAKERS[name](n_bits=8, projection="pca"))])
    out = pipe.fit(X, y).transform(X)
    scaled = StandardScaler().fit_transform(X)
    alone = MAKERS[name](n_bits=8, projection="pca").fit(scaled)
    np.testing.assert_allclose(out, alone.transform(scaled), atol=1e-5)
    np.testing.assert_allclose(pipe.fit_transform(X, y), out, atol=1e-5)


def test_validation_data_by_keyword_only(data16):
    X, Xv = data16
    q = HouseholderQuantizer(max_iter=10).fit(X, X_val=Xv)
    assert len(q.validation_curve_) > 0
    with pytest.raises(TypeError, match=r"Pass them by keyword: fit\(X, X_val=X_val\)"):
        HouseholderQuantizer(max_iter=10).fit(X, Xv)
    HouseholderQuantizer(max_iter=10).fit(X, np.zeros(len(X)))  # labels are ignored


@pytest.mark.parametrize("name", ["itq", "h2q"])
def test_random_state_none(name, data16):
    X, _ = data16
    a = MAKERS[name](random_state=None).fit(X)
    b = MAKERS[name](random_state=None).fit(X)
    assert a.rotation_.shape == (16, 16)
    if name == "itq":  # the random start differs, and so does the rotation
        assert not np.array_equal(a.rotation_, b.rotation_)


@pytest.mark.parametrize("name", MAKERS)
def test_failed_fit_keeps_the_fitted_state(name, data16):
    X, _ = data16
    q = MAKERS[name]().fit(X)
    before = _fitted_state(q)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        q.fit(bad)
    _assert_same_state(before, _fitted_state(q))
    with pytest.raises(ValueError, match="n_bits=32 is larger"):
        q.set_params(n_bits=32).fit(X)
    _assert_same_state(before, _fitted_state(q))
    fresh = MAKERS[name]()
    with pytest.raises(ValueError):
        fresh.fit(bad)
    assert _fitted_state(fresh) == {}


def test_interrupted_fit_keeps_the_fitted_state(data16):
    X, Xv = data16
    q = HouseholderQuantizer(max_iter=10).fit(X)
    before = _fitted_state(q)

    def stop(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        q.fit(X + 1.0, X_val=Xv, callback=stop)
    _assert_same_state(before, _fitted_state(q))


# -- parameter checks ---------------------------------------------------------------------------

BAD_PARAMS = [
    ("h2q", {"max_iter": 0}, "max_iter must be None or an integer >= 1, got 0"),
    ("h2q", {"batch_size": 0}, "batch_size must be None or an integer >= 1, got 0"),
    ("h2q", {"batch_size": -5}, "batch_size must be None or an integer >= 1, got -5"),
    ("h2q", {"learning_rate": float("nan")}, "learning_rate must be a finite number > 0"),
    ("h2q", {"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
    ("h2q", {"n_reflections": 2.5}, "n_reflections must be None or an integer >= 1, got 2.5"),
    ("h2q", {"n_reflections": 17}, "n_reflections must be between 1 and n_features=16"),
    ("h2q", {"solver": "adam"}, "solver must be one of"),
    ("h2q", {"loss": "hinge"}, "unknown loss 'hinge'"),
    ("itq", {"max_iter": 0}, "max_iter must be a positive integer, got 0"),
    ("itq", {"random_state": -1}, "random_state must be None or an integer >= 0"),
    ("h2q", {"random_state": "seed"}, "random_state must be None or an integer >= 0"),
    ("sign", {"center": "yes"}, "center must be True or False, got 'yes'"),
    ("sign", {"rescale": 1}, "rescale must be True or False, got 1"),
    ("sign", {"n_threads": 0}, "n_threads must be None or an integer >= 1"),
    ("h2q", {"device": "tpu0"}, "unknown device 'tpu0'"),
]


@pytest.mark.parametrize("name,params,msg", BAD_PARAMS)
def test_parameters_are_checked_at_fit(name, params, msg, data16):
    X, _ = data16
    q = MAKERS[name](**params)  # the constructor only stores
    with pytest.raises(ValueError, match=msg):
        q.fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["itq", "h2q"])
def test_cuda_without_cuda_is_a_clear_error(name, data16):
    X, _ = data16
    with pytest.raises(ValueError, match="device 'cuda' was asked for, but CUDA is not available"):
        MAKERS[name](device="cuda").fit(X)


# -- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", MAKERS)
def test_half_precision_tensors(name, dtype, data16):
    X, _ = data16
    half = torch.from_numpy(X).to(dtype)
    q = MAKERS[name]().fit(half)
    ref = MAKERS[name]().fit(half.float())
    np.testing.assert_array_equal(q.rotation_, ref.rotation_)
    Z = q.transform(half)
    assert Z.dtype == torch.float32
    np.testing.assert_array_equal(q.encode(half), pack_bits(Z.numpy() >= 0))
    np.testing.assert_array_equal(q.encode(half), ref.encode(half.float()))


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("projection", [None, "pca"])
def test_rotation_module_works_on_raw_input(center, projection):
    X = clustered(300, 24, 0) + 1.5
    q = HouseholderQuantizer(
        16 if projection else None, center=center, projection=projection, max_iter=20
    ).fit(X)
    module = q.rotation_module()
    out = module(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(out, q.transform(X), atol=1e-5)


# -- threads ----------------------------------------------------------------------------------


def test_n_threads_applies_during_fit_and_is_restored(data16, monkeypatch):
    X, _ = data16
    monkeypatch.delenv("H2Q_NUM_THREADS", raising=False)
    outside = torch.get_num_threads()
    seen = []

    def record(*_):
        seen.append(torch.get_num_threads())

    HouseholderQuantizer(max_iter=2, n_threads=2).fit(X, callback=record)
    assert seen and set(seen) == {2}
    seen.clear()
    HouseholderQuantizer(max_iter=2).fit(X, callback=record)  # small problem: one thread
    assert set(seen) == {1}
    seen.clear()
    monkeypatch.setenv("H2Q_NUM_THREADS", "2")
    HouseholderQuantizer(max_iter=2).fit(X, callback=record)
    assert set(seen) == {2}
    assert torch.get_num_threads() == outside


def test_auto_threads_rule():
    from h2q.quantizers.base import SMALL_PROBLEM_MACS, auto_threads

    assert auto_threads(5000, 64, 64) == 1
    assert auto_threads(SMALL_PROBLEM_MACS, 1, 1) is None


# -- registry and files -----------------------------------------------------------------------


def test_registry_is_the_one_list():
    from h2q.cli import quantize as cli
    from h2q.quantizers import LOSSES, SOLVERS, make_quantizer
    from h2q.quantizers.objectives import OBJECTIVES

    assert QUANTIZERS == {"sign": SignQuantizer, "itq": ITQQuantizer, "h2q": HouseholderQuantizer}
    assert SOLVERS == ("gd", "paper") and LOSSES == tuple(OBJECTIVES)
    assert tuple(cli.METHODS) == tuple(QUANTIZERS)
    assert isinstance(make_quantizer("itq", n_bits=4), ITQQuantizer)
    with pytest.raises(ValueError, match="unknown quantizer 'pq'; choose one of sign, itq, h2q"):
        make_quantizer("pq")


def test_registry_builds_every_quantizer_by_name_with_the_class_defaults():
    from h2q.quantizers import BASELINES, H2Q, ITQ, RANDOM_ROTATION, SIGN, make_quantizer

    assert (SIGN, ITQ, H2Q) == tuple(QUANTIZERS)
    assert BASELINES == {RANDOM_ROTATION: RandomRotationQuantizer}
    for name, cls in {**QUANTIZERS, **BASELINES}.items():
        assert make_quantizer(name).get_params() == cls().get_params()
    q = make_quantizer(RANDOM_ROTATION, 4, center=False, random_state=3)
    expected = RandomRotationQuantizer(4, center=False, random_state=3)
    assert type(q) is RandomRotationQuantizer and q.get_params() == expected.get_params()
    assert make_quantizer(ITQ, 8).max_iter == 50


def test_files_from_before_centring_load_uncentred(tmp_path, data16):
    X, _ = data16
    q = HouseholderQuantizer(max_iter=3, center=False).fit(X)
    q.save(tmp_path / "new.npz")
    arrays, meta = _io.load_state(tmp_path / "new.npz", "HouseholderQuantizer", 1)
    del meta["params"]["center"], meta["params"]["n_threads"]  # as the first release wrote
    _io.save_state(tmp_path / "old.npz", "HouseholderQuantizer", 1, arrays, meta)
    old = load_quantizer(tmp_path / "old.npz")
    assert old.center is False and old.mean_ is None
    np.testing.assert_array_equal(old.encode(X), q.encode(X))
    itq = ITQQuantizer(max_iter=3).fit(X)
    itq.save(tmp_path / "itq.npz")
    arrays, meta = _io.load_state(tmp_path / "itq.npz", "ITQQuantizer", 1)
    arrays["center_"] = np.zeros(16, dtype=np.float32)
    _io.save_state(tmp_path / "itq_old.npz", "ITQQuantizer", 1, arrays, meta)
    with pytest.raises(FileFormatError, match="older release.*Refit and save it again"):
        load_quantizer(tmp_path / "itq_old.npz")


def test_read_only_input_is_used_without_a_warning_and_left_unchanged():
    """Arrow batches (Spark) and np.load(mmap_mode="r") give read-only arrays: torch warns
    about sharing them once per process, so the check runs in a fresh interpreter."""
    import subprocess
    import sys

    script = """
import warnings
import numpy as np
from h2q.quantizers import make_quantizer
warnings.simplefilter("error")
X = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
X.setflags(write=False)
before = X.copy()
for name in ("sign", "itq", "h2q"):
    q = make_quantizer(name) if name == "sign" else make_quantizer(name, n_bits=8)
    q.fit(X)
    q.transform(X)
    q.encode(X)
    q.quantization_loss(X)
assert np.array_equal(X, before)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
