"""The systems the asymmetric-scoring benchmark compares, each built from a spec.

A :class:`Spec` names a system and its settings; :func:`build` fits it on a data set's
``fit`` rows, adds the ``database`` rows and returns a :class:`Built`: a ``search(Q, k) -> I``
function (ids best first; query encoding included, as a user would call it), the bytes per
item of the index and the build time. Families:

- ``faiss``: an ``index_factory`` string (``{d}`` is the input width), inner-product metric,
  ``qb`` the query bits of the RaBitQ estimator (set on the inner index);
- ``hamming``: an h2q quantizer (``"h2q"``: :class:`h2q.HouseholderQuantizer`, ``"itq"``:
  :class:`h2q.ITQQuantizer`, PCA to ``bits``) and :class:`h2q.HammingIndex`;
- ``asym``: :class:`h2q.AsymmetricIndex` on a fitted quantizer (rotation ``"random"``,
  ``"itq"`` or ``"h2q"``, optional PCA width) with its other options (``query_bits``,
  ``bits_per_dim``, ``n_centroids``, ...) passed through; the quantizer's fit is part of the
  build time.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
Search = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Spec:
    """One system: ``name`` (unique in a run), ``family``, ``group`` (the code-size class it
    is compared within, e.g. ``"1 bit/dim"``) and its ``params``."""

    name: str
    family: str
    group: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    """A built system: ``search(Q, k) -> I`` (int64 ``(n_queries, k)``), bytes per item,
    build seconds, and facts worth recording (``info``)."""

    search: Search
    bytes_per_item: float
    build_s: float
    info: dict[str, Any] = field(default_factory=dict)


def build(spec: Spec, data: Arrays, seed: int = 0) -> Built:
    """Fit ``spec`` on ``data["fit"]``, add ``data["database"]``; see the module notes."""
    builders = {"faiss": _build_faiss, "hamming": _build_hamming, "asym": _build_asym}
    t0 = time.perf_counter()
    search, nbytes, info = builders[spec.family](spec.params, data, seed)
    return Built(search, nbytes, time.perf_counter() - t0, info)


def _build_faiss(p: dict[str, Any], data: Arrays, seed: int) -> tuple[Search, float, dict]:
    import faiss

    D = data["database"]
    d = D.shape[1]
    index = faiss.index_factory(d, p["factory"].format(d=d), faiss.METRIC_INNER_PRODUCT)
    inner = _inner_index(index)
    for transform in _transforms(index):
        if hasattr(transform, "init"):  # seeded random rotation
            transform.init(seed)
    index.train(np.ascontiguousarray(data["fit"], dtype=np.float32))
    index.add(np.ascontiguousarray(D, dtype=np.float32))
    if "qb" in p:
        inner.qb = p["qb"]

    def search(Q: np.ndarray, k: int) -> np.ndarray:
        return index.search(np.ascontiguousarray(Q, dtype=np.float32), k)[1]

    info = {"class": type(inner).__name__, "qb": int(inner.qb) if hasattr(inner, "qb") else None}
    return search, float(inner.code_size), info


def _inner_index(index: Any) -> Any:
    import faiss

    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return faiss.downcast_index(index)


def _transforms(index: Any) -> list[Any]:
    import faiss

    if not isinstance(index, faiss.IndexPreTransform):
        return []
    return [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]


def make_quantizer(kind: str, n_bits: int, pca: bool, seed: int, center: bool = False) -> Any:
    """An unfitted h2q quantizer: ``"h2q"``, ``"itq"``, ``"random"`` or ``"sign"`` (``pca``:
    project to ``n_bits`` dimensions first, which centres; ``center``: subtract the mean)."""
    from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer

    projection = "pca" if pca else None
    if kind == "h2q":
        return HouseholderQuantizer(n_bits, projection=projection, center=center, random_state=seed)
    if kind == "itq":
        return ITQQuantizer(n_bits, projection=projection, center=center, random_state=seed)
    if kind == "random":
        from h2q.quantizers import RandomRotationQuantizer

        return RandomRotationQuantizer(n_bits, projection=projection, random_state=seed)
    if kind == "sign":
        return SignQuantizer(n_bits, projection=projection, center=center)
    raise ValueError(f"unknown quantizer {kind!r}; use 'h2q', 'itq', 'random' or 'sign'.")


def _build_hamming(p: dict[str, Any], data: Arrays, seed: int) -> tuple[Search, float, dict]:
    from h2q import HammingIndex

    q = make_quantizer(p["quantizer"], p["bits"], True, seed).fit(data["fit"])
    index = HammingIndex(p["bits"])
    index.add(q.encode(data["database"]))

    def search(Q: np.ndarray, k: int) -> np.ndarray:
        return index.search(q.encode(Q), k)[1]

    return search, index.memory_bytes() / index.ntotal, {"backend": index.backend}


def asym_available() -> bool:
    """Whether the h2q on the path has :class:`h2q.AsymmetricIndex`."""
    import h2q

    return hasattr(h2q, "AsymmetricIndex")


def asym_options() -> set[str]:
    """Keyword arguments :class:`h2q.AsymmetricIndex` accepts (empty without it)."""
    if not asym_available():
        return set()
    import h2q

    return set(inspect.signature(h2q.AsymmetricIndex).parameters)


def _asym_quantizer(p: dict[str, Any], data: Arrays, seed: int) -> tuple[Any, float]:
    """The fitted quantizer ``AsymmetricIndex`` takes, for ``p["rotation"]`` and ``p["pca"]``:
    ``"random"`` (:class:`h2q.quantizers.RandomRotationQuantizer`), ``"h2q"`` or ``"itq"``,
    centred, after PCA to ``pca`` dimensions when given; and its fit time."""
    fit = data["fit"]
    key = (p["rotation"], p.get("pca"), fit.shape, hash(fit[:8].tobytes()), seed)
    if key not in _FITTED:
        t0 = time.perf_counter()
        _FITTED[key] = (_fit_quantizer(p, data, seed), time.perf_counter() - t0)
    return _FITTED[key]


#: Fitted quantizers of this process, by (rotation, pca, fit rows' shape and head, seed): the
#: variants that share a rotation share its fit (its time is reported once, beside each).
_FITTED: dict[tuple, tuple[Any, float]] = {}


def _fit_quantizer(p: dict[str, Any], data: Arrays, seed: int) -> Any:
    width = p.get("pca") or data["fit"].shape[1]
    return make_quantizer(p["rotation"], width, bool(p.get("pca")), seed, center=True).fit(
        data["fit"]
    )


def _build_asym(p: dict[str, Any], data: Arrays, seed: int) -> tuple[Search, float, dict]:
    import h2q

    D = data["database"]
    opts = {k: v for k, v in p.items() if k not in ("rotation", "pca")}
    known = asym_options()
    dropped = sorted(set(opts) - known)
    if dropped:
        raise ValueError(f"AsymmetricIndex takes none of {dropped}; it takes {sorted(known)}.")
    if "seed" in known:
        opts["seed"] = seed
    quantizer, fit_s = _asym_quantizer(p, data, seed)
    t0 = time.perf_counter()
    index = h2q.AsymmetricIndex(quantizer, **opts)
    index.add(D)
    info = {"quantizer_fit_s": fit_s, "index_build_s": time.perf_counter() - t0}

    def search(Q: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(index.search(Q, k)[1])

    info["memory_bytes_per_item"] = index.memory_bytes() / index.ntotal  # + rotation, centroids
    nbytes = (
        index.bytes_per_item()
        if hasattr(index, "bytes_per_item")
        else info["memory_bytes_per_item"]
    )
    return search, float(nbytes), {**info, "repr": repr(index)[:200]}
