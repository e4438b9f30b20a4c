"""The grid runner: stage-1 runs and stage-2 cells of a reproduction, cached and resumable.

:func:`run_grid` walks the grid seed by seed, method by method, bit length by bit length:

1. the lambda = 0 stage-1 run, then the cells that read its embeddings: ``lambda0`` (sign),
   ``itq`` and the four ``h2q-*`` rows;
2. the "+lambda" runs (one per value of the method's lambda grid); the value with the best
   validation mAP (recorded by each run) is kept and its embeddings give the ``penalty`` cell;
3. the "+HSWD" run and its ``hswd`` cell.

Output folder (every file written atomically)::

    <out_dir>/
        grid.json                        the grid's settings; a folder holding results of
                                         other stage-1 or evaluation settings is refused
        runs/<method>/<strategy>/b<bits>/s<seed>/
                                         one stage-1 run (h2q.training.run_training layout:
                                         embeddings.npz, summary.json, ...); a run that
                                         diverged holds failed.json instead
        cells/<method>/<row>/b<bits>-s<seed>.json
                                         one finished cell (a CellRecord), plus the fitted
                                         quantizer beside it (.quantizer.npz)

Resuming: a stage-1 run with ``embeddings.npz`` and ``summary.json`` is reused, an unfinished
one continues from its last checkpoint, and a cell whose JSON file exists (with the same
settings) is skipped. So after an interruption, or after deleting one cell's file, running
the same grid again computes only what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._version import __version__
from ..exceptions import FileFormatError
from .config import STAGE1_STRATEGIES, GridConfig, lambda_grid, settings_hash
from .records import Cell, CellRecord, Stage1Run, read_json, write_json

__all__ = ["GridResult", "check_grid", "load_records", "plan_cells", "run_grid"]

logger = logging.getLogger(__name__)

_STAGE2_ON_LAMBDA0 = ("lambda0", "itq", "h2q-l2", "h2q-l1", "h2q-min_entry", "h2q-bit_var")
_DONE_FILES = ("embeddings.npz", "summary.json")
_FAILED = "failed.json"
#: Torch threads for stage 2. Note: its tensors are tiny (k x k rotations, k <= a few hundred),
#: and with several intra-op threads on a busy machine each small op waits for the others
#: (measured here: an H²Q fit on 1,000 x 16 took 0.9 s wall with 1 thread, 31 s with 2).
_STAGE2_THREADS = 1


@dataclass
class GridResult:
    """What :func:`run_grid` returns."""

    config: GridConfig
    out_dir: Path
    records: list[CellRecord]
    """Every finished cell of the grid (computed now or earlier), in grid order."""
    failures: list[dict[str, str]] = field(default_factory=list)
    """``{"what", "reason"}`` of each stage-1 run that diverged and each cell it left empty."""
    trained: list[str] = field(default_factory=list)
    """Stage-1 runs trained (or resumed) by this call."""
    computed: list[str] = field(default_factory=list)
    """Cells computed by this call."""
    seconds: float = 0.0
    """Wall time of this call."""
    info: dict[str, Any] = field(default_factory=dict)
    """Facts for the report: split sizes, backbone, feature extraction and training times."""


def plan_cells(config: GridConfig) -> list[Cell]:
    """Every cell of the grid, in the order :func:`run_grid` computes them."""
    cells = []
    for seed in config.seeds:
        for method in config.methods:
            for n_bits in config.bits:
                for row in config.row_keys:
                    cells.append(Cell(method, row, n_bits, seed))
    return sorted(cells, key=lambda c: _order(config, c))


def _order(config: GridConfig, cell: Cell) -> tuple[int, int, int, int]:
    groups = {row: 0 for row in _STAGE2_ON_LAMBDA0}
    groups.update(penalty=1, hswd=2)
    return (
        config.seeds.index(cell.seed),
        config.methods.index(cell.method),
        config.bits.index(cell.n_bits),
        groups[cell.row] * 10 + config.row_keys.index(cell.row),
    )


def _runs_for(config: GridConfig, cell: Cell) -> list[Stage1Run]:
    """The stage-1 runs a cell reads (several for the "+lambda" row: one per lambda)."""
    if cell.row in _STAGE2_ON_LAMBDA0:
        return [Stage1Run(cell.method, "lambda0", None, cell.n_bits, cell.seed)]
    if cell.row == "hswd":
        return [Stage1Run(cell.method, "hswd", None, cell.n_bits, cell.seed)]
    grid = lambda_grid(cell.method, config.lambda_grids)
    return [Stage1Run(cell.method, "penalty", lam, cell.n_bits, cell.seed) for lam in grid]


def _cell_settings(config: GridConfig, cell: Cell) -> str:
    settings: dict[str, Any] = {
        "stage1": config.stage1_settings(),
        "evaluation": config.evaluation_settings(),
    }
    if cell.row == "penalty":
        settings["lambda_grid"] = list(lambda_grid(cell.method, config.lambda_grids))
    return settings_hash(settings)


def _grid_identity(config: GridConfig) -> dict[str, Any]:
    return {"stage1": config.stage1_settings(), "evaluation": config.evaluation_settings()}


def check_grid(config: GridConfig, out_dir: str | os.PathLike) -> None:
    """Refuse a results folder that holds a grid of other stage-1 or evaluation settings.

    Methods, bits, seeds and rows may differ (the grid grows or shrinks); the settings that
    change what a cached run or cell means may not.

    Raises
    ------
    ValueError
        Naming the settings that differ and the fix.
    """
    path = Path(out_dir) / "grid.json"
    if not path.is_file():
        return
    old = read_json(path).get("identity", {})
    new = _grid_identity(config)
    diff = []
    for part in ("stage1", "evaluation"):
        before, after = old.get(part, {}), new[part]
        diff += [
            f"{k}: {before.get(k)!r} -> {after.get(k)!r}"
            for k in after
            if before.get(k) != after[k]
        ]
    if diff:
        raise ValueError(
            f"{out_dir} holds results of a grid with other settings ({'; '.join(diff)}). Use "
            "another --out folder, or delete that one to start over."
        )


def _read_record(path: Path, settings: str) -> CellRecord | None:
    if not path.is_file():
        return None
    try:
        record = CellRecord.from_dict(read_json(path))
    except (FileFormatError, TypeError, ValueError) as exc:
        logger.warning("unreadable cell file %s (%s); recomputing it", path, exc)
        return None
    if record.settings != settings or record.format != CellRecord.format:
        logger.info("cell file %s was made with other settings; recomputing it", path)
        return None
    return record


def load_records(config: GridConfig, out_dir: str | os.PathLike) -> list[CellRecord]:
    """The finished cells of ``config``'s grid found in ``out_dir`` (others are ignored)."""
    cells_dir = Path(out_dir) / "cells"
    records = []
    for cell in plan_cells(config):
        record = _read_record(cells_dir / cell.relpath, _cell_settings(config, cell))
        if record is not None:
            records.append(record)
    return records


