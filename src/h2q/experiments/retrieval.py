"""Retrieval you can see: the top results of a few fixed queries under λ = 0, H²Q and +λ.

For one representative cell of a finished grid (the first method at the bit length of the
precision-recall figures, :attr:`GridConfig.figure_bits`, and the first seed), this module
ranks the database for :data:`N_QUERIES` fixed queries under each of :data:`STRATEGIES` that
the grid scored, keeps the top :data:`TOP` results and marks the wrong ones (a result is
wrong when it shares no label with the query). The queries are evenly spaced rows of the
query fold (:func:`pick_queries`), so they are the same for every strategy and every call.

The ranking is the grid's own: the cell's saved quantizer encodes the embeddings of the
stage-1 run the cell read (the λ = 0 run for λ = 0 and H²Q, the chosen λ's run for +λ), and
:func:`h2q.search.iter_rank_database` (the scan of ``rank_database`` and of the evaluation)
orders the database by Hamming distance, ties by the squared distance of the L2-normalised
transformed features (when the grid breaks ties so), then by database id. Embedding rows
map to data-set items through the run's ``split.npz``.

Image data sets give one figure (:func:`plot_retrieval`): per query one row per strategy,
the query image first, then the results framed green (relevant) or red (wrong). Text data
sets give a Markdown table per query (:func:`retrieval_markdown`). :func:`write_retrieval`
writes them and returns the report's section; a grid whose files do not allow it (an old
folder without ``split.npz``, deleted embeddings, a data set that is not installed) gets a
one-line note instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import FileFormatError
from ..losses import PENALTY
from .config import GridConfig
from .records import CellRecord
from .rows import BASELINE, H2Q_L2, row_label

__all__ = [
    "N_QUERIES",
    "STRATEGIES",
    "TOP",
    "RetrievalSection",
    "StrategyResults",
    "pick_queries",
    "plot_retrieval",
    "representative_cell",
    "retrieval_markdown",
    "strategy_results",
    "top_results",
    "write_retrieval",
]

#: Rows shown, in this order (those the grid did not score are left out).
STRATEGIES = (BASELINE, H2Q_L2, PENALTY)
#: Queries shown per data set.
N_QUERIES = 4
#: Results shown per query.
TOP = 10
#: Side, in pixels, of images read from files (in-memory images are shown as stored).
_IMAGE_SIZE = 64
_TEXT_CHARS = 70


@dataclass(frozen=True)
class StrategyResults:
    """The top results of the fixed queries under one strategy (row) of one cell.

    Attributes
    ----------
    row : str
        Row key (:data:`h2q.experiments.rows.ROW_BY_KEY`).
    query_rows : numpy.ndarray of shape (n_queries,), int64
        Rows of the query fold.
    query_ids : numpy.ndarray of shape (n_queries,), int64
        The same queries as positions in the data set.
    result_rows : numpy.ndarray of shape (n_queries, top), int64
        Rows of the database fold, in ranking order.
    result_ids : numpy.ndarray of shape (n_queries, top), int64
        The same results as positions in the data set.
    wrong : numpy.ndarray of shape (n_queries, top), bool
        True where a result shares no label with its query.
    """

    row: str
    query_rows: np.ndarray
    query_ids: np.ndarray
    result_rows: np.ndarray
    result_ids: np.ndarray
    wrong: np.ndarray

    @property
    def label(self) -> str:
        return row_label(self.row)


@dataclass
class RetrievalSection:
    """What :func:`write_retrieval` returns: the report's lines and the files written."""

    lines: list[str]
    files: dict[str, Path] = field(default_factory=dict)


def pick_queries(n_query: int, n: int = N_QUERIES) -> np.ndarray:
    """``n`` evenly spaced rows of a query fold of ``n_query`` items (first and last included).

    Returns
    -------
    numpy.ndarray of shape (min(n, n_query),), int64
    """
    if n_query < 1:
        raise ValueError("the query fold is empty; there is no query to show.")
    return np.unique(np.linspace(0, n_query - 1, min(n, n_query)).round().astype(np.int64))


