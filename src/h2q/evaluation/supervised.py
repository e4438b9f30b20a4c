"""Side-by-side evaluation of stage-2 quantizers on one set of embeddings (the paper's protocol).

:func:`evaluate_quantizers` fits each quantizer on the training embeddings (with the
validation fold for iterate selection; ``refit=False`` scores fitted quantizers as they are),
encodes the queries and the database, ranks the whole database for every query and scores
the ranking:

- ranking: by Hamming distance, ties broken by the squared Euclidean distance of the
  L2-normalised *transformed* features (``quantizer.transform``: rotated, and projected when
  the quantizer uses PCA), then by database id (the rule of :mod:`h2q.search`). With
  ``tie_break=False`` ties go by database id only;
- relevance: a database item is relevant to a query when they share at least one label;
- mAP@k with the paper's definition (top-k relevant denominator, a query with no relevant
  item in its top k scores 0 and counts), named by :func:`h2q.evaluation.metrics.variant_name`;
- mAP over the whole ranking (mAP@all, same conventions);
- mAP within Hamming radius r (the retrieved list is every item at distance <= r; a query
  with no relevant item there scores 0 and counts);
- precision@k;
- the mean L2 quantization loss ``mean((z' - sign z')^2)`` of the transformed validation
  embeddings (the query embeddings when there is no validation fold);
- the fit time, and precision-recall points by Hamming radius 0..n_bits.

Memory stays bounded: the database is ranked for a block of queries at a time, sized so that
the block's ranking and metric scratch stay near 2 GiB (measured: 2.3 GB peak RSS for 1,000
queries against 63,000 items with 80-class multi-hot labels), whatever the number of queries.
Fewer, larger blocks matter because each metric call re-derives the distinct database label
rows, which is slow for multi-hot labels.

The result renders as Markdown or CSV (:func:`render_markdown`, :func:`render_csv`),
serialises to JSON-ready dicts (:meth:`EvaluationResult.to_dict`), and plots as a
precision-recall figure (:func:`plot_precision_recall`, needs matplotlib).
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np

from .. import _io
from .._validation import (
    check_embeddings,
    check_labels,
    check_positive_int,
    check_same_width,
)
from ..codes import hamming_distances
from ..embeddings import EmbeddingFolds
from ..quantizers import BaseQuantizer
from ..search import iter_rank_database
from .metrics import (
    PrecisionRecallCurve,
    _ranking_scores,
    map_within_radius,
    mean_average_precision,
    precision_recall_curve,
    variant_name,
)

__all__ = [
    "EvaluationResult",
    "MethodResult",
    "ProgressCallback",
    "evaluate_quantizers",
    "plot_precision_recall",
    "render_csv",
    "render_markdown",
]

#: ``progress(method, stage, done, total)``: ``stage`` is ``"fit"`` (``done`` = iteration,
#: ``total`` = the planned number of iterations, or None when unknown) or ``"rank"``
#: (``done`` = queries ranked so far, ``total`` = number of queries).
ProgressCallback = Callable[[str, str, int, "int | None"], Any]

#: Bytes of ranking and metric scratch per block of queries (about 40 bytes per
#: (query, database item) pair are alive at once: ids, distances, sort order, AP scratch).
_BLOCK_BYTES = 1 << 31
_BYTES_PER_PAIR = 40
_MAX_BLOCK = 1024


@dataclass
class MethodResult:
    """The scores of one quantizer (one row of the table).

    Metric values are fractions in [0, 1] (multiply by 100 for the paper's tables).
    """

    method: str
    """The key of the quantizer in the dict passed to :func:`evaluate_quantizers`."""
    quantizer: str
    """Class name of the quantizer."""
    n_bits: int
    map_at_k: float
    """mAP@k (top-k relevant denominator; empty queries score 0)."""
    map_all: float
    """mAP over the whole ranked database (same conventions)."""
    map_radius: float
    """mAP within Hamming radius ``radius`` (empty queries score 0)."""
    precision_at_k: float
    quantization_loss: float
    """Mean L2 quantization loss of the transformed ``loss_fold`` embeddings."""
    fit_time_s: float
    pr_radius: list[int] = field(default_factory=list)
    pr_precision: list[float] = field(default_factory=list)
    """Mean precision within each radius (queries retrieving nothing are skipped; NaN where
    every query is skipped)."""
    pr_recall: list[float] = field(default_factory=list)
    ap_at_k: list[float] = field(default_factory=list)
    """AP@k of each query, in query order (their mean is ``map_at_k``); for intervals."""
    map_at_k_asymmetric: float = math.nan
    """mAP@k of the ranking by :class:`h2q.AsymmetricIndex` (the float query scored against
    the codes, inner product estimate); NaN when not asked for."""

    @property
    def pr_curve(self) -> PrecisionRecallCurve:
        """The precision-recall points as arrays (a missing value as NaN)."""
        return PrecisionRecallCurve(
            np.asarray(self.pr_radius, dtype=np.int64),
            _floats(self.pr_precision),
            _floats(self.pr_recall),
        )


@dataclass
class EvaluationResult:
    """The result table of :func:`evaluate_quantizers`, with the conventions that produced it."""

    rows: list[MethodResult]
    k: int
    """The mAP@k / precision@k cut-off actually used (``min(k, n_database)``)."""
    radius: int
    tie_break: bool
    loss_fold: str
    """``"val"`` or ``"query"``: the fold the quantization loss was measured on."""
    n_train: int
    n_queries: int
    n_database: int
    refit: bool = True
    """False when fitted quantizers were scored as they were (``n_train`` is then 0)."""

    @property
    def map_variant(self) -> str:
        """Name of the mAP@k variant, e.g. ``"mAP@5000 (top-k relevant denominator; ...)"``."""
        return variant_name(self.k)

    def columns(self) -> list[tuple[str, str]]:
        """``(header, MethodResult attribute)`` of each table column, in order."""
        return [
            ("method", "method"),
            ("bits", "n_bits"),
            (self.map_variant, "map_at_k"),
            (variant_name(None), "map_all"),
            (
                f"mAP@H<={self.radius} (retrieved relevant denominator; empty queries score 0)",
                "map_radius",
            ),
            (f"P@{self.k}", "precision_at_k"),
            *(
                [(f"{self.map_variant}, asymmetric scoring", "map_at_k_asymmetric")]
                if any(_finite(r.map_at_k_asymmetric) for r in self.rows)
                else []
            ),
            (f"quantization loss (l2, {self.loss_fold})", "quantization_loss"),
            ("fit time (s)", "fit_time_s"),
        ]

    def pr_curves(self) -> dict[str, PrecisionRecallCurve]:
        """Each row's precision-recall points, labelled ``"<method> (<bits> bits)"``."""
        return {f"{row.method} ({row.n_bits} bits)": row.pr_curve for row in self.rows}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None) with the settings, column names and rows."""
        out = {
            "map_variant": self.map_variant,
            "k": self.k,
            "radius": self.radius,
            "tie_break": self.tie_break,
            "ranking": (
                "Hamming distance, then squared Euclidean distance of the L2-normalised "
                "transformed features, then database id"
                if self.tie_break
                else "Hamming distance, then database id"
            ),
            "relevance": "share at least one label",
            "loss_fold": self.loss_fold,
            "n_train": self.n_train,
            "n_queries": self.n_queries,
            "n_database": self.n_database,
            "refit": self.refit,
            "columns": {attr: header for header, attr in self.columns()},
            "rows": [asdict(row) for row in self.rows],
        }
        return _nan_to_none(out)


def evaluate_quantizers(
    quantizers: Mapping[str, BaseQuantizer],
    folds: EmbeddingFolds,
    *,
    k: int = 5000,
    radius: int = 2,
    tie_break: bool = True,
    progress: ProgressCallback | None = None,
    refit: bool = True,
    asymmetric: bool = False,
) -> EvaluationResult:
    """Fit, encode, rank and score each quantizer with the paper's retrieval protocol.

    Parameters
    ----------
    quantizers : mapping of str to quantizer
        Quantizers (:class:`~h2q.quantizers.HouseholderQuantizer`,
        :class:`~h2q.quantizers.ITQQuantizer`, :class:`~h2q.quantizers.SignQuantizer`, ...),
        keyed by the name shown in the table. With ``refit=True`` each is fitted in place,
        so the caller can save it afterwards; with ``refit=False`` they must be fitted
        already and are scored as they are.
    folds : EmbeddingFolds
        The embeddings (:func:`h2q.load_embeddings` reads them from a file; or
        ``EmbeddingFolds(train=..., val=..., query=..., y_query=..., database=...,
        y_database=...)``), float arrays of shape (n_fold, n_features):

        - ``train``: the training embeddings (stage 2 uses no labels); may be None with
          ``refit=False``;
        - ``val`` (optional): validation embeddings, passed to ``fit`` (H²Q keeps the
          iterate with the lowest validation loss) and used for the reported quantization
          loss (the query embeddings when there are none);
        - ``query`` and ``database``, with their labels ``y_query`` and ``y_database``: class
          ids of shape (n,) or multi-hot rows of shape (n, n_classes), the same kind on both
          sides.
    k : int, default 5000
        Cut-off of mAP@k and precision@k (the paper uses 5000, and 1000 on ImageNet). A
        ``k`` larger than the database is lowered to its size; the result records the
        cut-off used.
    radius : int, default 2
        Hamming radius of the "mAP@H<=r" column.
    tie_break : bool, default True
        Break Hamming ties by the squared Euclidean distance of the L2-normalised transformed
        features (the paper's protocol; exact numbers depend on it). False breaks them by
        database id only, which is faster.
    progress : callable, optional
        ``progress(method, stage, done, total)``; see :data:`ProgressCallback`.
    refit : bool, default True
        Fit each quantizer on ``folds.train`` (and ``folds.val``) first. False scores fitted
        quantizers (e.g. loaded with :func:`~h2q.quantizers.load_quantizer`) without
        changing them; their fit time is reported as NaN.
    asymmetric : bool, default False
        Also score the ranking of :class:`h2q.AsymmetricIndex` (the float query against the
        codes, RaBitQ's inner-product estimate, default options): its mAP@k is the
        ``map_at_k_asymmetric`` column. The Hamming columns do not change.

    Returns
    -------
    EvaluationResult
        One :class:`MethodResult` per quantizer, in the order of ``quantizers``.

    Raises
    ------
    ValueError, TypeError
        On an empty ``quantizers``, missing folds, folds of different widths, labels that do
        not match their embeddings, a bad ``k`` or ``radius``, or (with ``refit=False``) a
        quantizer that is not fitted or was fitted on another width.
    """
    if not isinstance(quantizers, Mapping) or not quantizers:
        raise ValueError(
            "quantizers must be a non-empty dict of name -> quantizer, for example "
            "{'h2q': HouseholderQuantizer()}."
        )
    folds = _checked_folds(folds, refit)
    if not refit:
        _check_fitted_width(quantizers, folds.query.shape[1])
    scoring = _Scoring(
        k=min(check_positive_int(k, "k"), len(folds.database)),
        radius=check_positive_int(radius, "radius", minimum=0),
        tie_break=bool(tie_break),
        refit=bool(refit),
        progress=progress,
    )
    rows = []
    for name, quantizer in quantizers.items():
        rows.append(_evaluate_one(str(name), quantizer, folds, scoring))
        if asymmetric:
            rows[-1].map_at_k_asymmetric = _asymmetric_map(quantizer, folds, scoring.k)
    return EvaluationResult(
        rows=rows,
        k=scoring.k,
        radius=scoring.radius,
        tie_break=scoring.tie_break,
        loss_fold="query" if folds.val is None else "val",
        n_train=0 if folds.train is None else len(folds.train),
        n_queries=len(folds.query),
        n_database=len(folds.database),
        refit=scoring.refit,
    )


@dataclass(frozen=True)
class _Scoring:
    """The conventions every quantizer of one :func:`evaluate_quantizers` call is scored by."""

    k: int
    radius: int
    tie_break: bool
    refit: bool
    progress: ProgressCallback | None


def _checked_folds(folds: EmbeddingFolds, refit: bool) -> EmbeddingFolds:
    """The folds evaluation reads, validated: present, float, one width, labels that match."""
    if not isinstance(folds, EmbeddingFolds):
        raise TypeError(
            f"folds must be an h2q.EmbeddingFolds, got {type(folds).__name__}; build one with "
            "h2q.EmbeddingFolds(train=..., query=..., y_query=..., database=..., "
            "y_database=...), or read it with h2q.load_embeddings."
        )
    needed = ("train",) if refit else ()
    folds.require((*needed, "query", "y_query", "database", "y_database"))
    reference = "query" if folds.train is None else "train"
    X_ref = check_embeddings(folds.get(reference), reference, allow_torch=False)
    width = X_ref.shape[1]

    def same_width(name: str) -> np.ndarray | None:
        X = folds.get(name)
        return None if X is None else check_same_width(X, name, width, reference)

    query, database = same_width("query"), same_width("database")
    y_query = check_labels(folds.y_query, len(query), "y_query")
    y_db = check_labels(folds.y_database, len(database), "y_database")
    if y_query.ndim != y_db.ndim or (y_query.ndim == 2 and y_query.shape[1] != y_db.shape[1]):
        raise ValueError(
            f"y_query has shape {y_query.shape} and y_database has shape {y_db.shape}; use "
            "class ids on both sides or multi-hot rows over the same classes on both sides."
        )
    return EmbeddingFolds(
        train=same_width("train"),
        val=same_width("val"),
        query=query,
        database=database,
        y_query=y_query,
        y_database=y_db,
    )


def _check_fitted_width(quantizers: Mapping[str, BaseQuantizer], width: int) -> None:
    for name, quantizer in quantizers.items():
        fitted = getattr(quantizer, "n_features_in_", None)
        if fitted is None:
            raise ValueError(
                f"quantizer {name!r} is not fitted, but refit=False scores fitted quantizers. "
                "Fit it first, or pass refit=True."
            )
        if fitted != width:
            raise ValueError(
                f"quantizer {name!r} was fitted on {fitted} features, but the embeddings have "
                f"{width}. Pass embeddings from the same model, or refit."
            )


def _evaluate_one(
    name: str, quantizer: BaseQuantizer, folds: EmbeddingFolds, scoring: _Scoring
) -> MethodResult:
    progress, k = scoring.progress, scoring.k
    fit_time = (
        _fit(name, quantizer, folds.train, folds.val, progress) if scoring.refit else math.nan
    )
    X_query, y_query, X_db, y_db = folds.query, folds.y_query, folds.database, folds.y_database

    n_bits = int(quantizer.n_bits_)
    q_codes = quantizer.encode(X_query)
    db_codes = quantizer.encode(X_db)
    features: dict[str, np.ndarray] = {}
    if scoring.tie_break:
        features = {
            "query_features": np.asarray(quantizer.transform(X_query)),
            "db_features": np.asarray(quantizer.transform(X_db)),
        }

    n_q, n_db = len(X_query), len(X_db)
    block = max(1, min(_MAX_BLOCK, _BLOCK_BYTES // (_BYTES_PER_PAIR * n_db)))
    ap_k = np.empty(n_q)
    ap_all = np.empty(n_q)
    sum_p_at_k = 0.0
    sum_map_radius = 0.0
    radius = scoring.radius
    # chunk_size = block: every yielded chunk is one block of queries, ranked over the whole
    # database, so all ranking metrics come from a single scan.
    for rows, D, I in iter_rank_database(q_codes, db_codes, None, chunk_size=block, **features):
        yq = y_query[rows]
        n_rows = len(yq)
        ap_all[rows], ap_k[rows], p_at_k = _ranking_scores(I, yq, y_db, k, trusted=True)
        sum_p_at_k += p_at_k * n_rows
        # Score the radius metric on the shortest prefix that holds every item within the
        # radius plus one beyond it (D is sorted), so it is exact and nothing is cut off.
        width = min(n_db, int((D <= radius).sum(axis=1).max()) + 1)
        sum_map_radius += map_within_radius(D[:, :width], I[:, :width], yq, y_db, radius) * n_rows
        if progress is not None:
            progress(name, "rank", rows.stop, n_q)

    def distance_rows(start: int, stop: int) -> np.ndarray:
        return hamming_distances(q_codes[start:stop], db_codes)

    pr = precision_recall_curve(distance_rows, y_query, y_db, n_bits)
    X_loss = X_query if folds.val is None else folds.val
    return MethodResult(
        method=name,
        quantizer=type(quantizer).__name__,
        n_bits=n_bits,
        map_at_k=float(ap_k.mean()),
        map_all=float(ap_all.mean()),
        map_radius=sum_map_radius / n_q,
        precision_at_k=sum_p_at_k / n_q,
        quantization_loss=float(quantizer.quantization_loss(X_loss, "l2")),
        fit_time_s=fit_time,
        pr_radius=[int(r) for r in pr.radius],
        pr_precision=[float(p) for p in pr.precision],
        pr_recall=[float(r) for r in pr.recall],
        ap_at_k=ap_k.tolist(),
    )


def _asymmetric_map(quantizer: BaseQuantizer, folds: EmbeddingFolds, k: int) -> float:
    """mAP@k of the asymmetric ranking (inner-product estimate) of a fitted quantizer."""
    from ..search import AsymmetricIndex

    index = AsymmetricIndex(quantizer, "ip")
    index.add(folds.database)
    _, I = index.search(folds.query, k)
    return float(mean_average_precision(I, folds.y_query, folds.y_database, k))


def _fit(
    name: str,
    quantizer: BaseQuantizer,
    X_train: np.ndarray,
    X_val: np.ndarray | None,
    progress: ProgressCallback | None,
) -> float:
    """Fit ``quantizer`` (reporting progress when it takes a callback); return the seconds."""
    fit_kw: dict[str, Any] = {}
    if progress is not None and "callback" in inspect.signature(quantizer.fit).parameters:
        total = _planned_iterations(quantizer)

        def callback(iteration: int, train_loss: float, val_loss: float | None) -> bool:
            progress(name, "fit", int(iteration), total)
            return False

        fit_kw["callback"] = callback
    start = time.perf_counter()
    quantizer.fit(X_train, X_val=X_val, **fit_kw)
    return time.perf_counter() - start


def _planned_iterations(quantizer: BaseQuantizer) -> int | None:
    """Iterations a quantizer's fit will report through its callback, when known."""
    planned = getattr(quantizer, "planned_iterations", None)
    return planned() if callable(planned) else None


# ----------------------------------------------------------------------------------------------
# Rendering


def render_markdown(result: EvaluationResult, *, digits: int = 2) -> str:
    """The result as a Markdown table, one row per method.

    mAP and precision columns are shown x100 (as in the paper's tables), the quantization
    loss with 4 decimals and the fit time in seconds. The headers name every convention
    (the mAP variant, the radius, the loss fold); a caption line names the ranking rule.

    Parameters
    ----------
    result : EvaluationResult
    digits : int, default 2
        Decimals of the x100 columns.

    Returns
    -------
    str
        The table (ending with a newline).
    """
    columns = result.columns()
    headers = [f"{h} x100" if _is_score(attr) else h for h, attr in columns]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(":---" if attr == "method" else "---:" for _, attr in columns) + "|",
    ]
    for row in result.rows:
        cells = []
        for _, attr in columns:
            value = getattr(row, attr)
            if attr in ("method", "n_bits"):
                cells.append(str(value))
            elif _is_score(attr):
                cells.append(_fmt(100 * value, digits))
            elif attr == "quantization_loss":
                cells.append(_fmt(value, 4))
            else:
                cells.append(_fmt(value, 2))
        lines.append("| " + " | ".join(cells) + " |")
    tie = "squared L2 distance of normalised features" if result.tie_break else "database id"
    caption = (
        f"Ranking: Hamming distance, ties by {tie}. Relevance: at least one shared label. "
        f"{result.n_queries} queries, {result.n_database} database items, "
        + (
            f"{result.n_train} training embeddings."
            if result.refit
            else "quantizers scored as fitted (not refitted)."
        )
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def render_csv(result: EvaluationResult) -> str:
    """The result as CSV text: a header row naming every convention, then one row per method.

    Scores are fractions in [0, 1] at full precision (not x100).
    """
    columns = result.columns()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header for header, _ in columns])
    for row in result.rows:
        writer.writerow([_csv_value(getattr(row, attr)) for _, attr in columns])
    return buffer.getvalue()


