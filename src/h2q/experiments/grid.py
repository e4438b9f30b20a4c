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
        calls.json                       one entry per call: start, wall time, work done
        runs/<method>/<strategy>/b<bits>/s<seed>/
                                         one stage-1 run (h2q.training.run_training layout:
                                         embeddings.npz, summary.json, ...; checkpoints/ only
                                         while unfinished, unless keep_checkpoints); a run
                                         that diverged holds failed.json instead
        cells/<method>/<row>/b<bits>-s<seed>.json
                                         one finished cell (a CellRecord), plus the fitted
                                         quantizer beside it (.quantizer.npz)

Resuming: a stage-1 run with ``embeddings.npz`` and ``summary.json`` is reused, an unfinished
one continues from its last checkpoint, and a cell whose JSON file exists (with the same
settings) is skipped. So after an interruption, or after deleting one cell's file, running
the same grid again computes only what is missing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .._threads import thread_limit
from .._validation import check_positive_int
from .._version import __version__
from ..exceptions import FileFormatError
from ..losses import PENALTY, STRATEGIES
from ..training.environment import RunEnvironment
from .config import REFERENCE_METHODS, GridConfig, settings_hash
from .machine import machine_info
from .records import Cell, CellRecord, Stage1Run, read_json, write_json
from .rows import ROW_BY_KEY, ROWS, lambda_grid, rows_for
from .runner import FAILED_FILE, Runner, run_done, runs_for
from .stage1 import Stage1Summary

__all__ = ["GridResult", "check_grid", "load_records", "plan_cells", "run_grid"]

logger = logging.getLogger(__name__)


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
    environment: RunEnvironment = field(default_factory=RunEnvironment)
    """Where the grid read its data and how it ran (the report reads the data folder)."""
    stage1: dict[Stage1Run, Stage1Summary] = field(default_factory=dict)
    """The stage-1 runs this call trained or read, as the report shows them."""


def plan_cells(config: GridConfig) -> list[Cell]:
    """Every cell of the grid, in the order :func:`run_grid` computes them."""
    cells = []
    for seed in config.seeds:
        for method in config.methods:
            for n_bits in config.bits:
                for row in rows_for(config, method):
                    cells.append(Cell(method, row, n_bits, seed))
    return sorted(cells, key=lambda c: _order(config, c))


def _order(config: GridConfig, cell: Cell) -> tuple[int, int, int, int]:
    group = STRATEGIES.index(ROW_BY_KEY[cell.row].stage1_strategy)  # by the run it reads
    return (
        config.seeds.index(cell.seed),
        config.methods.index(cell.method),
        config.bits.index(cell.n_bits),
        group * 10 + config.row_keys.index(cell.row),
    )


def _cell_settings(config: GridConfig, cell: Cell) -> str:
    settings: dict[str, Any] = {
        "stage1": config.stage1_settings(),
        "evaluation": config.evaluation_settings(),
    }
    if cell.row == PENALTY:
        settings["lambda_grid"] = list(lambda_grid(cell.method, config.lambda_grids))
    return settings_hash(settings)


def _grid_identity(config: GridConfig) -> dict[str, Any]:
    return {"stage1": config.stage1_settings(), "evaluation": config.evaluation_settings()}


def check_grid(
    config: GridConfig, out_dir: str | os.PathLike, *, evaluation_may_change: bool = False
) -> None:
    """Refuse a results folder that holds a grid of other stage-1 or evaluation settings.

    Methods, bits, seeds and rows may differ (the grid grows or shrinks); the settings that
    change what a cached run or cell means may not.

    Parameters
    ----------
    config : GridConfig
    out_dir : path-like
    evaluation_may_change : bool, default False
        Accept other evaluation settings (only the stage-1 ones must match): each cell file
        records its settings, so the cells of other settings are then recomputed and the
        stage-1 runs reused.

    Raises
    ------
    ValueError
        Naming the settings that differ and the fix.
    """
    path = Path(out_dir) / "grid.json"
    if path.is_file():
        _check_identity(config, read_json(path), out_dir, evaluation_may_change)