def top_results(
    quantizer: Any,
    X_query: np.ndarray,
    X_db: np.ndarray,
    top: int = TOP,
    *,
    tie_break: bool = True,
) -> np.ndarray:
    """Database rows of the ``top`` best results of each query, as the grid's evaluation ranks.

    Parameters
    ----------
    quantizer : fitted quantizer
    X_query : numpy.ndarray of shape (n_queries, n_features)
    X_db : numpy.ndarray of shape (n_db, n_features)
    top : int
    tie_break : bool
        Break Hamming ties by the transformed features (as :func:`evaluate_quantizers`).

    Returns
    -------
    numpy.ndarray of shape (n_queries, min(top, n_db)), int64
    """
    from ..search import iter_rank_database

    features = {}
    if tie_break:
        features = {
            "query_features": np.asarray(quantizer.transform(X_query)),
            "db_features": np.asarray(quantizer.transform(X_db)),
        }
    top = min(top, len(X_db))
    chunks = iter_rank_database(quantizer.encode(X_query), quantizer.encode(X_db), top, **features)
    return np.concatenate([I for _, _, I in chunks])


def representative_cell(
    config: GridConfig, records: Sequence[CellRecord]
) -> tuple[str, int, int] | None:
    """``(method, bits, seed)`` of the cell shown: the first method at the precision-recall
    figure's bit length (else the middle one), first seed; None when no shown row was scored."""
    bits = config.figure_bits
    if bits not in config.bits:
        bits = config.bits[len(config.bits) // 2]
    scored = {(r.method, r.n_bits, r.seed) for r in records if r.row in STRATEGIES}
    for method in config.methods:
        for seed in config.seeds:
            if (method, bits, seed) in scored:
                return method, bits, seed
    return None


def strategy_results(
    out_dir: str | os.PathLike,
    record: CellRecord,
    y: np.ndarray,
    *,
    n_queries: int = N_QUERIES,
    top: int = TOP,
    tie_break: bool = True,
) -> StrategyResults:
    """Rank the fixed queries of one cell, from the grid's files.

    Parameters
    ----------
    out_dir : path-like
        The grid's results folder.
    record : CellRecord
        The cell (its quantizer file and stage-1 run are read).
    y : numpy.ndarray of shape (n_samples,) or (n_samples, n_classes)
        The data set's labels (to check the split belongs to it).

    Raises
    ------
    FileNotFoundError, h2q.exceptions.FileFormatError, ValueError
        When a file is missing or damaged, or the run's files disagree with the data set.
    """
    from ..data import Split
    from ..embeddings import load_embeddings
    from ..labels import share_label
    from ..quantizers import load_quantizer

    out = Path(out_dir)
    quantizer = load_quantizer((out / "cells" / record.cell.relpath).with_suffix(".quantizer.npz"))
    run_dir = out / "runs" / record.stage1_run
    emb = load_embeddings(
        run_dir / "embeddings.npz", required=("query", "y_query", "database", "y_database")
    )
    split = Split.load(run_dir / "split.npz", y)
    if len(split.query) != len(emb.query) or len(split.database) != len(emb.database):
        raise ValueError(f"{run_dir}: split.npz and embeddings.npz have folds of other sizes.")
    rows = pick_queries(len(emb.query), n_queries)
    result_rows = top_results(quantizer, emb.query[rows], emb.database, top, tie_break=tie_break)
    y_q, y_db = emb.y_query[rows], emb.y_database
    wrong = np.stack([~share_label(y_q[i : i + 1], y_db[r])[0] for i, r in enumerate(result_rows)])
    return StrategyResults(
        row=record.row,
        query_rows=rows,
        query_ids=split.query[rows],
        result_rows=result_rows,
        result_ids=split.database[result_rows],
        wrong=wrong,
    )


def _class_text(data: Any, index: int) -> str:
    label = data.y[index]
    if np.ndim(label) == 0:
        return str(data.class_names[int(label)])
    return ", ".join(data.class_names[j] for j in np.flatnonzero(label)) or "no label"


def _show(ax: Any, image: np.ndarray) -> None:
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _frame(ax: Any, colour: str) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)


