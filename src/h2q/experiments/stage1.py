"""The stage-1 runs of a grid as the report shows them: best validation mAP, epochs, time,
and the training curve, read from what each run wrote (``summary.json``, ``history.csv``).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import FileFormatError
from .config import GridConfig
from .records import Stage1Run, read_json

__all__ = ["Stage1Summary", "read_history", "read_stage1_runs"]


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


def read_stage1_runs(config: GridConfig, out_dir: str | os.PathLike) -> list[Stage1Summary]:
    """Every finished stage-1 run of ``config``'s grid in ``out_dir``, in grid order.

    Runs that are missing, unfinished or diverged are left out.
    """
    from .grid import plan_cells
    from .runner import _run_done, _runs_for

    runs: list[Stage1Run] = []
    for cell in plan_cells(config):
        runs += [run for run in _runs_for(config, cell) if run not in runs]
    out = []
    for run in runs:
        run_dir = Path(out_dir) / "runs" / run.relpath
        if not _run_done(run_dir):
            continue
        summary = read_json(run_dir / "summary.json")
        epochs, loss, val_map = read_history(run_dir / "history.csv")
        out.append(
            Stage1Summary(
                run=run,
                best_val_map=_float(summary.get("best_val_map")),
                val_metric=str(summary.get("val_metric") or ""),
                best_epoch=summary.get("best_epoch"),
                epochs_run=summary.get("epochs_run"),
                stopped_early=summary.get("stopped_early"),
                seconds=_float((summary.get("seconds") or {}).get("total")),
                epochs=epochs,
                loss=loss,
                val_map=val_map,
            )
        )
    return out