def _check_identity(
    config: GridConfig,
    stored: dict[str, Any] | None,
    out_dir: str | os.PathLike,
    evaluation_may_change: bool,
) -> None:
    """:func:`check_grid` against the content of ``grid.json`` (None when there is none)."""
    if stored is None:
        return
    old = stored.get("identity", {})
    new = _grid_identity(config)
    diff = []
    for part in ("stage1",) if evaluation_may_change else ("stage1", "evaluation"):
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
    keep_checkpoints: bool = False,
    on_cell: Callable[[CellRecord], Any] | None = None,
    redo: Collection[str] = (),
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
    keep_checkpoints : bool, default False
        Keep the checkpoints of finished stage-1 runs. Only an unfinished run needs its own
        (to resume); a finished run is reused from its embeddings, so by default its
        ``checkpoints/`` folder is deleted once the run is complete.
    on_cell : callable, optional
        Called with each :class:`CellRecord` computed by this call.
    redo : collection of str, optional
        Rows (keys of :data:`h2q.experiments.rows.ROW_BY_KEY`) whose finished cells are
        computed again, e.g. the stage-2 rows after a change of the stage-2 solver; the stage-1 runs
        are reused, and each old cell file stays until its new one replaces it. With any
        row here, a folder of other evaluation settings is accepted (its cells of other
        settings are recomputed too); the stage-1 settings must still match. A redo is
        recorded in ``grid.json`` until it is complete, and a later call on ``out_dir`` (with or
        without ``redo``) finishes an interrupted one, keeping the cells it already redid.

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
    check_positive_int(jobs, "jobs")
    env = RunEnvironment(
        root=root, device=device, cache_dir=cache_dir, threads=threads, progress=progress
    )
    stored = read_json(out / "grid.json") if (out / "grid.json").is_file() else None
    redo, since = _pending_redo(stored, out, _check_redo(redo))
    _check_identity(config, stored, out, evaluation_may_change=bool(redo))
    if device is not None:
        from ..training import resolve_device

        resolve_device(device)  # fail early on an unavailable device
    _check_methods(config)
    plan = _Plan.make(config, out, redo, since)
    data = None
    if plan.needed_runs:  # load now: a missing or unknown data set fails before anything is written
        from ..data import load_dataset

        data = load_dataset(config.train.dataset, env.root)
    out.mkdir(parents=True, exist_ok=True)
    grid_json = {
        "identity": _grid_identity(config),
        "config": config.to_dict(),
        "h2q_version": __version__,
    }
    # An unfinished redo is recorded, so that a later call finishes it instead of keeping
    # cells of two stage-2 versions side by side; it is cleared once every cell is done.
    pending = {"rows": sorted(redo), "since": since} if redo else None
    write_json(out / "grid.json", {**grid_json, REDO_KEY: pending} if pending else grid_json)
    runner = _compute(config, out, env, plan, data, jobs, keep_checkpoints, on_cell)
    if pending:
        write_json(out / "grid.json", grid_json)
    return _result(config, out, runner, plan, start, jobs)


def _compute(
    config: GridConfig,
    out: Path,
    env: RunEnvironment,
    plan: _Plan,
    data: Any,
    jobs: int,
    keep_checkpoints: bool,
    on_cell: Callable[[CellRecord], Any] | None,
) -> Runner:
    """Compute the plan's cells (in this process or in workers) under one progress bar."""
    bar_args = dict(total=plan.total, initial=plan.done, desc="reproduce", unit="step")
    with tqdm(disable=not env.progress, **bar_args) as bar, thread_limit(env.threads):
        runner = Runner(config, out, env, bar=bar, data=data, keep_checkpoints=keep_checkpoints)
        runner.pending_runs = set(plan.needed_runs)
        groups = _groups(config, plan.todo)
        if jobs == 1 or len(groups) <= 1:
            _compute_here(runner, groups, on_cell)
        else:
            _compute_in_workers(runner, groups, plan.needed_runs, jobs, on_cell)
        bar.set_description_str("reproduce")
    return runner


@dataclass
class _Plan:
    """What a call of :func:`run_grid` has to do."""

    todo: list[tuple[Cell, str]]
    """Cells to compute, with their settings hash."""
    needed_runs: list[Stage1Run]
    """Stage-1 runs to train (or resume) for them."""
    total: int
    """Steps of the progress bar: every stage-1 run and every cell of the grid."""
    done: int
    """Steps already done by earlier calls."""
    records: dict[Cell, CellRecord]
    """The cells finished by earlier calls (those to redo included), as read."""

    @classmethod
    def make(
        cls, config: GridConfig, out: Path, redo: frozenset[str] = frozenset(), since: float = 0.0
    ) -> _Plan:
        cells = plan_cells(config)
        todo: list[tuple[Cell, str]] = []
        records: dict[Cell, CellRecord] = {}
        for cell in cells:
            settings = _cell_settings(config, cell)
            path = out / "cells" / cell.relpath
            stale = cell.row in redo and (not path.is_file() or path.stat().st_mtime < since)
            record = _read_record(path, settings)
            if record is not None:
                records[cell] = record
            if stale or record is None:
                todo.append((cell, settings))
        needed_runs: list[Stage1Run] = []
        for cell, _ in todo:
            for run in runs_for(config, cell):
                run_dir = out / "runs" / run.relpath
                if (
                    run not in needed_runs
                    and not run_done(run_dir)
                    and not (run_dir / FAILED_FILE).is_file()
                ):
                    needed_runs.append(run)
        all_runs = {run for cell in cells for run in runs_for(config, cell)}
        total = len(all_runs) + len(cells)
        logger.info(
            "grid %s: %d cells (%d to compute), %d stage-1 runs (%d to train)",
            config.name,
            len(cells),
            len(todo),
            len(all_runs),
            len(needed_runs),
        )
        done = total - len(todo) - len(needed_runs)
        return cls(todo, needed_runs, total, done, records)