def plot_retrieval(
    results: Sequence[StrategyResults], data: Any, path: str | os.PathLike, title: str
) -> Path:
    """One PNG: per query, one row per strategy: the query, then its results framed green
    (relevant) or red (wrong), written atomically.

    Parameters
    ----------
    results : sequence of StrategyResults
        Same queries in each.
    data : h2q.data.Dataset
        An image data set (``kind`` ``"image"`` or ``"image_paths"``).
    path : path-like
    title : str
    """
    from .plots import _figure, _save

    n_q, top = results[0].result_ids.shape
    n_rows = n_q * len(results)
    fig = _figure(1.0 * (top + 1) + 1.4, 1.05 * n_rows + 0.6)
    axes = fig.subplots(n_rows, top + 1, squeeze=False)
    for q in range(n_q):
        query_image = data.images(results[0].query_ids[q : q + 1], _IMAGE_SIZE)[0]
        for s, res in enumerate(results):
            row = axes[q * len(results) + s]
            _show(row[0], query_image)
            _frame(row[0], "black")
            n_wrong = int(res.wrong[q].sum())
            row[0].set_ylabel(f"{res.label}\n{n_wrong} wrong", fontsize=8)
            if s == 0:
                row[0].set_title(f"query: {_class_text(data, res.query_ids[q])}", fontsize=8)
            images = data.images(res.result_ids[q], _IMAGE_SIZE)
            for j in range(top):
                _show(row[j + 1], images[j])
                _frame(row[j + 1], "red" if res.wrong[q, j] else "green")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return Path(path)


def _cell_text(text: str) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= _TEXT_CHARS else text[: _TEXT_CHARS - 1] + "…"


def retrieval_markdown(results: Sequence[StrategyResults], data: Any) -> str:
    """Per query, a Markdown table of its top results under each strategy (text data sets).

    A wrong result (no label shared with the query) is marked ✗, a relevant one ✓.
    """
    lines: list[str] = []
    n_q, top = results[0].result_ids.shape
    for q in range(n_q):
        qid = int(results[0].query_ids[q])
        lines += [
            f"Query {q + 1} ({_class_text(data, qid)}): {_cell_text(data.X[qid])}",
            "",
            "| rank | " + " | ".join(r.label for r in results) + " |",
            "|---:|" + "---|" * len(results),
        ]
        for j in range(top):
            cells = [
                f"{'✗' if r.wrong[q, j] else '✓'} {_cell_text(data.X[int(r.result_ids[q, j])])}"
                for r in results
            ]
            lines.append(f"| {j + 1} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_retrieval(
    config: GridConfig,
    records: Sequence[CellRecord],
    out_dir: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    data: Any = None,
) -> RetrievalSection:
    """Write the retrieval figure of the representative cell; return the report's section.

    Parameters
    ----------
    config, records : GridConfig, sequence of CellRecord
        The grid and its finished cells.
    out_dir : path-like
        The grid's results folder; the figure goes to ``plots/retrieval_<method>_<bits>bits.png``.
    root : path-like, optional
        Data folder for :func:`h2q.data.load_dataset`.
    data : h2q.data.Dataset, optional
        The data set, already loaded.

    Returns
    -------
    RetrievalSection
        With a one-line note and no file when the grid's files do not allow the figure.
    """
    head = ["## Retrieval you can see", ""]
    cell = representative_cell(config, records)
    if cell is None:
        return RetrievalSection(head + ["Not shown: no λ = 0, H²Q or +λ cell was scored.", ""])
    method, bits, seed = cell
    chosen = {(r.method, r.row, r.n_bits, r.seed): r for r in records}
    shown = [chosen.get((method, row, bits, seed)) for row in STRATEGIES]
    shown = [r for r in shown if r is not None]
    try:
        if data is None:
            from ..data import load_dataset

            data = load_dataset(config.train.dataset, root)
        results = [strategy_results(out_dir, r, data.y, tie_break=config.tie_break) for r in shown]
    except (OSError, FileFormatError, ValueError, KeyError) as exc:
        return RetrievalSection(head + [f"Not shown: {exc}", ""])
    what = (
        f"{method.upper()}, {bits} bits, seed {seed}: the top {results[0].wrong.shape[1]} "
        f"database items of {len(results[0].query_ids)} fixed queries (evenly spaced rows of "
        "the query fold), ranked as in the mAP table; a result is wrong when it shares no "
        "label with its query."
    )
    if data.kind == "text":
        body = [what + " ✗ wrong, ✓ relevant.", "", retrieval_markdown(results, data)]
        return RetrievalSection(head + body)
    name = f"retrieval_{method}_{bits}bits.png"
    title = f"{config.train.dataset}: {method.upper()}, {bits} bits, seed {seed}"
    path = plot_retrieval(results, data, Path(out_dir) / "plots" / name, title)
    body = [what + " Red frame: wrong; green: relevant.", "", f"![retrieval](plots/{name})", ""]
    return RetrievalSection(head + body, {f"plots/{name}": path})
