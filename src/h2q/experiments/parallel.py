"""Worker processes for a grid: one (seed, method, bits) group of cells per task.

The parent keeps the one progress bar; workers send it their progress through a queue.
Workers are started with "spawn" and set their own torch thread count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .records import Cell, CellRecord
from .runner import Runner, runs_for

__all__ = ["run_parallel"]


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
    # Note: the worker keeps the data set it loaded for the next groups (Fashion-MNIST takes
    # ~2 s to load; a 3-seed main job has 27 groups).
    env = payload["env"]
    data_key = ("data", payload["config"].train.dataset, env.root)
    runner = Runner(
        payload["config"],
        payload["out"],
        env,
        bar=_QueueBar(_WORKER["queue"]),
        data=_WORKER.get(data_key),
        keep_checkpoints=payload["keep_checkpoints"],
    )
    runner.pending_runs = set(payload["runs"])
    runner.extracts = False  # the parent extracted them before starting the workers
    records = []
    for cell, settings in payload["cells"]:
        record = runner.compute_cell(cell, settings)
        runner.bar.update(1)
        if record is not None:
            records.append(record)
    if runner._data is not None:
        _WORKER[data_key] = runner._data
    return {
        "records": records,
        "failures": runner.failures,
        "trained": runner.trained,
        "computed": runner.computed,
        "summaries": runner.summaries,
        "run_configs": runner.run_configs,
        "stage1": runner.stage1,
    }


def run_parallel(
    runner: Runner,
    groups: list[list[tuple[Cell, str]]],
    jobs: int,
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
        initargs=(events, runner.env.threads),
    )
    try:
        futures = set()
        for group in groups:
            runs = {r for cell, _ in group for r in runs_for(runner.config, cell)}
            payload = {
                "config": runner.config,
                "out": runner.out,
                "env": runner.env,
                "keep_checkpoints": runner.keep_checkpoints,
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
                runner.summaries.update(result["summaries"])
                runner.run_configs.update(result["run_configs"])
                runner.stage1.update(result["stage1"])
                for record in result["records"]:
                    runner.records[record.cell] = record
                    if on_cell is not None:
                        on_cell(record)
        drain()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        events.close()