#: Key of ``grid.json`` that records a redo in progress: its rows and its start time.
REDO_KEY = "redo_pending"


def _pending_redo(
    stored: dict[str, Any] | None, out: Path, redo: frozenset[str]
) -> tuple[frozenset[str], float]:
    """The rows to redo and since when: a redo left unfinished in ``out`` (its ``grid.json``,
    ``stored``) is resumed (its cells written after it began are kept), and joined by the rows
    asked for now."""
    pending = None if stored is None else stored.get(REDO_KEY)
    if not pending:
        return redo, time.time()
    rows = _check_redo(pending.get("rows", ()))
    if redo and not redo <= rows:
        return redo | rows, time.time()
    logger.warning("resuming the unfinished redo of %s in %s", sorted(rows), out)
    return rows, float(pending.get("since", time.time()))


def _check_redo(redo: Collection[str]) -> frozenset[str]:
    if isinstance(redo, str):
        redo = (redo,)
    unknown = sorted(set(redo) - set(ROWS))
    if unknown:
        raise ValueError(f"redo names unknown rows {unknown}; choose among {list(ROWS)}.")
    return frozenset(redo)


def _compute_here(
    runner: Runner,
    groups: list[list[tuple[Cell, str]]],
    on_cell: Callable[[CellRecord], Any] | None,
) -> None:
    for group in groups:
        for cell, settings in group:
            record = runner.compute_cell(cell, settings)
            runner.bar.update(1)
            if record is not None and on_cell is not None:
                on_cell(record)


def _compute_in_workers(
    runner: Runner,
    groups: list[list[tuple[Cell, str]]],
    needed_runs: list[Stage1Run],
    jobs: int,
    on_cell: Callable[[CellRecord], Any] | None,
) -> None:
    seeds = [s for s in runner.config.seeds if any(r.seed == s for r in needed_runs)]
    if len(seeds) >= jobs:
        # Each seed has its own folds, hence its own feature cache entry: one group of each
        # seed goes first, so that the workers extract the features of different seeds at
        # the same time (not one after the other in this process with a core idle); the
        # others follow, longest first.
        groups = _seed_leaders_first(groups)
        leaders = groups[: len(seeds)]
        groups = leaders + _longest_first(runner.config, groups[len(seeds) :], needed_runs)
    else:
        # The first run of each seed here, so that its features are extracted once.
        for seed in seeds:
            runner.ensure_run(next(r for r in needed_runs if r.seed == seed))
        groups = _longest_first(runner.config, groups, runner.pending_runs)
    runner.release_data()  # the workers load their own copy
    from .parallel import run_parallel

    run_parallel(runner, groups, jobs, on_cell)


def _result(
    config: GridConfig, out: Path, runner: Runner, plan: _Plan, start: float, jobs: int
) -> GridResult:
    """The grid's result, with this call appended to ``calls.json``.

    Its records are those computed now and those read by the plan (no cell file is read
    twice): a cell of the plan that was not computed now keeps its file's record.
    """
    records = []
    for cell in plan_cells(config):
        record = runner.records.get(cell, plan.records.get(cell))
        if record is not None:
            records.append(record)
    seconds = time.perf_counter() - start
    info = _collect_info(config, out, runner)
    info["calls"] = _log_call(
        out,
        {
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - seconds)),
            "seconds": round(seconds, 1),
            "trained": len(runner.trained),
            "computed": len(runner.computed),
            "jobs": jobs,
            "threads": runner.env.threads,
            "cpu_count": os.cpu_count(),
            "machine": machine_info(),
        },
    )
    return GridResult(
        config=config,
        out_dir=out,
        records=records,
        failures=runner.failures + _old_failures(config, out, runner.failures),
        trained=runner.trained,
        computed=runner.computed,
        seconds=seconds,
        info=info,
        environment=runner.env,
        stage1=runner.stage1,
    )


