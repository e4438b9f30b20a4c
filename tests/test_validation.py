"""The shared input checks: one function per check, named for the kind of array it returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from h2q._validation import (
    check_embeddings,
    check_embeddings_tensor,
    check_labels,
    check_labels_tensor,
    check_positive_int,
)


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts_integers(value):
    assert check_positive_int(value, "n") == int(value)
    assert type(check_positive_int(value, "n")) is int


@pytest.mark.parametrize("value", [0, -2, True, 2.0, "3", None])
def test_positive_int_refuses_the_rest(value):
    with pytest.raises(ValueError, match="n must be a positive integer, got"):
        check_positive_int(value, "n")


def test_positive_int_minimum_and_none():
    assert check_positive_int(0, "radius", minimum=0) == 0
    with pytest.raises(ValueError, match="radius must be an integer >= 0, got -1"):
        check_positive_int(-1, "radius", minimum=0)
    assert check_positive_int(None, "cap", allow_none=True) is None
    with pytest.raises(ValueError, match="cap must be a positive integer or None, got 0"):
        check_positive_int(0, "cap", allow_none=True)


def test_numpy_and_tensor_checks_return_their_kind():
    X = np.ones((3, 2), np.float32)
    assert isinstance(check_embeddings(torch.ones(3, 2), allow_torch=False), np.ndarray)
    assert isinstance(check_labels(torch.tensor([0, 1, 1]), 3), np.ndarray)
    t = torch.as_tensor(X)
    assert check_embeddings_tensor(t, n_bits=2) is t
    y = check_labels_tensor(np.array([0, 1, 1]), 3, t.device)
    assert isinstance(y, torch.Tensor) and y.shape == (3,)
    with pytest.raises(TypeError, match="embeddings must be a torch.Tensor"):
        check_embeddings_tensor(X)
    with pytest.raises(ValueError, match="embeddings have 2 bits, but this loss was built"):
        check_embeddings_tensor(t, n_bits=4)
