"""The dataset record every loader returns, and the image reader for file-based sets.

A :class:`Dataset` holds everything a retrieval experiment needs from a data set and nothing
else: the items ``X``, their labels ``y`` (class ids or multi-hot rows, the two forms
:func:`h2q.labels.share_label` understands), the class names, and for file-based image sets
the function that turns one path into pixels. It does no I/O itself except through that
function, so loading a 100k-image list costs only the list.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Kind = Literal["image", "image_paths", "text"]
_KINDS = ("image", "image_paths", "text")


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a data set's files are not where a loader looks for them.

    The message names the folder searched, the files expected there and how to install them
    (nothing in h2q downloads data).
    """


@dataclass
class Dataset:
    """A labelled data set held in memory (pixels or texts) or as a list of image files.

    Parameters
    ----------
    name : str
        Registry name of the data set, e.g. ``"fashion-mnist"``.
    X : numpy.ndarray or list of str
        The items, in a fixed order:

        - ``kind="image"``: uint8 array, ``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB;
        - ``kind="image_paths"``: list of ``n`` image file paths (absolute), read on demand
          with :attr:`loader`;
        - ``kind="text"``: list of ``n`` strings.
    y : numpy.ndarray
        Labels: int64 class ids of shape ``(n,)``, or uint8 0/1 multi-hot rows of shape
        ``(n, n_classes)``. Two items are relevant to each other when they share a label.
    kind : {"image", "image_paths", "text"}
        What ``X`` holds.
    class_names : list of str
        One name per class (the column order of multi-hot ``y``).
    loader : callable, optional
        For ``kind="image_paths"``: ``loader(path, size) -> uint8 (H, W, 3)``; by default
        :func:`load_image`.
    lists : dict of str to numpy.ndarray, optional
        Index arrays of the source's own folds, e.g. ``{"train": ..., "test": ...}`` for
        the IDX and CIFAR-10 files or ``{"train", "test", "database"}`` for image-list sets.
        :func:`h2q.data.make_split` uses them for the ``"lists"`` scheme.
    meta : dict, optional
        Anything else a loader records (source folder, per-item identifiers, ...).
    """

    name: str
    X: np.ndarray | list[str]
    y: np.ndarray
    kind: Kind
    class_names: list[str]
    loader: Callable[..., np.ndarray] | None = None
    lists: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}.")
        self.y = np.asarray(self.y)
        if self.y.ndim not in (1, 2):
            raise ValueError(
                f"y must be class ids (n,) or multi-hot (n, n_classes), got shape {self.y.shape}."
            )
        if len(self.X) != len(self.y):
            raise ValueError(
                f"{self.name}: X has {len(self.X)} items but y has {len(self.y)} labels; pass "
                "one label (row) per item, in the same order."
            )
        if self.y.ndim == 2 and self.y.shape[1] != len(self.class_names):
            raise ValueError(
                f"{self.name}: y has {self.y.shape[1]} label columns but there are "
                f"{len(self.class_names)} class names."
            )
        if self.kind == "image_paths" and self.loader is None:
            self.loader = load_image

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, kind={self.kind!r}, n_samples={len(self)}, "
            f"n_classes={self.n_classes}, multilabel={self.is_multilabel})"
        )

    @property
    def n_samples(self) -> int:
        """Number of items."""
        return len(self.y)

    @property
    def n_classes(self) -> int:
        """Number of classes (length of :attr:`class_names`)."""
        return len(self.class_names)

    @property
    def is_multilabel(self) -> bool:
        """True when ``y`` is multi-hot ``(n, n_classes)``."""
        return self.y.ndim == 2

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """A new :class:`Dataset` with the items at ``indices``, in that order.

        :attr:`lists` is dropped (its indices refer to the full set); :attr:`meta` is copied
        unchanged (per-item entries in it still follow the full set's order).
        """
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(self.X, np.ndarray):
            X: np.ndarray | list[str] = self.X[idx]
        else:
            X = [self.X[i] for i in idx]
        return Dataset(
            name=self.name,
            X=X,
            y=self.y[idx],
            kind=self.kind,
            class_names=list(self.class_names),
            loader=self.loader,
            meta=dict(self.meta),
        )

    def images(
        self, indices: Sequence[int] | np.ndarray, size: int | tuple[int, int] | None = None
    ) -> np.ndarray:
        """Pixels of the items at ``indices`` as one uint8 array.

        Parameters
        ----------
        indices : sequence of int
            Item positions.
        size : int or (height, width), optional
            For ``kind="image_paths"``: passed to :attr:`loader` (required unless every image
            has the same size). Ignored for in-memory images, which are returned as stored.

        Returns
        -------
        numpy.ndarray
            uint8, ``(len(indices), H, W)`` or ``(len(indices), H, W, 3)``.
        """
        idx = np.asarray(indices, dtype=np.int64)
        if self.kind == "image":
            return np.asarray(self.X)[idx]
        if self.kind == "text":
            raise TypeError(f"{self.name} holds texts, not images; read dataset.X instead.")
        assert self.loader is not None  # set in __post_init__
        arrays = [self.loader(self.X[i], size) for i in idx]
        if len({a.shape for a in arrays}) > 1:
            raise ValueError(
                f"images of different sizes ({sorted({a.shape for a in arrays})[:3]}); pass "
                "size=... to resize them to one size."
            )
        if not arrays:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        return np.stack(arrays)


def labels_fingerprint(y: np.ndarray) -> str:
    """SHA-256 of a label array's shape and values (as int64), used to tie a split to its data.

    Parameters
    ----------
    y : numpy.ndarray
        Class ids ``(n,)`` or multi-hot ``(n, n_classes)``.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    y = np.asarray(y)
    digest = hashlib.sha256(repr(tuple(y.shape)).encode("ascii"))
    digest.update(np.ascontiguousarray(y, dtype="<i8").tobytes())
    return digest.hexdigest()


def load_image(
    path: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Read one image file (PNG, JPEG, ...) as RGB uint8, transparency composited on white.

    Parameters
    ----------
    path : path-like
        Image file.
    size : int or (height, width), optional
        Output size. The image is scaled to fit inside it with its aspect ratio kept (bilinear)
        and centred on a ``background`` canvas ("letterbox"), so nothing is cropped. An int
        means a square. None keeps the file's size.
    background : (r, g, b)
        Colour under transparent pixels and of the letterbox margins.

    Returns
    -------
    numpy.ndarray
        uint8 of shape ``(H, W, 3)``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    h2q.exceptions.FileFormatError
        When the file is not a readable image.
    ImportError
        When Pillow is not installed (``pip install pillow``).
    """
    from ..exceptions import FileFormatError

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - pillow is present in the dev setup
        raise ImportError("reading image files needs Pillow: pip install pillow") from exc
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise FileFormatError(
            f"{path} is not a readable image ({type(exc).__name__}: {exc}). Replace or remove "
            "the file."
        ) from exc
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    rgb = Image.alpha_composite(canvas, rgba).convert("RGB")
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else size
        if height < 1 or width < 1:
            raise ValueError(f"size must be positive, got {size!r}.")
        scale = min(width / rgb.width, height / rgb.height)
        new_w = max(1, round(rgb.width * scale))
        new_h = max(1, round(rgb.height * scale))
        resized = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
        out = Image.new("RGB", (width, height), background)
        out.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
        rgb = out
    return np.asarray(rgb, dtype=np.uint8)
