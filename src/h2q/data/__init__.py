"""Data sets, the paper's on-disk formats and seeded retrieval splits.

Load a data set by name with :func:`load_dataset` (nothing is ever downloaded), then draw the
paper's train / query / validation / database folds with :func:`make_split` and save them
with :meth:`Split.save` so that a run can be repeated::

    from h2q.data import load_dataset, make_split

    data = load_dataset("fashion-mnist")
    split = make_split(data, "fashion-mnist", random_state=0)
    split.save("fashion-mnist-split-0.npz")
"""

from .cifar10 import load_cifar10, read_cifar10_batch
from .dataset import Dataset, DatasetNotFoundError, labels_fingerprint, load_image
from .idx import read_idx
from .image_list import (
    LIST_FILES,
    load_coco,
    load_image_list,
    load_imagenet100,
    load_nus_wide,
    read_image_list,
)
from .mnist import load_digits, load_fashion_mnist, load_mnist
from .openclipart import load_openclipart
from .registry import available_datasets, load_dataset
from .split import (
    SCHEMES,
    ListScheme,
    PerClassScheme,
    Split,
    StratifiedScheme,
    TotalScheme,
    get_scheme,
    load_split,
    make_split,
    save_split,
)
from .wordnet import SUPERSENSES, load_wordnet, load_wordnet_nouns

__all__ = [
    "LIST_FILES",
    "SCHEMES",
    "SUPERSENSES",
    "Dataset",
    "DatasetNotFoundError",
    "ListScheme",
    "PerClassScheme",
    "Split",
    "StratifiedScheme",
    "TotalScheme",
    "available_datasets",
    "get_scheme",
    "labels_fingerprint",
    "load_cifar10",
    "load_coco",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image",
    "load_image_list",
    "load_imagenet100",
    "load_mnist",
    "load_nus_wide",
    "load_openclipart",
    "load_split",
    "load_wordnet",
    "load_wordnet_nouns",
    "make_split",
    "read_cifar10_batch",
    "read_idx",
    "read_image_list",
    "save_split",
]
