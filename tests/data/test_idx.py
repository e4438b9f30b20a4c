"""IDX reader: tiny files written byte by byte in tmp_path, raw and gzip."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from h2q.data import read_idx
from h2q.exceptions import FileFormatError


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {3: 2051, 1: 2049}[array.ndim]
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write(path, data: bytes, gz: bool):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_images_and_labels_round_trip(tmp_path, images, gz):
    labels = np.arange(7, dtype=np.uint8)
    got_x = read_idx(write(tmp_path / "x-idx3-ubyte", idx_bytes(images), gz), expect="images")
    got_y = read_idx(write(tmp_path / "y-idx1-ubyte", idx_bytes(labels), gz), expect="labels")
    assert got_x.dtype == np.uint8 and got_x.shape == (7, 5, 3)
    np.testing.assert_array_equal(got_x, images)
    np.testing.assert_array_equal(got_y, labels)
    # the header is big-endian: n, rows, cols at bytes 4, 8, 12; pixels from byte 16
    raw = idx_bytes(images)
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[16] == images[0, 0, 0]


def test_gzip_is_detected_by_content_not_name(tmp_path, images):
    path = write(tmp_path / "no-suffix", idx_bytes(images), gz=True)
    np.testing.assert_array_equal(read_idx(path), images)


def test_empty_labels_file(tmp_path):
    path = write(tmp_path / "y", idx_bytes(np.zeros(0, np.uint8)), gz=False)
    assert read_idx(path).shape == (0,)


def test_wrong_magic(tmp_path, images):
    data = bytearray(idx_bytes(images))
    data[3] = 0x0D  # float32 IDX: not supported
    with pytest.raises(FileFormatError, match="magic number 2061"):
        read_idx(write(tmp_path / "x", bytes(data), gz=False))


def test_swapped_images_and_labels(tmp_path, images):
    path = write(tmp_path / "x", idx_bytes(images), gz=True)
    with pytest.raises(FileFormatError, match="holds IDX images .* labels were expected"):
        read_idx(path, expect="labels")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path, images, gz):
    data = idx_bytes(images)[:-3]
    with pytest.raises(FileFormatError, match="is truncated: its header gives shape"):
        read_idx(write(tmp_path / "x", data, gz))


def test_trailing_bytes(tmp_path, images):
    data = idx_bytes(images) + b"\x00"
    with pytest.raises(FileFormatError, match="longer than its header says"):
        read_idx(write(tmp_path / "x", data, gz=False))


def test_truncated_header(tmp_path, images):
    with pytest.raises(FileFormatError, match="truncated inside its header"):
        read_idx(write(tmp_path / "x", idx_bytes(images)[:12], gz=False))
    with pytest.raises(FileFormatError, match="too short to be an IDX file"):
        read_idx(write(tmp_path / "y", b"\x00\x00\x08", gz=False))


def test_truncated_gzip_stream(tmp_path, images):
    compressed = gzip.compress(idx_bytes(images))
    path = tmp_path / "x.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(FileFormatError, match="truncated or corrupted gzip"):
        read_idx(path)


def test_corrupted_gzip_stream(tmp_path, images):
    compressed = bytearray(gzip.compress(idx_bytes(images)))
    compressed[-6] ^= 0xFF  # inside the CRC-32 trailer
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(FileFormatError, match="truncated or corrupted gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such IDX file"):
        read_idx(tmp_path / "absent")