def _run_done(run_dir: Path) -> bool:
    return all((run_dir / name).is_file() for name in _DONE_FILES)


# ----------------------------------------------------------------------------------------------
# The two units of work (module-level so tests can count or replace them)


def _train_stage1(
    run: Stage1Run,
    run_dir: Path,
    config: GridConfig,
    data: Any,
    *,
    device: str | None,
    cache_dir: str | os.PathLike | None,
) -> dict[str, Any]:
    """Train (or resume) one stage-1 run; return its ``summary.json`` content."""
    from ..training import run_training

    result = run_training(
        data,
        run.method,
        run.n_bits,
        strategy=run.strategy,
        lam=run.lam,
        backbone=config.backbone,
        out_dir=run_dir,
        frozen=config.frozen,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr_backbone=config.lr_backbone,
        lr_head=config.lr_head,
        weight_decay=config.weight_decay,
        patience=config.patience,
        eval_every=config.eval_every,
        val_k=config.val_k,
        device=device,
        seed=run.seed,
        image_size=config.image_size,
        hidden=config.hidden,
        max_database=config.max_database,
        cache_dir=cache_dir,
        progress=False,
        resume=True,
    )
    return result.summary


def make_stage2_quantizer(row: str, seed: int, solver: str = "gd") -> Any:
    """The stage-2 quantizer of a row: sign, ITQ, or H²Q with the row's loss.

    Parameters
    ----------
    row : str
        A key of :data:`h2q.experiments.config.ROWS`.
    seed : int
        ``random_state`` of ITQ's random start (and of H²Q's batch order with the paper's
        solver).
    solver : {"gd", "paper"}
        Solver of :class:`h2q.quantizers.HouseholderQuantizer`.

    Returns
    -------
    BaseQuantizer
        Unfitted.
    """
    from ..quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer

    if row in STAGE1_STRATEGIES:
        return SignQuantizer()
    if row == "itq":
        return ITQQuantizer(max_iter=50, random_state=seed)
    if row.startswith("h2q-"):
        return HouseholderQuantizer(loss=row[len("h2q-") :], solver=solver, random_state=seed)
    raise ValueError(f"unknown row {row!r}.")


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number
    (``None``: leave torch's setting)."""
    import torch

    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _evaluate_cell(
    cell: Cell, embeddings: dict[str, np.ndarray], config: GridConfig
) -> tuple[Any, Any]:
    """Fit the cell's quantizer on the embeddings and score it; return (result row, quantizer)."""
    from ..evaluation import evaluate_quantizers

    quantizer = make_stage2_quantizer(cell.row, cell.seed, config.h2q_solver)
    result = evaluate_quantizers(
        {cell.row: quantizer},
        embeddings["train"],
        embeddings.get("val"),
        embeddings["query"],
        embeddings["y_query"],
        embeddings["database"],
        embeddings["y_database"],
        k=config.k,
        tie_break=config.tie_break,
    )
    return result, quantizer


# ----------------------------------------------------------------------------------------------
# The runner


class _Runner:
    def __init__(
        self,
        config: GridConfig,
        out: Path,
        *,
        root: str | os.PathLike | None,
        device: str | None,
        cache_dir: str | os.PathLike | None,
        bar: Any,
    ) -> None:
        self.config = config
        self.out = out
        self.root = root
        self.device = device
        self.cache_dir = cache_dir
        self.bar = bar
        self._data: Any = None
        self._embeddings: dict[Stage1Run, dict[str, np.ndarray]] = {}
        self.failures: list[dict[str, str]] = []
        self.trained: list[str] = []
        self.computed: list[str] = []
        self.pending_runs: set[Stage1Run] = set()
        self.extracts = True  # the first stage-1 run of this runner may extract features

    @property
    def data(self) -> Any:
        if self._data is None:
            from ..data import load_dataset

            self._data = load_dataset(self.config.dataset, self.root)
        return self._data

    def run_dir(self, run: Stage1Run) -> Path:
        return self.out / "runs" / run.relpath

    def ensure_run(self, run: Stage1Run) -> dict[str, Any] | None:
        """The run's summary, training it first if needed; None when it diverged."""
        run_dir = self.run_dir(run)
        if (run_dir / _FAILED).is_file():
            return None
        if not _run_done(run_dir):
            first = not self.trained and self.extracts
            note = " (extracts features if not cached)" if first and self.config.frozen else ""
            self.bar.set_description_str(f"stage 1: {run.describe()}{note}")
            logger.info("stage 1: training %s in %s", run.describe(), run_dir)
            start = time.perf_counter()
            try:
                _train_stage1(
                    run,
                    run_dir,
                    self.config,
                    self.data,
                    device=self.device,
                    cache_dir=self.cache_dir,
                )
            except FloatingPointError as exc:
                logger.warning("stage 1 run %s diverged: %s", run.describe(), exc)
                write_json(run_dir / _FAILED, {"run": run.describe(), "reason": str(exc)})
                self.failures.append({"what": f"stage-1 run {run.describe()}", "reason": str(exc)})
                self._advance_run(run)
                return None
            self.trained.append(run.describe())
            logger.info("stage 1 %s done in %.1f s", run.describe(), time.perf_counter() - start)
            self._advance_run(run)
        return read_json(run_dir / "summary.json")

    def _advance_run(self, run: Stage1Run) -> None:
        if run in self.pending_runs:
            self.pending_runs.discard(run)
            self.bar.update(1)

    def embeddings(self, run: Stage1Run) -> dict[str, np.ndarray]:
        if run not in self._embeddings:
            from ..embeddings import load_embeddings

            self._embeddings = {}  # keep one set in memory at a time
            self._embeddings[run] = load_embeddings(
                self.run_dir(run) / "embeddings.npz",
                required=("train", "query", "y_query", "database", "y_database"),
            )
        return self._embeddings[run]

    def compute_cell(self, cell: Cell, settings: str) -> CellRecord | None:
        runs = _runs_for(self.config, cell)
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
        with _torch_threads(_STAGE2_THREADS):
            result, quantizer = _evaluate_cell(cell, self.embeddings(chosen), self.config)
        row = result.rows[0]
        record = CellRecord(
            method=cell.method,
            row=cell.row,
            n_bits=cell.n_bits,
            seed=cell.seed,
            map_at_k=row.map_at_k,
            map_variant=result.map_variant,
            k=result.k,
            map_all=row.map_all,
            precision_at_k=row.precision_at_k,
            quantization_loss=row.quantization_loss,
            fit_time_s=row.fit_time_s,
            stage1_run=chosen.relpath.as_posix(),
            lam=chosen.lam if cell.row == "penalty" else None,
            lambda_selection=selection if cell.row == "penalty" else {},
            pr_radius=list(row.pr_radius),
            pr_precision=list(row.pr_precision),
            pr_recall=list(row.pr_recall),
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
        logger.info("cell %s: mAP@%d %.4f", cell.describe(), record.k, record.map_at_k)
        return record


class _QueueBar:
    """Progress events of a worker process, sent to the parent's bar through a queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def update(self, n: int = 1) -> None:
        self.queue.put(("update", n))

    def set_description_str(self, text: str) -> None:
        self.queue.put(("describe", text))


_WORKER: dict[str, Any] = {}


def _init_worker(queue: Any, threads: int | None) -> None:
    """Initialiser of a worker process: its progress queue and torch thread count."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    _WORKER["queue"] = queue


def _work_group(payload: dict[str, Any]) -> dict[str, Any]:
    """Compute one (seed, method, bits) group of cells in a worker process."""
    runner = _Runner(
        payload["config"],
        payload["out"],
        root=payload["root"],
        device=payload["device"],
        cache_dir=payload["cache_dir"],
        bar=_QueueBar(_WORKER["queue"]),
    )
    runner.pending_runs = set(payload["runs"])
    runner.extracts = False  # the parent extracted them before starting the workers
    records = []
    for cell, settings in payload["cells"]:
        record = runner.compute_cell(cell, settings)
        runner.bar.update(1)
        if record is not None:
            records.append(record)
    return {
        "records": records,
        "failures": runner.failures,
        "trained": runner.trained,
        "computed": runner.computed,
    }


def run_grid(
    config: GridConfig,
    out_dir: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    jobs: int = 1,
    threads: int | None = 1,
    on_cell: Callable[[CellRecord], Any] | None = None,
) -> GridResult:
    """Run (or resume) a reproduction grid; every finished cell is written at once.

    Parameters
    ----------
    config : GridConfig
        The grid (see :func:`h2q.experiments.config.get_config`).
    out_dir : path-like
        Results folder (created); see the module docstring for its layout.
    root : path-like, optional
        Data folder for :func:`h2q.data.load_dataset`.
    device : str, optional
        Stage-1 device: ``"auto"``/None (CUDA when available), ``"cpu"``, ``"cuda"``.
        Stage 2 runs on the CPU, as in the paper.
    cache_dir : path-like, optional
        Root of the frozen-backbone feature cache (default
        :func:`h2q.features.default_cache_dir`).
    progress : bool, default True
        One tqdm bar over the whole grid (stage-1 runs and cells).
    jobs : int, default 1
        Worker processes. With more than one, the (seed, method, bits) groups run in
        parallel, each in its own process; the first stage-1 run of each seed runs first in
        this process, so frozen-backbone features are extracted (and cached) once.
    threads : int or None, default 1
        Torch intra-op threads in this process and in each worker while the grid runs (the
        previous setting is restored); None keeps torch's. Note: the networks and matrices of
        a grid are small, and on 2 cores one thread per process was the fastest measured
        setting: extracting EfficientNet-Lite0 features at 64 px ran at about 130 images/s
        with 1 thread and 45-50 images/s with 2, and more so on a busy machine.
    on_cell : callable, optional
        Called with each :class:`CellRecord` computed by this call.

    Returns
    -------
    GridResult

    Raises
    ------
    ValueError
        When ``out_dir`` holds a grid of other settings, or on bad settings.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}.")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}.")
    check_grid(config, out)
    if device is not None:
        from ..training import resolve_device

        resolve_device(device)  # fail early on an unavailable device
    _check_methods(config)

    cells = plan_cells(config)
    todo: list[tuple[Cell, str]] = []
    for cell in cells:
        settings = _cell_settings(config, cell)
        if _read_record(out / "cells" / cell.relpath, settings) is None:
            todo.append((cell, settings))
    needed_runs: list[Stage1Run] = []
    for cell, _ in todo:
        for run in _runs_for(config, cell):
            run_dir = out / "runs" / run.relpath
            if (
                run not in needed_runs
                and not _run_done(run_dir)
                and not (run_dir / _FAILED).is_file()
            ):
                needed_runs.append(run)
    all_runs = {run for cell in cells for run in _runs_for(config, cell)}
    total = len(all_runs) + len(cells)
    done = total - len(todo) - len(needed_runs)
    logger.info(
        "grid %s: %d cells (%d to compute), %d stage-1 runs (%d to train)",
        config.name,
        len(cells),
        len(todo),
        len(all_runs),
        len(needed_runs),
    )
    data = None
    if needed_runs:  # load now: a missing or unknown data set fails before anything is written
        from ..data import load_dataset

        data = load_dataset(config.dataset, root)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "grid.json",
        {
            "identity": _grid_identity(config),
            "config": config.to_dict(),
            "h2q_version": __version__,
        },
    )
    with (
        tqdm(total=total, initial=done, disable=not progress, desc="reproduce", unit="step") as bar,
        _torch_threads(threads),
    ):
        runner = _Runner(config, out, root=root, device=device, cache_dir=cache_dir, bar=bar)
        runner.pending_runs = set(needed_runs)
        runner._data = data
        groups = _groups(todo)
        if jobs == 1 or len(groups) <= 1:
            for group in groups:
                for cell, settings in group:
                    record = runner.compute_cell(cell, settings)
                    bar.update(1)
                    if record is not None and on_cell is not None:
                        on_cell(record)
        else:
            # The first run of each seed here, so that its features are extracted once.
            for seed in config.seeds:
                first = next((r for r in needed_runs if r.seed == seed), None)
                if first is not None:
                    runner.ensure_run(first)
            runner._data = data = None  # the workers load their own copy
            _run_parallel(runner, groups, jobs, threads, root, device, cache_dir, on_cell)
        bar.set_description_str("reproduce")
    records = load_records(config, out)
    return GridResult(
        config=config,
        out_dir=out,
        records=records,
        failures=runner.failures + _old_failures(config, out, runner.failures),
        trained=runner.trained,
        computed=runner.computed,
        seconds=time.perf_counter() - start,
        info=_collect_info(config, out),
    )


def _groups(todo: list[tuple[Cell, str]]) -> list[list[tuple[Cell, str]]]:
    """Pending cells grouped by (seed, method, bits), in grid order: a group shares its runs."""
    groups: dict[tuple[int, str, int], list[tuple[Cell, str]]] = {}
    for cell, settings in todo:
        groups.setdefault((cell.seed, cell.method, cell.n_bits), []).append((cell, settings))
    return list(groups.values())


def _run_parallel(
    runner: _Runner,
    groups: list[list[tuple[Cell, str]]],
    jobs: int,
    threads: int | None,
    root: str | os.PathLike | None,
    device: str | None,
    cache_dir: str | os.PathLike | None,
    on_cell: Callable[[CellRecord], Any] | None,
) -> None:
    """Compute the groups in ``jobs`` worker processes, relaying their progress to the bar."""
    import multiprocessing
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # Note: "spawn", not "fork": forking a process whose OpenMP/torch thread pools are already
    # running can deadlock the child.
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    bar = runner.bar

    def drain() -> None:
        while True:
            try:
                kind, value = events.get_nowait()
            except queue_mod.Empty:
                return
            if kind == "update":
                bar.update(value)
            else:
                bar.set_description_str(value)

    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(groups)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(events, threads),
    )
    try:
        futures = set()
        for group in groups:
            runs = {r for cell, _ in group for r in _runs_for(runner.config, cell)}
            payload = {
                "config": runner.config,
                "out": runner.out,
                "root": root,
                "device": device,
                "cache_dir": cache_dir,
                "cells": group,
                "runs": sorted(runs & runner.pending_runs, key=lambda r: str(r.relpath)),
            }
            futures.add(pool.submit(_work_group, payload))
        while futures:
            finished, futures = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            for future in finished:
                result = future.result()  # re-raises a worker's exception here
                runner.failures += result["failures"]
                runner.trained += result["trained"]
                runner.computed += result["computed"]
                if on_cell is not None:
                    for record in result["records"]:
                        on_cell(record)
        drain()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        events.close()


def _check_methods(config: GridConfig) -> None:
    from ..losses import make_loss

    for method in config.methods:
        make_loss(method, max(config.bits), 10)  # raises a clear ValueError on unknown names


def _old_failures(
    config: GridConfig, out: Path, seen: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Diverged runs of the grid recorded by an earlier call."""
    known = {f["what"] for f in seen}
    failures = []
    for run in sorted(
        {run for cell in plan_cells(config) for run in _runs_for(config, cell)},
        key=lambda r: str(r.relpath),
    ):
        path = out / "runs" / run.relpath / _FAILED
        what = f"stage-1 run {run.describe()}"
        if path.is_file() and what not in known:
            failures.append({"what": what, "reason": str(read_json(path).get("reason", ""))})
    return failures


def _collect_info(config: GridConfig, out: Path) -> dict[str, Any]:
    """Split sizes, model settings and stage-1 timings, read from the run folders."""
    info: dict[str, Any] = {"stage1_runs": 0, "stage1_seconds": 0.0, "feature_seconds": 0.0}
    for run in sorted(
        {run for cell in plan_cells(config) for run in _runs_for(config, cell)},
        key=lambda r: str(r.relpath),
    ):
        run_dir = out / "runs" / run.relpath
        if not _run_done(run_dir):
            continue
        summary = read_json(run_dir / "summary.json")
        seconds = summary.get("seconds", {})
        info["stage1_runs"] += 1
        info["stage1_seconds"] += float(seconds.get("total") or 0.0)
        if summary.get("feature_cache_hit") is False:
            info["feature_seconds"] += float(seconds.get("setup_and_features") or 0.0)
        if "split_sizes" not in info and (run_dir / "config.json").is_file():
            run_config = read_json(run_dir / "config.json")
            info["split_sizes"] = run_config.get("split_sizes")
            info["n_classes"] = run_config.get("n_classes")
            info["backbone"] = run_config.get("backbone")
            info["feature_backbone"] = run_config.get("feature_backbone")
            info["model"] = run_config.get("model")
            info["device"] = run_config.get("device")
    return info