def _log_call(out: Path, call: dict[str, Any]) -> list[dict[str, Any]]:
    """Append this call to ``calls.json`` (the grid's history of runs); return the history."""
    path = out / "calls.json"
    history: list[dict[str, Any]] = []
    if path.is_file():
        try:
            history = list(read_json(path))
        except (FileFormatError, TypeError):
            history = []
    history.append(call)
    write_json(path, history)
    return history


def _groups(config: GridConfig, todo: list[tuple[Cell, str]]) -> list[list[tuple[Cell, str]]]:
    """Pending cells grouped by the stage-1 runs they read, in grid order.

    A (seed, method, bits) triple gives up to three groups: the rows on the lambda = 0 run,
    the "+lambda" row (its runs, one per lambda) and the "+HSWD" row. The cells of a group
    share its runs and no two groups share a run, so groups can run in parallel; smaller
    groups leave less of a worker idle at the end of a grid.
    """
    groups: dict[tuple[Any, ...], list[tuple[Cell, str]]] = {}
    for cell, settings in todo:
        runs = tuple(str(run.relpath) for run in runs_for(config, cell))
        groups.setdefault((cell.seed, cell.method, cell.n_bits, runs), []).append((cell, settings))
    return list(groups.values())


def _longest_first(
    config: GridConfig, groups: list[list[tuple[Cell, str]]], pending: Collection[Stage1Run]
) -> list[list[tuple[Cell, str]]]:
    """The groups by decreasing work (stage-1 runs to train, then cells), grid order within
    ties: with the longest first, the last groups to finish are short ones."""

    def work(group: list[tuple[Cell, str]]) -> tuple[int, int]:
        runs = {run for cell, _ in group for run in runs_for(config, cell)}
        return (-len(runs & set(pending)), -len(group))

    return sorted(groups, key=work)


def _seed_leaders_first(groups: list[list[tuple[Cell, str]]]) -> list[list[tuple[Cell, str]]]:
    """The first group of each seed, then the other groups, each part in grid order."""
    leaders: dict[int, int] = {}
    for i, group in enumerate(groups):
        leaders.setdefault(group[0][0].seed, i)
    first = sorted(leaders.values())
    return [groups[i] for i in first] + [g for i, g in enumerate(groups) if i not in first]


def _check_methods(config: GridConfig) -> None:
    from ..losses import make_loss

    for method in config.methods:
        if method.lower() in REFERENCE_METHODS:
            continue  # its own schedule, no loss object
        make_loss(method, max(config.bits), 10)  # raises a clear ValueError on unknown names


def _old_failures(
    config: GridConfig, out: Path, seen: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Diverged runs of the grid recorded by an earlier call."""
    known = {f["what"] for f in seen}
    failures = []
    for run in sorted(
        {run for cell in plan_cells(config) for run in runs_for(config, cell)},
        key=lambda r: str(r.relpath),
    ):
        path = out / "runs" / run.relpath / FAILED_FILE
        what = f"stage-1 run {run.describe()}"
        if path.is_file() and what not in known:
            failures.append({"what": what, "reason": str(read_json(path).get("reason", ""))})
    return failures


def _collect_info(config: GridConfig, out: Path, runner: Runner) -> dict[str, Any]:
    """Split sizes, model settings and stage-1 timings of the runs: those the runner knows
    (trained or read by this call), the others read from their folders."""
    info: dict[str, Any] = {"stage1_runs": 0, "stage1_seconds": 0.0, "feature_seconds": 0.0}
    for run in sorted(
        {run for cell in plan_cells(config) for run in runs_for(config, cell)},
        key=lambda r: str(r.relpath),
    ):
        run_dir = out / "runs" / run.relpath
        summary = runner.summaries.get(run)
        if summary is None and not run_done(run_dir):
            continue
        if summary is None:
            summary = read_json(run_dir / "summary.json")
        seconds = summary.get("seconds", {})
        info["stage1_runs"] += 1
        info["stage1_seconds"] += float(seconds.get("total") or 0.0)
        if summary.get("feature_cache_hit") is False:
            info["feature_seconds"] += float(seconds.get("setup_and_features") or 0.0)
        if "split_sizes" not in info:
            info.update(_run_facts(runner.run_configs.get(run), run_dir))
    return info


def _run_facts(run_config: dict[str, Any] | None, run_dir: Path) -> dict[str, Any]:
    """Split sizes and model settings of a run (its ``config.json`` when not in memory)."""
    if run_config is None and (run_dir / "config.json").is_file():
        run_config = read_json(run_dir / "config.json")
    if run_config is None:
        return {}
    keys = (
        "split_sizes",
        "n_classes",
        "backbone",
        "feature_backbone",
        "model",
        "device",
        "precision",
    )
    return {key: run_config.get(key) for key in keys}
