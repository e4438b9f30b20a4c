"""The stage-1 runs of a grid as the report shows them: best validation mAP, epochs, time,
and the training curve, read from what each run wrote (``summary.json``, ``history.csv``).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import FileFormatError
from ..losses import PENALTY, STRATEGIES
from .config import GridConfig
from .records import CellRecord, Stage1Run, read_json
from .rows import ROW_BY_KEY, lambda_grid

if TYPE_CHECKING:
    from ..training.loop import EpochRecord

__all__ = ["Stage1Summary", "grid_runs", "read_history", "read_stage1_runs"]


@dataclass(frozen=True)
class Stage1Summary:
    """One finished stage-1 run of the grid."""

    run: Stage1Run
    best_val_map: float
    """Best validation mAP (fraction; NaN when the run was not validated)."""
    val_metric: str
    best_epoch: int | None
    epochs_run: int | None
    stopped_early: bool | None
    seconds: float
    """Wall time of the run (``summary.json``'s ``seconds.total``)."""
    epochs: tuple[int, ...] = field(default=())
    loss: tuple[float, ...] = field(default=())
    """Mean training loss of each epoch."""
    val_map: tuple[float, ...] = field(default=())
    """Validation mAP of each epoch (NaN where it was not evaluated)."""

    @classmethod
    def from_run(
        cls, run: Stage1Run, summary: Mapping[str, Any], history: Sequence[EpochRecord]
    ) -> Stage1Summary:
        """A run trained in this process: its summary and its training history."""
        return cls(
            run,
            **_summary_fields(summary),
            epochs=tuple(r.epoch for r in history),
            loss=tuple(r.loss for r in history),
            val_map=tuple(r.val_map for r in history),
        )

    @classmethod
    def read(cls, run: Stage1Run, run_dir: Path, summary: Mapping[str, Any]) -> Stage1Summary:
        """A finished run on disk, its ``summary.json`` already read: with ``history.csv``."""
        epochs, loss, val_map = read_history(run_dir / "history.csv")
        return cls(run, **_summary_fields(summary), epochs=epochs, loss=loss, val_map=val_map)


def _summary_fields(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "best_val_map": _float(summary.get("best_val_map")),
        "val_metric": str(summary.get("val_metric") or ""),
        "best_epoch": summary.get("best_epoch"),
        "epochs_run": summary.get("epochs_run"),
        "stopped_early": summary.get("stopped_early"),
        "seconds": _float((summary.get("seconds") or {}).get("total")),
    }


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def read_history(path: str | os.PathLike) -> tuple[tuple[int, ...], tuple[float, ...], tuple]:
    """``(epochs, loss, val_map)`` of a run's ``history.csv`` (empty tuples when missing)."""
    path = Path(path)
    if not path.is_file():
        return (), (), ()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    try:
        epochs = tuple(int(r["epoch"]) for r in rows)
    except (KeyError, ValueError) as exc:
        raise FileFormatError(f"{path} is not a training history ({exc}).") from exc
    return (
        epochs,
        tuple(_float(r.get("loss")) for r in rows),
        tuple(_float(r.get("val_map")) for r in rows),
    )


def _lam(key: str) -> float | None:
    return None if key == "none" else float(key)


def grid_runs(config: GridConfig, records: Sequence[CellRecord]) -> list[Stage1Run]:
    """The stage-1 runs the grid's finished cells read, in grid order: per (seed, method,
    bits) the lambda = 0 run, every "+lambda" run tried (from the cell's lambda selection),
    then the "+HSWD" run."""
    runs: set[Stage1Run] = set()
    for r in records:
        strategy = ROW_BY_KEY[r.row].stage1_strategy
        if strategy == PENALTY:
            runs.update(
                Stage1Run(r.method, PENALTY, _lam(key), r.n_bits, r.seed)
                for key in r.lambda_selection
            )
        else:
            runs.add(Stage1Run(r.method, strategy, None, r.n_bits, r.seed))

    def key(run: Stage1Run) -> tuple:
        grid = list(lambda_grid(run.method, config.lambda_grids))
        return (
            config.seeds.index(run.seed) if run.seed in config.seeds else len(config.seeds),
            config.methods.index(run.method) if run.method in config.methods else 0,
            run.n_bits,
            STRATEGIES.index(run.strategy),
            grid.index(run.lam) if run.lam in grid else len(grid),
        )

    return sorted(runs, key=key)


def read_stage1_runs(
    config: GridConfig,
    records: Sequence[CellRecord],
    out_dir: str | os.PathLike,
    known: Mapping[Stage1Run, Stage1Summary] | None = None,
) -> list[Stage1Summary]:
    """Every finished stage-1 run that the grid's cells read, in grid order (a run without
    ``summary.json`` is left out).

    Parameters
    ----------
    config : GridConfig
    records : sequence of CellRecord
        The grid's finished cells.
    out_dir : path-like
        The grid's results folder (runs in ``runs/``).
    known : mapping, optional
        Runs already in memory (:attr:`h2q.experiments.grid.GridResult.stage1`); the others
        are read from their folders.

    Returns
    -------
    list of Stage1Summary
    """
    known = known or {}
    out = []
    for run in grid_runs(config, records):
        if run in known:
            out.append(known[run])
            continue
        run_dir = Path(out_dir) / "runs" / run.relpath
        if (run_dir / "summary.json").is_file():
            out.append(Stage1Summary.read(run, run_dir, read_json(run_dir / "summary.json")))
    return out
