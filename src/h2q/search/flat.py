"""The flat index: an exact Hamming scan over packed codes, with an exact re-ranking of ties.

Ranking rule (the same for every backend and function here)
-----------------------------------------------------------
Database items are ordered by increasing Hamming distance to the query; among equal
distances the smaller database id comes first. This holds everywhere, including at the k-th
boundary: when several items share the k-th distance, the ones with the smallest ids are
returned. faiss's ``IndexBinaryFlat`` follows the same rule (its scan visits ids in increasing
order and admits a new item only when it is strictly closer than the current k-th, and its
heap compares ``(distance, id)`` pairs), so the ``"numba"``, ``"numpy"`` and ``"faiss"``
backends return identical ``(D, I)`` (the compiled kernel selects by counting distances in
id order, see :mod:`h2q.search._kernels`). A cheap check of every faiss result row guards
this; a row that breaks it is recomputed with the numpy scan.

Re-ranking (the paper's protocol): when continuous features are given for the database and
the queries, items are ordered by (Hamming distance, then squared Euclidean distance of the
L2-normalised features, then id). The re-ranking is exact: every item whose Hamming distance
equals the k-th distance competes, not only those a top-k search returned. The feature distance
is ``((x / ||x|| - q / ||q||) ** 2).sum()`` computed in the features' dtype (float32 features
rank fastest: the three keys then pack into one integer per item).

When ``k`` exceeds the number of database items, rows are padded as faiss pads them: id ``-1``
and distance ``np.iinfo(np.int32).max``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from .._io import load_state, save_state
from .._popcount import to_words
from ..codes import check_codes, check_n_bits
from ..exceptions import FileFormatError
from ._common import (
    RangeSearchResult,
    flat_range_search,
    misordered_rows,
    new_faiss_index,
    resolve_backend,
)
from ._scan import Scan
from .base import BaseHammingIndex

__all__ = ["HammingIndex"]

Backend = Literal["auto", "numba", "numpy", "faiss"]

_FILE_KIND = "HammingIndex"
_FILE_VERSION = 1


class HammingIndex(BaseHammingIndex):
    """Exact (brute-force) Hamming index over packed binary codes.

    Parameters
    ----------
    n_bits : int
        Bits per code. Codes are ``uint8`` arrays of shape ``(n, ceil(n_bits / 8))``, least
        significant bit first within a byte, padding bits 0 (see :func:`h2q.pack_bits`).
    backend : {"auto", "numba", "numpy", "faiss"}, default "auto"
        ``"numba"`` scans with the compiled kernel of :mod:`h2q.search._kernels` (the optional
        ``fast`` extra: query blocks reuse cached tiles of codes, popcount compiles to the
        CPU's instruction, selection counts distances instead of sorting); ``"numpy"`` with a
        chunked numpy popcount scan; ``"faiss"`` with ``faiss.IndexBinaryFlat`` (the optional
        ``faiss`` extra). ``"auto"`` picks the fastest available, measured side by side in
        ``benchmarks/bench_flat.py``: numba (faster than faiss at 64 and 256 bits), else
        faiss, else numpy. All return identical
        results (see the module notes for the tie rule). Re-ranking by features always uses
        the numpy scan, which sees every tie.

    Attributes
    ----------
    n_bits : int
    backend : str
        The backend in use, ``"numba"``, ``"numpy"`` or ``"faiss"``.
    code_size : int
        Bytes per code, ``ceil(n_bits / 8)``.
    ntotal : int
        Number of indexed codes.

    Examples
    --------
    >>> index = HammingIndex(64)
    >>> index.add(db_codes)                     # doctest: +SKIP
    >>> D, I = index.search(query_codes, k=100)  # doctest: +SKIP
    """

    def __init__(self, n_bits: int, backend: Backend = "auto") -> None:
        self._set_width(n_bits)
        self._requested_backend = backend
        self.backend = resolve_backend(backend, self.n_bits)
        self.reset()

    def __repr__(self) -> str:
        features = "" if self._n_features is None else f", features={self._n_features}"
        return (
            f"HammingIndex(n_bits={self.n_bits}, backend={self.backend!r}, "
            f"ntotal={self.ntotal}{features})"
        )

    @property
    def ntotal(self) -> int:
        """Number of indexed codes."""
        return self._ntotal

    def reset(self) -> None:
        """Remove every indexed code (and feature)."""
        self._code_chunks: list[np.ndarray] = []
        self._reset_features()
        self._ntotal = 0
        self._faiss_index: Any = None
        self._scan: Scan | None = None

    def add(self, codes: Any, features: Any = None) -> None:
        """Append codes (and optionally their continuous features) to the index.

        Ids are assigned in order: the i-th added code gets id ``ntotal + i``.

        Parameters
        ----------
        codes : numpy.ndarray of shape (n, code_size), dtype uint8
            Packed codes of ``n_bits`` bits, padding bits 0.
        features : numpy.ndarray or torch.Tensor of shape (n, n_features), optional
            Continuous features of the same items (for example the rotated embeddings), used
            to re-rank Hamming ties. They are stored L2-normalised, in their float dtype
            (that of the first call). Give them in every call to ``add`` or in none.

        Raises
        ------
        TypeError, ValueError
            On codes of the wrong dtype, shape or width, non-zero padding bits, empty input,
            or features of the wrong shape, with NaN/inf or with all-zero rows.
        """
        codes = check_codes(codes, "codes", n_bits=self.n_bits)
        if features is None:
            if self._n_features is not None:
                raise ValueError(
                    "this index holds features (given to an earlier add), but none were given "
                    "now. Pass features for these codes too, or reset() the index."
                )
        else:
            if self._ntotal and self._n_features is None:
                raise ValueError(
                    "features were given, but earlier codes were added without them, so ties "
                    "could not be re-ranked for those. Add all codes with features (reset() "
                    "first), or leave them out."
                )
            self._add_features(features, len(codes))
        if self.backend == "faiss":
            if self._faiss_index is None:
                self._faiss_index = new_faiss_index(self.code_size)
            self._faiss_index.add(codes)
        self._code_chunks.append(codes.copy())
        self._ntotal += len(codes)
        self._scan = None

    def _n_ids(self) -> int:
        return self._ntotal

    def _knn(self, query_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "faiss":
            D, I = self._faiss_index.search(query_codes, k)
            bad = misordered_rows(D, I)
            if bad.size:  # never seen with faiss <= 1.15; kept as a cheap guarantee
                D[bad], I[bad] = self._get_scan().topk(query_codes[bad], k, None)
            return D, I
        if self.backend == "numba":
            from . import _kernels

            return _kernels.topk(self._get_scan().words_t, to_words(query_codes), k, self.n_bits)
        return self._get_scan().topk(query_codes, k, None)

    def _knn_reranked(
        self, query_codes: np.ndarray, k: int, query_features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._get_scan().topk(query_codes, k, query_features)

    def _range(self, query_codes: np.ndarray, radii: np.ndarray) -> RangeSearchResult:
        return flat_range_search(self._get_scan().words_t, query_codes, radii, self.backend)

    def memory_bytes(self) -> int:
        """Bytes held by the index: codes, their word-major copy for the scan, features."""
        total = self._ntotal * self.code_size
        if self._scan is not None:
            total += self._scan.words_t.nbytes
        if self._n_features is not None:
            total += sum(f.nbytes for f in self._feature_chunks)
        return int(total)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` (an ``.npz`` archive, written atomically).

        The codes, the normalised features (if any), ``n_bits`` and the backend setting are
        stored; a faiss index is rebuilt on load.
        """
        arrays: dict[str, np.ndarray] = {"codes": self._codes()}
        if self._n_features is not None:
            arrays["features"] = self._features()
        meta = {
            "n_bits": self.n_bits,
            "backend": self._requested_backend,
            "n_features": self._n_features,
            "ntotal": self._ntotal,
        }
        save_state(path, _FILE_KIND, _FILE_VERSION, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: Backend | None = None) -> HammingIndex:
        """Read an index written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        backend : {"auto", "numba", "numpy", "faiss"}, optional
            Overrides the stored backend setting.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        FileFormatError
            When the file is truncated, corrupted, of another kind or version, or its
            contents are inconsistent.
        """
        try:
            arrays, meta = load_state(path, _FILE_KIND, _FILE_VERSION)
        except NotImplementedError as exc:
            # zipfile raises this when a corrupted header names an unknown compression
            # method, zip version or flag.
            raise FileFormatError(
                f"{path} is truncated or corrupted and cannot be read (NotImplementedError: "
                f"{exc}). Re-create it with HammingIndex.save()."
            ) from exc
        try:
            n_bits = check_n_bits(meta["n_bits"])
            codes = arrays["codes"]
            features = arrays.get("features")
            n_features = meta["n_features"]
            ok = (
                codes.dtype == np.uint8
                and codes.ndim == 2
                and codes.shape[1] == (n_bits + 7) // 8
                and codes.shape[0] == meta["ntotal"]
                and (features is None) == (n_features is None)
                and (
                    features is None
                    or (
                        features.ndim == 2
                        and features.dtype in (np.float32, np.float64)
                        and features.shape == (codes.shape[0], n_features)
                        and bool(np.isfinite(features).all())
                    )
                )
            )
            stored_backend = meta["backend"]
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(
                f"{path} is not a valid HammingIndex file ({type(exc).__name__}: {exc}). "
                "Re-create it with HammingIndex.save()."
            ) from exc
        if not ok:
            raise FileFormatError(
                f"{path} holds inconsistent HammingIndex data (codes {codes.dtype} "
                f"{codes.shape}, n_bits {n_bits}). Re-create it with HammingIndex.save()."
            )
        index = cls(n_bits, backend=stored_backend if backend is None else backend)
        if len(codes):
            # Stored features are already normalised; they are checked and normalised again,
            # which leaves unit vectors unchanged up to rounding, so add them directly.
            codes = check_codes(codes, "codes", n_bits=n_bits)
            if index.backend == "faiss":
                index._faiss_index = new_faiss_index(index.code_size)
                index._faiss_index.add(codes)
            index._code_chunks = [codes]
            if features is not None:
                index._feature_chunks = [np.ascontiguousarray(features)]
                index._n_features = int(n_features)
                index._feature_dtype = features.dtype
            index._ntotal = len(codes)
        return index

    # -- internals ---------------------------------------------------------------------------

    def _codes(self) -> np.ndarray:
        if len(self._code_chunks) != 1:
            joined = (
                np.concatenate(self._code_chunks)
                if self._code_chunks
                else np.zeros((0, self.code_size), dtype=np.uint8)
            )
            self._code_chunks = [joined] if self._code_chunks else []
            return joined
        return self._code_chunks[0]

    def _get_scan(self) -> Scan:
        if self._scan is None:
            self._scan = Scan(self._codes(), self.n_bits, self._features())
        return self._scan
