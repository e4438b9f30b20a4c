"""NUS-WIDE, MS-COCO and ImageNet-100 from the image-list files of the deep-hashing toolkits.

The HashNet and DeepHash toolkits describe each of these sets by plain-text list files, one
image per line::

    relative/or/absolute/path.jpg 0 1 0 0 1 ... 0

the path, a space, then the label vector: one 0/1 entry per class, separated by spaces
(multi-hot for NUS-WIDE and COCO, one-hot for ImageNet-100). A line ``path 17`` with a single
integer is read as a class index. Paths may not contain whitespace. The list files a folder
may hold, by their toolkit names:

- ``database.txt``: the retrieval database;
- ``train.txt``: the training images;
- ``test.txt``: the test images (queries; the paper splits them into query and validation).

The loaders pool the images of every list present, each image once (an image listed in
two files, e.g. in ``train.txt`` and ``database.txt``, is one item; its labels must agree),
numbered in that order of the lists (database first), and keep each file's item indices in
``dataset.lists``. Relative paths are resolved against
``image_root`` (default: the folder of the lists); ``strip_prefix`` removes the absolute prefix
of lists written on another machine (HashNet's ImageNet lists start with their authors' home
folder). Images are not read at load time: ``kind="image_paths"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..exceptions import FileFormatError
from .dataset import Dataset, DatasetNotFoundError

LIST_FILES = {"database": "database.txt", "train": "train.txt", "test": "test.txt"}


def read_image_list(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read one image-list file.

    Parameters
    ----------
    path : path-like
        Text file with lines ``path v_1 ... v_C`` (0/1 label vector) or ``path c`` (class
        index). Blank lines are skipped.

    Returns
    -------
    paths : list of str
        The image paths as written in the file.
    labels : numpy.ndarray
        uint8 ``(n, C)`` for label vectors, int64 ``(n,)`` for class indices.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    h2q.exceptions.FileFormatError
        When a line has no label, a label is not an integer (or not 0/1 in a vector), or
        lines disagree on the number of labels; the message gives the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image-list file: {path}")
    paths: list[str] = []
    rows: list[list[int]] = []
    width = None
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise FileFormatError(
                    f"{path}, line {number}: expected 'image_path label ...', got {line.strip()!r}."
                )
            if width is None:
                width = len(fields) - 1
            elif len(fields) - 1 != width:
                raise FileFormatError(
                    f"{path}, line {number}: {len(fields) - 1} label entries, but earlier lines "
                    f"have {width}. Every line needs the same number of classes."
                )
            try:
                values = [int(v) for v in fields[1:]]
            except ValueError as exc:
                raise FileFormatError(
                    f"{path}, line {number}: labels must be integers, got {fields[1:6]!r}."
                ) from exc
            if width > 1 and any(v not in (0, 1) for v in values):
                raise FileFormatError(
                    f"{path}, line {number}: a label vector holds only 0 and 1, got {values[:10]}."
                )
            paths.append(fields[0])
            rows.append(values)
    if width is None:
        raise FileFormatError(f"{path} lists no images (it is empty).")
    if width == 1:
        labels = np.array([r[0] for r in rows], dtype=np.int64)
        if labels.min() < 0:
            raise FileFormatError(f"{path}: class indices must be >= 0, found {labels.min()}.")
        return paths, labels
    return paths, np.array(rows, dtype=np.uint8)


def _resolve(entry: str, image_root: Path, strip_prefix: str | None) -> str:
    if strip_prefix and entry.startswith(strip_prefix):
        entry = entry[len(strip_prefix) :].lstrip("/")
    if os.path.isabs(entry):
        return entry
    return str(image_root / entry)


def load_image_list(
    root: str | os.PathLike | None,
    *,
    name: str = "image-list",
    image_root: str | os.PathLike | None = None,
    strip_prefix: str | None = None,
    list_files: Mapping[str, str] | None = None,
    required: tuple[str, ...] = (),
    single_label: bool = False,
    check_files: bool = True,
) -> Dataset:
    """Pool the images of a folder's list files into one :class:`Dataset`.

    Parameters
    ----------
    root : path-like
        Folder holding the list files.
    name : str
        Dataset name (for messages and ``dataset.name``).
    image_root : path-like, optional
        Folder that relative image paths start from. Default ``root``.
    strip_prefix : str, optional
        Prefix removed from image paths that start with it (then resolved against
        ``image_root``).
    list_files : mapping, optional
        Fold name -> file name, default ``{"database": "database.txt", "train":
        "train.txt", "test": "test.txt"}``. Folds whose file is absent are skipped. Items are
        numbered in this order, each the first time it appears.
    required : tuple of str
        Folds whose file must exist. When empty, at least one must.
    single_label : bool
        Return class ids ``(n,)``: one-hot vectors are converted (a row with other than one
        1 is an error).
    check_files : bool
        Check that every image file exists (one ``stat`` per image).

    Returns
    -------
    Dataset
        ``kind="image_paths"``; ``X`` absolute paths; ``y`` uint8 multi-hot ``(n, C)`` or,
        with ``single_label`` or class-index lists, int64 ``(n,)``; ``lists`` maps each fold
        found to its item indices, in file order (an image listed twice in one file appears
        once, at its first place).

    Raises
    ------
    DatasetNotFoundError
        When the folder, a required list file or an image file is missing.
    h2q.exceptions.FileFormatError
        When a list file is malformed, lists disagree on the number of classes, or one image
        gets different labels in different lists.
    """
    files = dict(LIST_FILES if list_files is None else list_files)
    folder, present = _present_lists(root, name, files, required)
    base = Path(image_root) if image_root is not None else folder
    X, labels, lists = _pool_lists(present, base, strip_prefix)
    y_all = np.stack(labels)
    if y_all.ndim == 2 and single_label:
        y_all = _one_hot_to_ids(y_all, name, X)
    n_classes = y_all.shape[1] if y_all.ndim == 2 else int(y_all.max()) + 1
    if check_files:
        _check_images_exist(X, name)
    return Dataset(
        name=name,
        X=X,
        y=y_all,
        kind="image_paths",
        class_names=[str(c) for c in range(n_classes)],
        lists=lists,
        meta={"root": str(folder), "image_root": str(base), "list_files": files},
    )


def _present_lists(
    root: str | os.PathLike | None, name: str, files: dict[str, str], required: tuple[str, ...]
) -> tuple[Path, dict[str, Path]]:
    """The folder and the list files found in it (fold -> path); missing ones raise."""
    how = (
        f"{name} is read from a folder you give (h2q downloads nothing); it must contain the "
        f"toolkit list files {', '.join(files.values())} (lines 'image_path 0 1 0 ...'), and "
        "the images they name under image_root."
    )
    if root is None:
        raise DatasetNotFoundError(f"{name}: no folder given. {how}")
    folder = Path(root)
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{name}: folder {folder} does not exist. {how}")
    present = {fold: folder / f for fold, f in files.items() if (folder / f).is_file()}
    missing = [files[fold] for fold in required if fold not in present]
    if missing or not present:
        lacking = ", ".join(missing or files.values())
        raise DatasetNotFoundError(f"{name} not found: {folder} lacks {lacking}. {how}")
    return folder, present


def _pool_lists(
    present: dict[str, Path], base: Path, strip_prefix: str | None
) -> tuple[list[str], list[np.ndarray], dict[str, np.ndarray]]:
    """Every listed image once (``X``, ``labels``), and each fold's item indices in file order."""
    index: dict[str, int] = {}
    X: list[str] = []
    labels: list[np.ndarray] = []
    lists: dict[str, np.ndarray] = {}
    shape = None
    for fold, list_path in present.items():
        entries, y = read_image_list(list_path)
        if shape is None:
            shape = y.shape[1:]
        elif y.shape[1:] != shape:
            raise FileFormatError(
                f"{list_path} has labels of shape {y.shape[1:]} per line but the other lists "
                f"have {shape}; all lists of one data set must use the same classes."
            )
        positions = np.empty(len(entries), dtype=np.int64)
        for i, entry in enumerate(entries):
            resolved = _resolve(entry, base, strip_prefix)
            at = index.get(resolved)
            if at is None:
                at = index[resolved] = len(X)
                X.append(resolved)
                labels.append(y[i])
            elif not np.array_equal(labels[at], y[i]):
                raise FileFormatError(
                    f"{entry} appears in several lists with different labels (second time in "
                    f"{list_path}); fix the lists."
                )
            positions[i] = at
        # an image listed twice in one file counts once, at its first place
        _, first = np.unique(positions, return_index=True)
        lists[fold] = positions[np.sort(first)]
    return X, labels, lists


