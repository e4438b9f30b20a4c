"""The popcount kernel behind Hamming distances: packed codes as ``uint64`` words, XOR, popcount.

numpy's popcount (``np.bitwise_count``, numpy >= 2) with a byte lookup table on older numpy.
Distances are computed in blocks so that memory stays bounded. The code format itself (how bits
are packed) lives in :mod:`h2q.codes`; the compiled kernels of the search indexes live in
:mod:`h2q.search._kernels`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Elements of the ``uint64`` scratch block of the Hamming kernel (2 MiB).
KERNEL_BLOCK_WORDS = 1 << 18


def to_words(codes: np.ndarray) -> np.ndarray:
    """View (or copy, zero-padded) packed codes as ``uint64`` words, shape (n, n_words)."""
    n, n_bytes = codes.shape
    n_words = (n_bytes + 7) // 8
    if n_bytes % 8 == 0 and sys.byteorder == "little":
        return np.ascontiguousarray(codes).view(np.uint64)
    padded = np.zeros((n, 8 * n_words), dtype=np.uint8)
    padded[:, :n_bytes] = codes
    words = padded.view(np.uint64)
    # Note: on a big-endian host the byte order inside a word differs, but popcount of a XOR
    # is the same for any fixed permutation of bytes, so distances do not change.
    return words


def iter_distance_blocks(
    q_words: np.ndarray,
    db_words_t: np.ndarray,
    chunk_size: int | None,
    dtype: Any,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, D)`` with ``D`` the distances of query rows ``start:stop``.

    ``db_words_t`` is word-major, shape (n_words, n_db), so that each word is contiguous.
    ``D`` has shape (stop - start, n_db) and the given dtype, and is reused between yields.
    """
    n_q = q_words.shape[0]
    n_db = db_words_t.shape[1]
    if chunk_size is None:
        chunk_size = max(1, min(256, KERNEL_BLOCK_WORDS // max(n_db, 1)))
    chunk_size = min(chunk_size, n_q)
    db_block = max(1024, KERNEL_BLOCK_WORDS // chunk_size)
    out = np.empty((chunk_size, n_db), dtype=dtype)
    scratch = KernelScratch(chunk_size, min(db_block, n_db), q_words.shape[1] > 1)
    for start in range(0, n_q, chunk_size):
        stop = min(start + chunk_size, n_q)
        D = out[: stop - start]
        for b0 in range(0, n_db, db_block):
            b1 = min(b0 + db_block, n_db)
            block_distances(q_words[start:stop], db_words_t, b0, b1, D[:, b0:b1], scratch)
        yield start, stop, D


class KernelScratch:
    """Preallocated scratch arrays for :func:`block_distances`."""

    def __init__(self, n_rows: int, n_cols: int, multiword: bool) -> None:
        self.xor = np.empty((n_rows, n_cols), dtype=np.uint64)
        self.count = np.empty((n_rows, n_cols), dtype=np.uint8) if multiword else None


def block_distances(
    q_words: np.ndarray,
    db_words_t: np.ndarray,
    b0: int,
    b1: int,
    out: np.ndarray,
    scratch: KernelScratch,
) -> None:
    """``out[i, j - b0] = popcount(q[i] ^ db[j])`` for ``j`` in ``b0:b1`` (internal)."""
    c, m = q_words.shape[0], b1 - b0
    xor = scratch.xor[:c, :m]
    for w in range(q_words.shape[1]):
        np.bitwise_xor(q_words[:, w : w + 1], db_words_t[w, None, b0:b1], out=xor)
        if w == 0:
            popcount(xor, out)
        else:
            count = scratch.count[:c, :m]
            popcount(xor, count)
            np.add(out, count, out=out, casting="unsafe")


def popcount(words: np.ndarray, out: np.ndarray) -> None:
    """Bits set in each ``uint64`` of ``words``, written into ``out`` (same shape)."""
    bitwise_count = getattr(np, "bitwise_count", None)
    if bitwise_count is not None:
        bitwise_count(words, out=out, casting="unsafe")
    else:  # numpy < 2
        popcount_table(words, out)


def popcount_table(words: np.ndarray, out: np.ndarray) -> None:
    """Lookup-table popcount (numpy < 2 has no ``bitwise_count``)."""
    table = byte_popcounts()
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(*words.shape, 8)
    np.sum(table[as_bytes], axis=-1, out=out, dtype=out.dtype)


@functools.lru_cache(maxsize=1)
def byte_popcounts() -> np.ndarray:
    return np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
