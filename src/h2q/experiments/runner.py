"""The work of a grid: train a stage-1 run, score a cell, and the runner that does both.

:class:`Runner` computes cells one at a time: it trains (or resumes) the stage-1 runs a cell
needs, picks the "+lambda" run with the best validation mAP, fits the cell's stage-2
quantizer, scores it with :func:`h2q.evaluation.evaluate_quantizers` and writes the cell's
file. :func:`_train_stage1` and :func:`_evaluate_cell` are module-level so that tests can
count or replace them. Used by :mod:`h2q.experiments.grid` (in this process) and
:mod:`h2q.experiments.parallel` (in worker processes).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._threads import thread_limit
from ..embeddings import EmbeddingFolds, load_embeddings
from ..losses import PENALTY
from ..training.config import TrainConfig
from ..training.environment import RunEnvironment
from .config import GridConfig
from .records import Cell, CellRecord, Stage1Run, read_json, write_json
from .rows import ROW_BY_KEY, lambda_grid
from .stage1 import Stage1Summary

__all__ = [
    "FAILED_FILE",
    "Runner",
    "run_done",
    "runs_for",
    "stage1_config",
]

if TYPE_CHECKING:
    from ..training.run import RunResult

logger = logging.getLogger(__name__)

_DONE_FILES = ("embeddings.npz", "summary.json")
#: The file a stage-1 run that diverged holds instead of its results.
FAILED_FILE = "failed.json"
#: Torch threads for stage 2. Note: its tensors are tiny (k x k rotations, k <= a few hundred),
#: and with several intra-op threads on a busy machine each small op waits for the others
#: (measured here: an H²Q fit on 1,000 x 16 took 0.9 s wall with 1 thread, 31 s with 2).
_STAGE2_THREADS = 1


def runs_for(config: GridConfig, cell: Cell) -> list[Stage1Run]:
    """The stage-1 runs a cell reads (several for the "+lambda" row: one per lambda)."""
    strategy = ROW_BY_KEY[cell.row].stage1_strategy
    if strategy != PENALTY:
        return [Stage1Run(cell.method, strategy, None, cell.n_bits, cell.seed)]
    grid = lambda_grid(cell.method, config.lambda_grids)
    return [Stage1Run(cell.method, PENALTY, lam, cell.n_bits, cell.seed) for lam in grid]


def run_done(run_dir: Path) -> bool:
    """Whether the stage-1 run in ``run_dir`` is complete (embeddings and summary written)."""
    return all((run_dir / name).is_file() for name in _DONE_FILES)


def stage1_config(config: GridConfig, run: Stage1Run, dataset: str) -> TrainConfig:
    """The :class:`h2q.training.TrainConfig` of one stage-1 run of the grid: the grid's
    template (``config.train``) with the run's method, bits, strategy, lambda, seed and the
    method's ``loss_kwargs``; ``dataset`` is the loaded data set's name."""
    return config.train.replace(
        dataset=dataset,
        method=run.method,
        n_bits=run.n_bits,
        strategy=run.strategy,
        lam=run.lam,
        seed=run.seed,
        loss_kwargs=config.loss_kwargs(run.method),
    )


def _train_stage1(
    run: Stage1Run,
    run_dir: Path,
    config: GridConfig,
    data: Any,
    env: RunEnvironment,
    keep_checkpoints: bool = True,
) -> RunResult:
    """Train (or resume) one stage-1 run; return what it wrote (its summary and config)."""
    from ..training import run_training

    return run_training(
        stage1_config(config, run, data.name),
        run_dir,
        data=data,
        device=env.device,
        cache_dir=env.cache_dir,
        progress=False,  # the grid has one bar
        resume=run_dir.is_dir() and any(run_dir.iterdir()),
        keep_checkpoints=keep_checkpoints,
    )


def _evaluate_cell(cell: Cell, folds: EmbeddingFolds, config: GridConfig) -> tuple[Any, Any]:
    """Fit the cell's quantizer on the embeddings and score it; return (result, quantizer)."""
    from ..evaluation import evaluate_quantizers

    quantizer = ROW_BY_KEY[cell.row].make_quantizer(cell.seed, solver=config.h2q_solver)
    result = evaluate_quantizers(
        {cell.row: quantizer}, folds, k=config.k, tie_break=config.tie_break
    )
    return result, quantizer


# ----------------------------------------------------------------------------------------------
# The runner


