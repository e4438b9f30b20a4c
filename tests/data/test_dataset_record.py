"""The Dataset record and the label fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from h2q.data import Dataset, labels_fingerprint


def make(**kw):
    args = {
        "name": "toy",
        "X": np.arange(24, dtype=np.uint8).reshape(6, 2, 2),
        "y": np.array([0, 1, 0, 1, 2, 2]),
        "kind": "image",
        "class_names": ["a", "b", "c"],
    }
    args.update(kw)
    return Dataset(**args)


def test_properties_and_subset():
    ds = make(lists={"train": np.arange(3)})
    assert len(ds) == ds.n_samples == 6 and ds.n_classes == 3 and not ds.is_multilabel
    assert "n_samples=6" in repr(ds)
    sub = ds.subset([5, 0])
    np.testing.assert_array_equal(sub.y, [2, 0])
    np.testing.assert_array_equal(sub.X[0], ds.X[5])
    assert sub.lists == {}
    np.testing.assert_array_equal(ds.images([1, 2]), ds.X[1:3])


def test_text_and_path_subsets(tmp_path):
    texts = make(X=list("abcdef"), kind="text")
    assert texts.subset([2, 1]).X == ["c", "b"]
    with pytest.raises(TypeError, match="holds texts, not images"):
        texts.images([0])
    paths = make(X=[str(tmp_path / f"{i}.png") for i in range(6)], kind="image_paths")
    assert paths.loader is not None
    assert paths.images([]).shape == (0, 0, 0, 3)


def test_multilabel_record():
    y = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.uint8)
    ds = make(X=["p", "q", "r"], y=y, kind="text", class_names=["u", "v"])
    assert ds.is_multilabel and ds.n_classes == 2


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"kind": "video"}, ValueError, "kind must be one of"),
        ({"y": np.zeros(5, int)}, ValueError, "X has 6 items but y has 5 labels"),
        ({"y": np.zeros((6, 2, 2), int)}, ValueError, r"got shape \(6, 2, 2\)"),
        ({"y": np.zeros((6, 2), int)}, ValueError, "2 label columns but there are 3 class names"),
    ],
)
def test_invalid_records(kw, exc, match):
    with pytest.raises(exc, match=match):
        make(**kw)


def test_fingerprint_sees_order_shape_and_values():
    y = np.array([0, 1, 2, 2])
    base = labels_fingerprint(y)
    assert len(base) == 64 and base == labels_fingerprint(y.astype(np.uint8))
    assert base != labels_fingerprint(y[::-1])
    assert base != labels_fingerprint(np.array([0, 1, 2, 3]))
    assert labels_fingerprint(np.eye(2, dtype=int)) != labels_fingerprint(np.array([1, 0, 0, 1]))
