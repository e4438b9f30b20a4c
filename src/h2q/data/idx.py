"""Reader for the IDX files of MNIST and Fashion-MNIST, gzip-compressed or raw.

Format (all integers big-endian): a 4-byte magic number, then one 4-byte size per dimension,
then the uint8 values in C order.

- images: magic 2051 (``0x00000803``), then ``n, rows, cols``; pixels start at byte 16;
- labels: magic 2049 (``0x00000801``), then ``n``; labels start at byte 8.

A file is taken as gzip when it starts with the gzip signature ``1f 8b``, whatever its name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from ..exceptions import FileFormatError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_NDIM = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}
_WHAT = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The decompressed content of an IDX file (gzip detected by its signature).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    h2q.exceptions.FileFormatError
        When a gzip file is truncated or corrupted.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such IDX file: {path}")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        # EOFError: truncated stream; BadGzipFile (an OSError) / zlib.error: corrupted bytes.
        raise FileFormatError(
            f"{path} is a truncated or corrupted gzip file ({type(exc).__name__}: {exc}). "
            "Reinstall or re-copy it."
        ) from exc


def read_idx(
    path: str | os.PathLike, expect: Literal["images", "labels"] | None = None
) -> np.ndarray:
    """Read an IDX images or labels file into a uint8 array.

    Parameters
    ----------
    path : path-like
        ``*-idx3-ubyte`` (images) or ``*-idx1-ubyte`` (labels), optionally gzip-compressed.
    expect : {"images", "labels"}, optional
        Fail unless the file holds this kind of data.

    Returns
    -------
    numpy.ndarray
        uint8, ``(n, rows, cols)`` for images or ``(n,)`` for labels.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    h2q.exceptions.FileFormatError
        When the magic number is not 2051/2049 (or not the ``expect``-ed one), or the file
        size does not match its header (truncated or with trailing bytes), or a gzip stream
        is broken.
    """
    return parse_idx(read_idx_bytes(path), expect, source=str(path))


def parse_idx(
    data: bytes, expect: Literal["images", "labels"] | None = None, *, source: str = "<bytes>"
) -> np.ndarray:
    """Parse the decompressed bytes of an IDX file; see :func:`read_idx`.

    ``source`` names the file in error messages.
    """
    if len(data) < 8:
        raise FileFormatError(
            f"{source} is too short to be an IDX file ({len(data)} bytes, the header alone is "
            "8 or 16). The file is truncated; reinstall or re-copy it."
        )
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in _NDIM:
        raise FileFormatError(
            f"{source} has magic number {magic}, but IDX images have {IMAGES_MAGIC} and labels "
            f"{LABELS_MAGIC}. It is not an IDX file of uint8 images or labels."
        )
    if expect is not None and _WHAT[magic] != expect:
        raise FileFormatError(
            f"{source} holds IDX {_WHAT[magic]} (magic {magic}), but {expect} were expected. "
            "Check that images and labels files are not swapped."
        )
    ndim = _NDIM[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FileFormatError(
            f"{source} is truncated inside its header ({len(data)} of {header} bytes)."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) + header
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise FileFormatError(
            f"{source} is {state}: its header gives shape {shape}, i.e. {expected} bytes, but it "
            f"has {len(data)}. Reinstall or re-copy it."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
