"""Unsupervised evaluation: recall of the exact float neighbours, for unlabelled embeddings.

:func:`evaluate_recall` fits each quantizer, encodes the queries and the database, and scores
how many of each query's exact float top-``k`` (:func:`h2q.search.exact_neighbors`, by inner
product or squared L2) the binary search finds in its own top ``k``
(:func:`h2q.evaluation.metrics.recall_at_k`), three ways:

- ``ties by id``: Hamming distance, equal distances by smaller database id;
- ``ties by float``: Hamming distance, equal distances by the squared Euclidean distance of
  the L2-normalised *original* vectors (the cosine; :func:`h2q.search.rank_database` with
  features), then id;
- ``rescored``: the Hamming top ``R`` (ties by id) re-ordered by the exact float score
  (:func:`h2q.search.rescore`), the "binary quantization with rescoring" of vector databases;
- ``asymmetric`` (with ``asymmetric=True``): the float query scored against the codes by
  :class:`h2q.AsymmetricIndex` (RaBitQ's estimator, 1 bit per dimension, default options).

:func:`baseline_quantizers` builds the side-by-side set: raw sign, centred sign, a seeded
random rotation (:class:`h2q.quantizers.RandomRotationQuantizer`), ITQ and H²Q.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .._validation import ArrayLike, check_embeddings, check_positive_int
from ..quantizers import H2Q, ITQ, RANDOM_ROTATION, SIGN, make_quantizer
from ..search import AsymmetricIndex, rank_database, rescore
from ..search.exact import exact_neighbors
from .metrics import recall_at_k

__all__ = [
    "UNSUPERVISED_METHODS",
    "RecallResult",
    "RecallRow",
    "baseline_quantizers",
    "evaluate_recall",
    "render_recall_csv",
    "render_recall_markdown",
]

_CENTRED_SIGN = "centred-sign"
#: Method keys of :func:`baseline_quantizers` -> the names shown in the table.
UNSUPERVISED_METHODS: dict[str, str] = {
    SIGN: "sign",
    _CENTRED_SIGN: "centred sign",
    RANDOM_ROTATION: "random rotation",
    ITQ: "ITQ",
    H2Q: "H2Q",
}
#: Method keys -> (quantizer name, its options besides ``n_bits``, projection and seed).
_RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    SIGN: (SIGN, {}),
    _CENTRED_SIGN: (SIGN, {"center": True}),
    RANDOM_ROTATION: (RANDOM_ROTATION, {"center": True, "rescale": False}),
    ITQ: (ITQ, {"center": True}),
    H2Q: (H2Q, {"center": True}),
}
_TIES = ("id", "float", "rescored")


def baseline_quantizers(
    n_bits: int | None = None,
    *,
    pca: bool = False,
    seed: int = 0,
    methods: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Unfitted quantizers keyed by table name: sign, centred sign, random rotation, ITQ, H2Q.

    With ``pca=True`` every method projects to ``n_bits`` principal components first. PCA
    centres, so sign and centred sign then coincide: the sign row is named ``"PCA sign"``
    and centred sign is left out (asking for it is an error). ``methods`` picks keys of
    :data:`UNSUPERVISED_METHODS` (default: all, in that order).
    """
    chosen = tuple(UNSUPERVISED_METHODS) if methods is None else tuple(methods)
    unknown = [m for m in chosen if m not in _RECIPES]
    if unknown or not chosen:
        raise ValueError(
            f"unknown method(s) {unknown or list(chosen)}; choose among "
            f"{', '.join(UNSUPERVISED_METHODS)}."
        )
    if pca:
        if methods is not None and _CENTRED_SIGN in chosen:
            raise ValueError(
                "centred sign is the same as sign after PCA (PCA centres); drop centred-sign, "
                "or use every dimension (no PCA) to compare raw and centred sign."
            )
        chosen = tuple(m for m in chosen if m != _CENTRED_SIGN)
    names = {**UNSUPERVISED_METHODS, SIGN: "PCA sign"} if pca else UNSUPERVISED_METHODS
    return {names[m]: _make(m, n_bits, "pca" if pca else None, seed) for m in chosen}


