"""openclipart: public-domain PNG clip art labelled by the folders it sits in.

Debian's ``openclipart-png`` installs the images as ``/usr/share/openclipart/png/<cat>/*.png``
and ``.../<cat>/<sub>/*.png``. Each image gets a multi-hot label over every top-level folder
(``"<cat>"``) and every second-level folder (``"<cat>/<sub>"``): an image in
``animals/birds/`` has the labels ``animals`` and ``animals/birds``; one directly in
``animals/`` has ``animals`` only. With the "share at least one label" rule, two images are
relevant to each other when they share a top-level folder. Images deeper than two levels
take the labels of their first two folders. The set is small and very imbalanced.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetNotFoundError

OPENCLIPART_DIR = "/usr/share/openclipart/png"
OPENCLIPART_INSTALL = "apt-get install -y --no-install-recommends openclipart-png"


def load_openclipart(root: str | os.PathLike | None = None) -> Dataset:
    """List the PNG files of an openclipart tree with their folder labels (no image is read).

    Parameters
    ----------
    root : path-like, optional
        Folder whose subfolders are the top-level categories. Default
        ``/usr/share/openclipart/png``.

    Returns
    -------
    Dataset
        ``kind="image_paths"``; ``X`` the PNG paths sorted by their path relative to
        ``root``; ``y`` uint8 multi-hot ``(n, n_top + n_second)``; ``class_names`` the
        sorted top-level names then the sorted ``"<cat>/<sub>"`` names. Read pixels with
        ``dataset.images(indices, size)`` (RGB, transparency composited on white).

    Raises
    ------
    DatasetNotFoundError
        When the folder is missing or holds no PNG inside a category folder.
    """
    folder = Path(root) if root is not None else Path(OPENCLIPART_DIR)
    fix = f"Install it with `{OPENCLIPART_INSTALL}`, or pass root=FOLDER."
    if not folder.is_dir():
        raise DatasetNotFoundError(f"openclipart not found: no folder {folder}. {fix}")
    items: list[tuple[tuple[str, ...], str]] = []
    for path in folder.rglob("*"):
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        parts = path.relative_to(folder).parts
        if len(parts) < 2:  # a PNG directly in root has no category
            continue
        items.append((parts, str(path)))
    if not items:
        raise DatasetNotFoundError(
            f"openclipart not found: {folder} holds no <category>/[<sub>/]*.png files. {fix}"
        )
    items.sort()
    top = sorted({parts[0] for parts, _ in items})
    second = sorted({f"{parts[0]}/{parts[1]}" for parts, _ in items if len(parts) > 2})
    class_names = top + second
    column = {name: i for i, name in enumerate(class_names)}
    y = np.zeros((len(items), len(class_names)), dtype=np.uint8)
    for row, (parts, _) in enumerate(items):
        y[row, column[parts[0]]] = 1
        if len(parts) > 2:
            y[row, column[f"{parts[0]}/{parts[1]}"]] = 1
    return Dataset(
        name="openclipart",
        X=[p for _, p in items],
        y=y,
        kind="image_paths",
        class_names=class_names,
        meta={"root": str(folder), "n_top_level": len(top)},
    )