def plot_precision_recall(
    curves: Mapping[str, PrecisionRecallCurve],
    path: str | os.PathLike | BinaryIO,
    *,
    title: str | None = None,
) -> None:
    """Write a PNG of precision-recall curves: one line per curve, a point per Hamming radius.

    Uses matplotlib's non-interactive Agg canvas, created here (no global backend switch).

    Parameters
    ----------
    curves : mapping of str to PrecisionRecallCurve
        Curves by legend label, e.g. :meth:`EvaluationResult.pr_curves`; points where the
        precision or the recall is NaN are left out.
    path : path or binary file object
        A path is written atomically; a file object (e.g. ``io.BytesIO``) receives the PNG.
    title : str, optional

    Raises
    ------
    ImportError
        When matplotlib is not installed (the ``plot`` extra).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "the precision-recall plot needs matplotlib, which is not installed. Install the "
            "extra (pip install 'h2q[plot]'), or skip the plot."
        ) from exc
    fig = Figure(figsize=(5.5, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, curve in curves.items():
        recall, precision = _floats(curve.recall), _floats(curve.precision)
        keep = np.isfinite(recall) & np.isfinite(precision)
        if keep.any():
            ax.plot(recall[keep], precision[keep], marker="o", markersize=3, label=label)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Precision-recall by Hamming radius")
    ax.legend(loc="best")
    fig.tight_layout()
    if hasattr(path, "write"):
        fig.savefig(path, format="png")
    else:
        _io.atomic_write(path, lambda handle: fig.savefig(handle, format="png"))


def _floats(values: Any) -> np.ndarray:
    """``values`` as float64 (None, as JSON writes NaN, becomes NaN)."""
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _is_score(attr: str) -> bool:
    return attr in ("map_at_k", "map_all", "map_radius", "precision_at_k")


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(x)


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "nan"


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    return value


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _nan_to_none(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(value) for value in obj]
    return obj