def _make(method: str, n_bits: int | None, projection: str | None, seed: int) -> Any:
    """The unfitted quantizer of a method key (the seed goes to those that have one)."""
    name, options = _RECIPES[method]
    seeded = {} if name == SIGN else {"random_state": seed}
    return make_quantizer(name, n_bits, projection=projection, **options, **seeded)


@dataclass
class RecallRow:
    """Recall of one method: ``recall[f"R@{k} {tie}"]`` in [0, 1], tie in id/float/rescored."""

    method: str
    quantizer: str
    n_bits: int
    fit_time_s: float
    recall: dict[str, float] = field(default_factory=dict)


@dataclass
class RecallResult:
    """The table of :func:`evaluate_recall` and the conventions that produced it."""

    rows: list[RecallRow]
    ks: tuple[int, ...]
    rescore: int
    metric: str
    n_fit: int
    n_queries: int
    n_database: int
    asymmetric: bool = False

    def columns(self) -> list[str]:
        """Keys of ``RecallRow.recall`` (``"R@10 ties by id"``, ...), in table order."""
        ties = (*_TIES, "asymmetric") if self.asymmetric else _TIES
        return [_column(k, tie) for k in self.ks for tie in ties]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the settings and rows."""
        return {
            "metric": self.metric,
            "ks": list(self.ks),
            "rescore": self.rescore,
            "asymmetric": self.asymmetric,
            "truth": f"exact float top-k by {_METRIC_NAMES[self.metric]}, ties by id",
            "n_fit": self.n_fit,
            "n_queries": self.n_queries,
            "n_database": self.n_database,
            "rows": [asdict(row) for row in self.rows],
        }


_METRIC_NAMES = {"ip": "inner product", "l2": "squared L2 distance"}
_ASYMMETRIC_NOTE = "; asymmetric: the float query scored against the codes (RaBitQ's estimator)"


def _column(k: int, tie: str) -> str:
    return f"R@{k} {tie}" if tie in ("rescored", "asymmetric") else f"R@{k} ties by {tie}"


def _headers(result: RecallResult) -> list[str]:
    return [c.replace("rescored", f"rescored top-{result.rescore}") for c in result.columns()]


def evaluate_recall(
    quantizers: Mapping[str, Any],
    X_fit: ArrayLike,
    X_val: ArrayLike | None,
    X_query: ArrayLike,
    X_db: ArrayLike,
    *,
    ks: tuple[int, ...] = (10, 100),
    rescore_size: int = 100,
    metric: Literal["ip", "l2"] = "ip",
    asymmetric: bool = False,
) -> RecallResult:
    """Fit each quantizer on ``X_fit`` and score recall@k of the exact float neighbours.

    Parameters
    ----------
    quantizers : mapping of str to quantizer
        Unfitted quantizers keyed by table name (e.g. :func:`baseline_quantizers`); fitted in
        place.
    X_fit : array of shape (n_fit, d), float
    X_val : array of shape (n_val, d), float, or None
        Passed to ``fit`` of quantizers that select iterates (H²Q).
    X_query : array of shape (n_queries, d), float
    X_db : array of shape (n_db, d), float
    ks : tuple of int, default (10, 100)
        Cut-offs; each is lowered to ``n_db`` when larger (duplicates dropped).
    rescore_size : int, default 100
        Shortlist length ``R`` of the rescored column, ``>= max(ks)``; lowered to ``n_db``.
    metric : {"ip", "l2"}, default "ip"
        Score of the exact neighbours and of rescoring.
    asymmetric : bool, default False
        Add the ``R@k asymmetric`` columns: the float queries scored against the codes by
        :class:`h2q.AsymmetricIndex` (same ``metric``, default options).

    Returns
    -------
    RecallResult
    """
    if not isinstance(quantizers, Mapping) or not quantizers:
        raise ValueError("quantizers must be a non-empty dict of name -> quantizer.")
    if metric not in _METRIC_NAMES:
        raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}.")
    X_fit = check_embeddings(X_fit, "X_fit", allow_torch=False)
    width = X_fit.shape[1]
    X_query = _same_width(X_query, "X_query", width)
    X_db = _same_width(X_db, "X_db", width)
    if X_val is not None:
        X_val = _same_width(X_val, "X_val", width)
    n_db = len(X_db)
    ks = tuple(sorted({min(check_positive_int(k, "k"), n_db) for k in ks}))
    if not ks:
        raise ValueError("ks must list at least one cut-off, e.g. (10, 100).")
    R = min(check_positive_int(rescore_size, "rescore"), n_db)
    if R < ks[-1]:
        raise ValueError(f"rescore={rescore_size} is smaller than k={ks[-1]}; pass rescore >= k.")
    _, truth = exact_neighbors(X_query, X_db, ks[-1], metric=metric)
    rows = []
    for name, quantizer in quantizers.items():
        start = time.perf_counter()
        quantizer.fit(X_fit, X_val=X_val)
        fit_time = time.perf_counter() - start
        q_codes, db_codes = quantizer.encode(X_query), quantizer.encode(X_db)
        ranked = {
            "id": rank_database(q_codes, db_codes, max(R, ks[-1]))[1],
            "float": rank_database(
                q_codes, db_codes, ks[-1], query_features=X_query, db_features=X_db
            )[1],
        }
        ranked["rescored"] = rescore(ranked["id"][:, :R], X_query, X_db, ks[-1], metric)[1]
        if asymmetric:
            index = AsymmetricIndex(quantizer, metric)
            index.add(X_db)
            ranked["asymmetric"] = index.search(X_query, ks[-1])[1]
        recall = {
            _column(k, tie): recall_at_k(ranked[tie], k=k, true_neighbors=truth)
            for k in ks
            for tie in ranked
        }
        rows.append(
            RecallRow(str(name), type(quantizer).__name__, int(quantizer.n_bits_), fit_time, recall)
        )
    return RecallResult(rows, ks, R, metric, len(X_fit), len(X_query), n_db, bool(asymmetric))


def _same_width(X: ArrayLike, name: str, width: int) -> np.ndarray:
    X = check_embeddings(X, name, allow_torch=False)
    if X.shape[1] != width:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but X_fit has {width}. Pass every fold from the "
            "same embedding model."
        )
    return X


def render_recall_markdown(result: RecallResult, *, digits: int = 2) -> str:
    """The result as a Markdown table (recall x100), one row per method, with a caption."""
    headers = _headers(result)
    lines = [
        "| method | bits | " + " | ".join(f"{h} x100" for h in headers) + " | fit time (s) |",
        "|:---|---:|" + "---:|" * (len(headers) + 1),
    ]
    for row in result.rows:
        cells = [f"{100 * row.recall[c]:.{digits}f}" for c in result.columns()]
        lines.append(
            f"| {row.method} | {row.n_bits} | " + " | ".join(cells) + f" | {row.fit_time_s:.2f} |"
        )
    caption = (
        f"Recall@k of the exact float top-k by {_METRIC_NAMES[result.metric]}. Hamming ties by "
        f"database id, or by the cosine of the float vectors; rescored: the Hamming top "
        f"{result.rescore} re-ordered by the exact float score"
        + (_ASYMMETRIC_NOTE if result.asymmetric else "")
        + f". {result.n_queries} queries, "
        f"{result.n_database} database items, quantizers fitted on {result.n_fit} items."
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def render_recall_csv(result: RecallResult) -> str:
    """The result as CSV: recall as fractions in [0, 1] at full precision."""
    headers = _headers(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "bits", *headers, "fit time (s)"])
    for row in result.rows:
        values = [repr(row.recall[c]) for c in result.columns()]
        fit = repr(row.fit_time_s) if math.isfinite(row.fit_time_s) else "nan"
        writer.writerow([row.method, row.n_bits, *values, fit])
    return buffer.getvalue()
