"""CIFAR-10 python batches: tiny pickles in the official layout."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from h2q.data import DatasetNotFoundError, load_cifar10, load_dataset, read_cifar10_batch
from h2q.exceptions import FileFormatError

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_batch(path: Path, data, labels, protocol=2, **extra):
    batch = {b"batch_label": b"testing", b"data": data, b"labels": labels, **extra}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def make_cifar_folder(folder: Path, n_per_batch=4, protocol=2, meta=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    datas, labels = [], []
    for name in BATCHES:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, size=n_per_batch)]
        write_batch(folder / name, data, y, protocol)
        datas.append(data)
        labels += y
    if meta:
        names = [f"class{i}".encode() for i in range(10)]
        (folder / "batches.meta").write_bytes(
            pickle.dumps({b"label_names": names, b"num_cases_per_batch": n_per_batch}, protocol)
        )
    return np.concatenate(datas), np.array(labels)


@pytest.mark.parametrize("protocol", [2, 5])
def test_load_all_batches(tmp_path, protocol):
    data, labels = make_cifar_folder(tmp_path, protocol=protocol)
    ds = load_cifar10(tmp_path)
    assert ds.name == "cifar10" and ds.kind == "image"
    assert ds.X.shape == (24, 32, 32, 3) and ds.X.dtype == np.uint8
    np.testing.assert_array_equal(ds.y, labels)
    assert ds.class_names == [f"class{i}" for i in range(10)]
    np.testing.assert_array_equal(ds.lists["train"], np.arange(20))
    np.testing.assert_array_equal(ds.lists["test"], np.arange(20, 24))
    # row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32
    i, r, c = 5, 7, 30
    for ch in range(3):
        assert ds.X[i, r, c, ch] == data[i, ch * 1024 + r * 32 + c]


def test_subfolder_subset_and_default_names(tmp_path):
    make_cifar_folder(tmp_path / "cifar-10-batches-py", meta=False)
    ds = load_dataset("CIFAR-10", tmp_path, subset="test")
    assert len(ds) == 4 and list(ds.lists) == ["test"]
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    assert len(load_cifar10(tmp_path, subset="train")) == 20


def test_missing_batch_lists_required_files(tmp_path):
    make_cifar_folder(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"lacks data_batch_3\..*data_batch_1 \.\.\. data_batch_5"
    ):
        load_cifar10(tmp_path)


def test_no_folder_given():
    with pytest.raises(DatasetNotFoundError, match="no folder given.*downloads nothing"):
        load_cifar10()


def test_truncated_batch(tmp_path):
    make_cifar_folder(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(FileFormatError, match="not a readable CIFAR-10 batch"):
        load_cifar10(tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_foreign_global_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(FileFormatError, match="refusing to load the global"):
        read_cifar10_batch(path)


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        ([1, 2, 3], "holds a list, not a CIFAR-10 dict"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "lacks the key b'labels'"),
        ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, r"shape \(n, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "must be uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "must hold 2 integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"in 0\.\.9, found 0\.\.10"),
    ],
)
def test_malformed_batches(tmp_path, batch, match):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(FileFormatError, match=match):
        read_cifar10_batch(path)


def test_string_keys_are_accepted(tmp_path):
    path = tmp_path / "batch"
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    path.write_bytes(pickle.dumps({"data": data, "labels": [3, 4]}))
    X, y = read_cifar10_batch(path)
    assert X.shape == (2, 32, 32, 3) and list(y) == [3, 4]


def test_bad_meta_file(tmp_path):
    make_cifar_folder(tmp_path, meta=False)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}))
    with pytest.raises(FileFormatError, match="names 2 classes; CIFAR-10 has 10"):
        load_cifar10(tmp_path)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"other": 1}))
    with pytest.raises(FileFormatError, match="no b'label_names' list"):
        load_cifar10(tmp_path)


def test_old_numpy_module_names_are_accepted(tmp_path):
    # The official batches were pickled by numpy 1.x, whose arrays reference numpy.core.
    data = np.arange(3072, dtype=np.uint8).reshape(1, 3072)
    raw = pickle.dumps({b"data": data, b"labels": [7]}, protocol=2)
    assert b"numpy._core.multiarray\n_reconstruct" in raw
    path = tmp_path / "batch"
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    X, y = read_cifar10_batch(path)
    assert X[0, 0, 1, 0] == 1 and list(y) == [7]