def _one_hot_to_ids(y: np.ndarray, name: str, X: list[str]) -> np.ndarray:
    """Class ids ``(n,)`` of one-hot rows; a row with other than one 1 raises."""
    counts = y.sum(axis=1)
    bad = np.flatnonzero(counts != 1)
    if len(bad):
        raise FileFormatError(
            f"{name} is single-label but {len(bad)} image(s) have {int(counts[bad[0]])} "
            f"labels (first: {X[bad[0]]}); every label vector must be one-hot."
        )
    return y.argmax(axis=1).astype(np.int64)


def _check_images_exist(X: list[str], name: str) -> None:
    absent = [p for p in X if not os.path.isfile(p)]
    if absent:
        raise DatasetNotFoundError(
            f"{name}: {len(absent)} of {len(X)} listed images are missing, e.g. "
            f"{', '.join(absent[:3])}. Pass image_root= (the folder the list paths start "
            "from) or strip_prefix= (for absolute paths written on another machine), or "
            "check_files=False to skip this check."
        )


def load_nus_wide(root: str | os.PathLike | None = None, **kwargs: object) -> Dataset:
    """NUS-WIDE (the 21-concept version of the deep-hashing papers) from its list files.

    The lists carry multi-hot labels over the concepts. The paper pools all the images and
    draws train/query/val/database by counts (``make_split(y, "nus-wide")``). Keyword
    arguments go to :func:`load_image_list`.
    """
    return load_image_list(root, name="nus-wide", **kwargs)  # type: ignore[arg-type]


def load_coco(root: str | os.PathLike | None = None, **kwargs: object) -> Dataset:
    """MS-COCO 2014 (multi-hot over its categories) from its list files.

    The paper pools all the images and draws train/query/val/database by counts
    (``make_split(y, "coco")``). Keyword arguments go to :func:`load_image_list`.
    """
    return load_image_list(root, name="coco", **kwargs)  # type: ignore[arg-type]


def load_imagenet100(root: str | os.PathLike | None = None, **kwargs: object) -> Dataset:
    """ImageNet-100 from HashNet's lists ``train.txt``, ``test.txt``, ``database.txt``.

    HashNet's lines hold a one-hot vector over the 100 classes; ``y`` is returned as class
    ids. All three lists are required: the paper's split uses them as they are
    (``make_split(dataset, "imagenet100")``). Keyword arguments go to
    :func:`load_image_list`.
    """
    kwargs.setdefault("required", ("train", "test", "database"))
    kwargs.setdefault("single_label", True)
    return load_image_list(root, name="imagenet100", **kwargs)  # type: ignore[arg-type]
