"""Several seeds in worker processes (issue 12.2): one group of each seed is scheduled first, so
that the workers extract the features of different seeds at the same time, and the results
are those of the one-process grid."""

from __future__ import annotations

import json
from types import SimpleNamespace

from h2q.experiments import get_config, run_grid
from h2q.experiments.grid import _seed_leaders_first


def _group(seed: int, method: str) -> list:
    return [(SimpleNamespace(seed=seed, method=method), "settings")]


def test_one_group_of_each_seed_goes_first():
    groups = [_group(s, m) for s in (0, 1, 2) for m in ("a", "b", "c")]
    order = [(g[0][0].seed, g[0][0].method) for g in _seed_leaders_first(groups)]
    assert order == [
        (0, "a"), (1, "a"), (2, "a"),
        (0, "b"), (0, "c"), (1, "b"), (1, "c"), (2, "b"), (2, "c"),
    ]  # fmt: skip
    assert _seed_leaders_first(groups[:3]) == groups[:3]  # one seed: unchanged


def _scores(out) -> dict:
    found = {}
    for path in sorted((out / "runs").rglob("summary.json")):
        found[str(path.parent.relative_to(out))] = json.loads(path.read_text())["best_val_map"]
    for path in sorted((out / "cells").rglob("*.json")):
        found[str(path.relative_to(out))] = json.loads(path.read_text())["map_at_k"]
    return found


def test_two_seeds_in_workers_equal_the_one_process_grid(tmp_path):
    config = get_config("quick", bits=(8,), seeds=(0, 1), epochs=2)
    here = run_grid(config, tmp_path / "here", progress=False, jobs=1)
    workers = run_grid(config, tmp_path / "workers", progress=False, jobs=2)
    assert len(workers.trained) == len(here.trained) == 2 * 4  # lambda0, 2 lambdas, hswd
    a, b = _scores(tmp_path / "here"), _scores(tmp_path / "workers")
    assert a and a == b