class Runner:
    """Computes the cells of one grid in this process, training the stage-1 runs they need.

    Parameters
    ----------
    config : GridConfig
    out : Path
        The grid's results folder.
    env : RunEnvironment
        Data folder, device and feature cache of the stage-1 runs.
    bar : tqdm or an object with ``update(n)`` and ``set_description_str(text)``
        Progress of the whole grid.
    data : Dataset, optional
        The data set, already loaded (else loaded when a stage-1 run first needs it).
    keep_checkpoints : bool, default False
        Keep the checkpoints of finished stage-1 runs (only an unfinished run needs its own).
    """

    def __init__(
        self,
        config: GridConfig,
        out: Path,
        env: RunEnvironment,
        *,
        bar: Any,
        data: Any = None,
        keep_checkpoints: bool = False,
    ) -> None:
        self.config = config
        self.out = out
        self.env = env
        self.bar = bar
        self.keep_checkpoints = keep_checkpoints
        self._data: Any = data
        self._embeddings: dict[Stage1Run, EmbeddingFolds] = {}
        self.summaries: dict[Stage1Run, dict[str, Any]] = {}
        """``summary.json`` of each finished run this runner trained or read."""
        self.run_configs: dict[Stage1Run, dict[str, Any]] = {}
        """``config.json`` of each run this runner trained."""
        self.stage1: dict[Stage1Run, Stage1Summary] = {}
        """The same runs as the report shows them (summary and training history)."""
        self.records: dict[Cell, CellRecord] = {}
        """The cells computed by this runner (and its workers)."""
        self.failures: list[dict[str, str]] = []
        self.trained: list[str] = []
        self.computed: list[str] = []
        self.pending_runs: set[Stage1Run] = set()
        self.extracts = True  # the first stage-1 run of this runner may extract features

    @property
    def data(self) -> Any:
        if self._data is None:
            from ..data import load_dataset

            self._data = load_dataset(self.config.train.dataset, self.env.root)
        return self._data

    def release_data(self) -> None:
        """Drop the loaded data set (worker processes load their own copy)."""
        self._data = None

    def run_dir(self, run: Stage1Run) -> Path:
        return self.out / "runs" / run.relpath

    def ensure_run(self, run: Stage1Run) -> dict[str, Any] | None:
        """The run's summary, training it first if needed; None when it diverged."""
        if run in self.summaries:
            return self.summaries[run]
        run_dir = self.run_dir(run)
        if (run_dir / FAILED_FILE).is_file():
            return None
        if run_done(run_dir):  # trained by an earlier call or another process
            summary = read_json(run_dir / "summary.json")
            self.summaries[run] = summary
            self.stage1[run] = Stage1Summary.read(run, run_dir, summary)
            return summary
        return self._train(run, run_dir)

    def _train(self, run: Stage1Run, run_dir: Path) -> dict[str, Any] | None:
        """Train (or resume) a run; its summary, or None when it diverged."""
        first = not self.trained and self.extracts
        frozen = self.config.train.frozen
        note = " (extracts features if not cached)" if first and frozen else ""
        self.bar.set_description_str(f"stage 1: {run.describe()}{note}")
        logger.info("stage 1: training %s in %s", run.describe(), run_dir)
        start = time.perf_counter()
        try:
            result = _train_stage1(
                run, run_dir, self.config, self.data, self.env, self.keep_checkpoints
            )
        except FloatingPointError as exc:
            logger.warning("stage 1 run %s diverged: %s", run.describe(), exc)
            write_json(run_dir / FAILED_FILE, {"run": run.describe(), "reason": str(exc)})
            self.failures.append({"what": f"stage-1 run {run.describe()}", "reason": str(exc)})
            self._advance_run(run)
            return None
        self.trained.append(run.describe())
        logger.info("stage 1 %s done in %.1f s", run.describe(), time.perf_counter() - start)
        self._advance_run(run)
        self.summaries[run], self.run_configs[run] = result.summary, result.config
        self.stage1[run] = Stage1Summary.from_run(run, result.summary, result.train.history)
        return result.summary

    def _advance_run(self, run: Stage1Run) -> None:
        if run in self.pending_runs:
            self.pending_runs.discard(run)
            self.bar.update(1)

    def embeddings(self, run: Stage1Run) -> EmbeddingFolds:
        """The embeddings of a finished run (the last ones read are kept in memory)."""
        if run not in self._embeddings:
            self._embeddings = {}  # keep one set in memory at a time
            self._embeddings[run] = load_embeddings(
                self.run_dir(run) / "embeddings.npz",
                required=("train", "query", "y_query", "database", "y_database"),
            )
        return self._embeddings[run]

    def compute_cell(self, cell: Cell, settings: str) -> CellRecord | None:
        runs = runs_for(self.config, cell)
        summaries = {run: self.ensure_run(run) for run in runs}
        selection: dict[str, float | None] = {}
        chosen: Stage1Run | None = None
        best = -math.inf
        for run, summary in summaries.items():
            score = None if summary is None else summary.get("best_val_map")
            key = "none" if run.lam is None else f"{run.lam:g}"
            selection[key] = score
            if summary is None:
                continue
            value = -math.inf if score is None else float(score)
            if chosen is None or value > best:
                chosen, best = run, value
        if chosen is None:
            self.failures.append(
                {"what": f"cell {cell.describe()}", "reason": "every stage-1 run it needs diverged"}
            )
            return None
        self.bar.set_description_str(f"stage 2: {cell.describe()}")
        with thread_limit(_STAGE2_THREADS):
            result, quantizer = _evaluate_cell(cell, self.embeddings(chosen), self.config)
        record = CellRecord(
            cell,
            result.rows[0],
            map_variant=result.map_variant,
            k=result.k,
            stage1_run=chosen.relpath.as_posix(),
            lam=chosen.lam if cell.row == PENALTY else None,
            lambda_selection=selection if cell.row == PENALTY else {},
            n_queries=result.n_queries,
            n_database=result.n_database,
            n_train=result.n_train,
            settings=settings,
        )
        path = self.out / "cells" / cell.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        quantizer.save(path.with_suffix(".quantizer.npz"))
        write_json(path, record.to_dict())  # written last: its presence marks the cell done
        self.computed.append(cell.describe())
        self.records[cell] = record
        logger.info("cell %s: mAP@%d %.4f", cell.describe(), record.k, record.result.map_at_k)
        return record
