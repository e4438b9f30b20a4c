"""ADSH's schedule: balanced pair labels keep the learned codes from collapsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from h2q.codes import encode_sign
from h2q.evaluation.metrics import mean_average_precision
from h2q.losses.adsh import adsh_similarity
from h2q.models import HashingModel, MLPBackbone
from h2q.search import rank_database
from h2q.training.adsh import ADSHSettings, train_adsh
from h2q.training.data import ArrayData


def _clusters(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """400 non-negative 32-d features (like ReLU outputs) in 10 balanced classes."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), 40)
    centers = rng.standard_normal((10, 32)).astype(np.float32)
    X = centers[y] + 0.5 * rng.standard_normal((400, 32)).astype(np.float32)
    return np.maximum(X, 0), y


def _train(balance: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = _clusters(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HashingModel(MLPBackbone(32, hidden=(64,)), 16)
    settings = ADSHSettings(
        iterations=6, decay_at=(), samples=400, batch_size=64, lr=0.01, balance=balance, seed=seed
    )
    codes, losses = train_adsh(model, ArrayData(X, y), settings, device=torch.device("cpu"))
    assert len(losses) == 6 and all(np.isfinite(losses))
    return codes.numpy(), y


def _self_map(codes: np.ndarray, y: np.ndarray) -> float:
    _, ranking = rank_database(encode_sign(codes), encode_sign(codes), len(codes))
    return mean_average_precision(ranking, y, y, len(codes))


def test_similarity_balance():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    plain = adsh_similarity(labels[:3], labels)
    assert set(plain.unique().tolist()) == {-1.0, 1.0}
    balanced = adsh_similarity(labels[:3], labels, balance=True)
    same = plain > 0
    torch.testing.assert_close(balanced[same], torch.ones(int(same.sum())))
    r = same.sum() / (~same).sum()
    torch.testing.assert_close(balanced[~same], torch.full((int((~same).sum()),), -float(r)))
    assert abs(float(balanced.sum())) < 1e-5  # both kinds weigh the same in total


def test_balanced_labels_learn_class_codes_and_plain_ones_collapse():
    codes, y = _train(balance=True)
    assert set(np.unique(codes)) == {-1.0, 1.0}
    constant = np.abs(codes.mean(axis=0)) > 0.9  # bits (almost) equal for every item
    assert not constant.any()
    assert _self_map(codes, y) > 0.95
    # With -1 for every dissimilar pair (9 of 10 pairs here) most bits take one value for
    # every item: the cause of ADSH's low scores before the labels were balanced.
    plain, _ = _train(balance=False)
    assert (np.abs(plain.mean(axis=0)) > 0.9).mean() > 0.4
    assert _self_map(plain, y) < _self_map(codes, y) - 0.1


def test_callback_sees_every_iteration():
    X, y = _clusters(1)
    model = HashingModel(MLPBackbone(32, hidden=(16,)), 8)
    seen = []
    settings = ADSHSettings(iterations=3, samples=100, batch_size=50, lr=0.01)
    train_adsh(
        model,
        ArrayData(X, y),
        settings,
        device=torch.device("cpu"),
        callback=lambda it, codes: seen.append((it, tuple(codes.shape))),
    )
    assert seen == [(1, (400, 8)), (2, (400, 8)), (3, (400, 8))]


def test_divergence_names_the_learning_rate():
    X, y = _clusters(2)
    model = HashingModel(MLPBackbone(32, hidden=(16,)), 8)
    X[0, 0] = np.inf
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train_adsh(model, ArrayData(X, y), ADSHSettings(iterations=1), device=torch.device("cpu"))
