"""The database items behind the served ids: labels, class names, texts and images.

Item ``i`` of the served database is item ``source_ids[i]`` of a :class:`h2q.data.Dataset`
when the data set can be loaded (a run folder's ``split.npz`` names its database items), so the
page can show pictures or texts; without it, labels alone (from an embeddings file), or nothing.
Images are encoded as PNG on first request and kept (small thumbnails, bounded cache).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["ItemStore"]

#: Longest side of a served thumbnail, in pixels.
THUMBNAIL = 96


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    if max(image.size) > THUMBNAIL:
        image.thumbnail((THUMBNAIL, THUMBNAIL))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class ItemStore:
    """Labels, texts and images of the ``n_items`` database items (each part optional).

    Parameters
    ----------
    labels : numpy.ndarray of shape (n_items,) or (n_items, n_classes), optional
        Class ids, or multi-hot rows (two items are relevant when they share a label).
    class_names : list of str, optional
    dataset : h2q.data.Dataset, optional
        The data set the items come from (pictures or texts).
    source_ids : numpy.ndarray of shape (n_items,), optional
        Index of each database item in ``dataset`` (required with it).
    """

    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    dataset: Any = None
    source_ids: np.ndarray | None = None
    _png_cache: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.dataset is None) != (self.source_ids is None):
            raise ValueError("pass dataset and source_ids together.")
        if self.labels is not None and self.source_ids is not None:
            if len(self.labels) != len(self.source_ids):
                raise ValueError(
                    f"{len(self.labels)} labels but {len(self.source_ids)} source ids; pass the "
                    "labels and the split of the same run."
                )
        self._png_cache = lru_cache(maxsize=4096)(self._make_png)

    @property
    def n_items(self) -> int | None:
        if self.labels is not None:
            return len(self.labels)
        return None if self.source_ids is None else len(self.source_ids)

    @property
    def kind(self) -> str | None:
        """``"image"``, ``"text"`` or None (no item content)."""
        if self.dataset is None:
            return None
        return "text" if self.dataset.kind == "text" else "image"

    def label(self, i: int) -> int | list[int] | None:
        """Class id of item ``i``, the list of its classes (multi-hot), or None."""
        if self.labels is None:
            return None
        row = self.labels[i]
        return int(row) if self.labels.ndim == 1 else np.flatnonzero(row).tolist()

    def labels_of(self, ids: np.ndarray) -> list[Any] | None:
        """:meth:`label` of each id (None when there are no labels)."""
        if self.labels is None:
            return None
        return [self.label(int(i)) for i in ids]

    def text(self, i: int) -> str | None:
        if self.kind != "text":
            return None
        return str(self.dataset.X[int(self.source_ids[i])])

    def describe(self, i: int) -> dict[str, Any]:
        """The answer of ``GET /api/items/{i}``."""
        label = self.label(i)
        names = None
        if label is not None and self.class_names is not None:
            ids = [label] if isinstance(label, int) else label
            names = [self.class_names[c] for c in ids if 0 <= c < len(self.class_names)]
        out: dict[str, Any] = {"id": i, "label": label, "class_names": names}
        if self.kind == "text":
            out["text"] = self.text(i)
        if self.kind == "image":
            out["image"] = f"/api/items/{i}/image"
        if self.source_ids is not None:
            out["source"] = {"dataset": self.dataset.name, "index": int(self.source_ids[i])}
        return out

    def png(self, i: int) -> bytes | None:
        """PNG bytes of item ``i`` (a thumbnail), or None for a set without images."""
        if self.kind != "image":
            return None
        return self._png_cache(i)

    def _make_png(self, i: int) -> bytes:
        j = int(self.source_ids[i])
        data = self.dataset
        if data.kind == "image":
            return _png(data.X[j])
        from ..data.dataset import load_image

        return _png((data.loader or load_image)(data.X[j], THUMBNAIL))
