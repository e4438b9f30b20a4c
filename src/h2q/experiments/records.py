"""The units of a grid: stage-1 runs, stage-2 cells, and the record each cell leaves.

A *stage-1 run* is one trained embedding model, keyed by (method, strategy, lambda, bits,
seed); its folder (the :func:`h2q.training.run_training` layout) is cached on disk and shared
by every stage-2 variant that reads its embeddings. A *cell* is one entry of the result table
before averaging over seeds, keyed by (method, row, bits, seed); its result is one JSON file,
written atomically as soon as the cell is finished, so an interrupted grid resumes where it
stopped.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ..evaluation import MethodResult
from ..exceptions import FileFormatError
from ..losses import PENALTY

__all__ = ["Cell", "CellRecord", "Stage1Run", "read_json", "safe_name", "write_json"]

#: Format version of the cell files; another version is recomputed. 2: per-query AP@k.
CELL_FORMAT = 2


def _lam_tag(lam: float | None) -> str:
    return "none" if lam is None else f"{lam:g}"


def safe_name(name: str) -> str:
    """``name`` as a folder name: letters, digits, ``-`` and ``_`` kept, others as ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass(frozen=True)
class Stage1Run:
    """One stage-1 training run of the grid."""

    method: str
    strategy: str
    """A name of :data:`h2q.losses.STRATEGIES`."""
    lam: float | None
    n_bits: int
    seed: int

    @property
    def tag(self) -> str:
        """Strategy and lambda as a folder name (``lambda0``, ``penalty-lam0.1``, ...)."""
        if self.strategy == PENALTY:
            return f"{PENALTY}-lam{_lam_tag(self.lam)}"
        return self.strategy

    @property
    def relpath(self) -> Path:
        """Folder of the run, relative to the grid's ``runs/`` folder."""
        return Path(safe_name(self.method)) / self.tag / f"b{self.n_bits}" / f"s{self.seed}"

    def describe(self) -> str:
        """Short human-readable name, for progress bars and logs."""
        lam = "" if self.strategy != PENALTY else f" λ={_lam_tag(self.lam)}"
        return f"{self.method} {self.strategy}{lam} {self.n_bits}b s{self.seed}"


@dataclass(frozen=True)
class Cell:
    """One (method, row, bits, seed) entry of the grid."""

    method: str
    row: str
    """A key of :data:`h2q.experiments.rows.ROW_BY_KEY`."""
    n_bits: int
    seed: int

    @property
    def relpath(self) -> Path:
        """Result file of the cell, relative to the grid's ``cells/`` folder."""
        return Path(safe_name(self.method)) / self.row / f"b{self.n_bits}-s{self.seed}.json"

    def describe(self) -> str:
        """Short human-readable name, for progress bars and logs."""
        return f"{self.method} {self.row} {self.n_bits}b s{self.seed}"


#: Scores of a cell's :class:`~h2q.evaluation.MethodResult` that its file keeps, flat, in
#: file order. The file does not keep ``map_radius``, the quantizer's class name or
#: ``map_at_k_asymmetric``: a record read back from a file has NaN, "" and NaN there.
_KEPT_SCORES = ("map_at_k", "map_all", "precision_at_k", "quantization_loss", "fit_time_s")
_KEPT_CURVES = ("pr_radius", "pr_precision", "pr_recall", "ap_at_k")
_CELL_KEYS = ("method", "row", "n_bits", "seed")


@dataclass
class CellRecord:
    """What a finished cell stores: the cell, its quantizer's scores and where they came from.

    Scores are fractions in [0, 1]; tables multiply them by 100. The cell's file holds it flat
    (:meth:`to_dict`): the cell's keys, the kept scores of ``result`` and the other fields.
    """

    cell: Cell
    result: MethodResult
    """The scores of the cell's quantizer (:func:`h2q.evaluation.evaluate_quantizers`; its
    ``method`` is the row key): mAP@k (see ``map_variant``), mAP@all, precision@k, the mean
    L2 quantization loss of the validation embeddings after the cell's transform, the fit
    time, the precision-recall points and the AP@k of each query, in query order (their mean
    is ``map_at_k``: the unit of the bootstrap intervals of a one-seed grid)."""
    map_variant: str
    k: int
    stage1_run: str
    """Folder of the stage-1 run whose embeddings the cell used (relative to ``runs/``)."""
    lam: float | None = None
    """Chosen lambda of the "+lambda" row."""
    lambda_selection: dict[str, float | None] = field(default_factory=dict)
    """Validation mAP of each lambda tried (``"none"`` for a loss without penalty); None for a
    run that diverged."""
    n_queries: int = 0
    n_database: int = 0
    n_train: int = 0
    settings: str = ""
    """Hash of the settings that produced the cell; a cell of other settings is recomputed."""
    format: int = CELL_FORMAT

    @property
    def method(self) -> str:
        return self.cell.method

    @property
    def row(self) -> str:
        return self.cell.row

    @property
    def n_bits(self) -> int:
        return self.cell.n_bits

    @property
    def seed(self) -> int:
        return self.cell.seed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content, flat (NaN as None)."""
        result = self.result
        out: dict[str, Any] = {**asdict(self.cell)}
        out.update(map_at_k=result.map_at_k, map_variant=self.map_variant, k=self.k)
        out.update({name: getattr(result, name) for name in _KEPT_SCORES[1:]})
        out.update(stage1_run=self.stage1_run, lam=self.lam)
        out["lambda_selection"] = dict(self.lambda_selection)
        out.update({name: list(getattr(result, name)) for name in _KEPT_CURVES})
        for name in ("n_queries", "n_database", "n_train", "settings", "format"):
            out[name] = getattr(self, name)
        return _nan_to_none(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellRecord:
        """Inverse of :meth:`to_dict` (None scores read back as NaN).

        Raises
        ------
        ValueError
            When ``data`` lacks a key every cell file has.
        """
        missing = [k for k in (*_CELL_KEYS, "map_variant", "k", "stage1_run") if k not in data]
        if missing:
            raise ValueError(f"a cell record needs {missing}; the file holds {sorted(data)}.")
        cell = Cell(data["method"], data["row"], data["n_bits"], data["seed"])
        scores = {k: math.nan if data.get(k) is None else data[k] for k in _KEPT_SCORES}
        result = MethodResult(
            method=cell.row,
            quantizer="",
            n_bits=cell.n_bits,
            map_radius=math.nan,
            **scores,
            **{k: list(data.get(k) or []) for k in _KEPT_CURVES},
        )
        own = ("lam", "lambda_selection", "n_queries", "n_database", "n_train", "settings")
        values = {k: data[k] for k in (*own, "format") if k in data}
        return cls(cell, result, data["map_variant"], data["k"], data["stage1_run"], **values)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_nan_to_none(obj), indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a damaged file raises :class:`h2q.exceptions.FileFormatError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{path} is not valid JSON ({exc}); delete it to recompute.") from exc


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj
