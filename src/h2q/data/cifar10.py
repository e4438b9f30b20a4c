"""CIFAR-10 from the "python version" batch files, read from a folder the user gives.

The folder (or its ``cifar-10-batches-py`` subfolder, as the official archive
``cifar-10-python.tar.gz`` extracts) must hold ``data_batch_1`` ... ``data_batch_5`` and
``test_batch``; ``batches.meta`` is optional (class names). Each batch is a pickled dict with
``b"data"``, a uint8 array of shape ``(n, 3072)`` whose rows hold the red, then green, then
blue 32x32 plane in row-major order, and ``b"labels"``, a list of ``n`` ints in 0..9.

The batches are pickles; they are read with an unpickler that only rebuilds dicts, lists,
strings, bytes, numbers and numpy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..exceptions import FileFormatError
from .dataset import Dataset, DatasetNotFoundError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
_HOW = (
    "It must hold the files of the CIFAR-10 python version (cifar-10-python.tar.gz, "
    "extracted): data_batch_1 ... data_batch_5 and test_batch (batches.meta optional). "
    "h2q downloads nothing; copy them there, or pass root=FOLDER."
)


def _numpy_global(module: str, name: str) -> Any:
    core = getattr(np, "_core", None)
    if core is None:  # pragma: no cover - numpy < 2
        core = np.core
    allowed = {
        ("multiarray", "_reconstruct"): core.multiarray._reconstruct,
        ("multiarray", "scalar"): core.multiarray.scalar,
        ("numeric", "_frombuffer"): getattr(core.numeric, "_frombuffer", None),
    }
    for prefix in ("numpy._core.", "numpy.core."):
        if module.startswith(prefix):
            found = allowed.get((module[len(prefix) :], name))
            if found is not None:
                return found
    return None


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds plain containers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":  # protocol-2 pickles of bytes
            import codecs

            return codecs.encode
        found = _numpy_global(module, name)
        if found is not None:
            return found
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def _unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as handle:
            return _SafeUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise FileFormatError(
            f"{path} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}). It is "
            "truncated, corrupted or not from the python version; re-extract it."
        ) from exc


def _get(batch: dict, key: str) -> Any:
    for k in (key.encode("ascii"), key):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch file.

    Parameters
    ----------
    path : path-like
        ``data_batch_i`` or ``test_batch``.

    Returns
    -------
    images : numpy.ndarray
        uint8 ``(n, 32, 32, 3)``, RGB.
    labels : numpy.ndarray
        int64 ``(n,)`` in 0..9.

    Raises
    ------
    h2q.exceptions.FileFormatError
        When the file is not a dict with ``b"data"`` ``(n, 3072)`` uint8 and ``b"labels"``
        of length ``n`` in 0..9.
    """
    path = Path(path)
    batch = _unpickle(path)
    if not isinstance(batch, dict):
        raise FileFormatError(f"{path} holds a {type(batch).__name__}, not a CIFAR-10 dict.")
    try:
        data = np.asarray(_get(batch, "data"))
        labels = np.asarray(_get(batch, "labels"))
    except KeyError as exc:
        raise FileFormatError(
            f"{path} lacks the key b'{exc.args[0]}'; a CIFAR-10 batch has b'data' and "
            "b'labels'. (CIFAR-100 batches use b'fine_labels' and are not CIFAR-10.)"
        ) from exc
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise FileFormatError(
            f"{path}: b'data' must be uint8 of shape (n, 3072), got {data.dtype} {data.shape}."
        )
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise FileFormatError(
            f"{path}: b'labels' must hold {len(data)} integers, got {labels.dtype} {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise FileFormatError(
            f"{path}: labels must be in 0..9, found {int(labels.min())}..{int(labels.max())}."
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _cifar_folder(root: str | os.PathLike | None) -> Path:
    if root is None:
        raise DatasetNotFoundError(f"cifar10: no folder given. {_HOW}")
    base = Path(root)
    for folder in (base, base / "cifar-10-batches-py"):
        if (folder / TEST_BATCH).is_file() or (folder / TRAIN_BATCHES[0]).is_file():
            return folder
    return base


def load_cifar10(
    root: str | os.PathLike | None = None, *, subset: Literal["all", "train", "test"] = "all"
) -> Dataset:
    """CIFAR-10: 60,000 RGB 32x32 images in 10 classes, from the python batch files.

    Parameters
    ----------
    root : path-like
        Folder with ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, or its parent
        holding ``cifar-10-batches-py/``.
    subset : {"all", "train", "test"}
        ``"all"`` (the paper's pool): the five train batches then the test batch, 60,000
        images, with ``dataset.lists`` giving the ``"train"`` (50,000) and ``"test"``
        (10,000) indices; otherwise one part.

    Returns
    -------
    Dataset
        ``X`` uint8 ``(n, 32, 32, 3)``, ``y`` int64 ``(n,)``, class names from
        ``batches.meta`` when present.

    Raises
    ------
    DatasetNotFoundError
        When a batch file is missing; the message lists the files the folder must contain.
    h2q.exceptions.FileFormatError
        When a batch is corrupted or not in the CIFAR-10 format.
    """
    if subset not in ("all", "train", "test"):
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}.")
    folder = _cifar_folder(root)
    parts = {"train": TRAIN_BATCHES, "test": (TEST_BATCH,)}
    wanted = ["train", "test"] if subset == "all" else [subset]
    missing = [f for p in wanted for f in parts[p] if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"cifar10 not found: {folder} lacks {', '.join(missing)}. {_HOW}"
        )
    images, labels, lists, start = [], [], {}, 0
    for p in wanted:
        for name in parts[p]:
            X, y = read_cifar10_batch(folder / name)
            images.append(X)
            labels.append(y)
        count = sum(len(y) for y in labels) - start
        lists[p] = np.arange(start, start + count, dtype=np.int64)
        start += count
    class_names = list(CIFAR10_CLASSES)
    if (folder / META_FILE).is_file():
        meta = _unpickle(folder / META_FILE)
        try:
            names = [
                n.decode("utf-8") if isinstance(n, bytes) else str(n)
                for n in _get(meta, "label_names")
            ]
        except (KeyError, TypeError, AttributeError) as exc:
            raise FileFormatError(
                f"{folder / META_FILE} has no b'label_names' list; remove it or re-extract it."
            ) from exc
        if len(names) != 10:
            raise FileFormatError(
                f"{folder / META_FILE} names {len(names)} classes; CIFAR-10 has 10."
            )
        class_names = names
    return Dataset(
        name="cifar10",
        X=np.concatenate(images),
        y=np.concatenate(labels),
        kind="image",
        class_names=class_names,
        lists=lists,
        meta={"root": str(folder), "subset": subset},
    )
