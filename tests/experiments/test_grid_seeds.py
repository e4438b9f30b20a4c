"""Several seeds in worker processes: one group of each seed is scheduled first, so
that the workers extract the features of different seeds at the same time, then the others
longest first; groups are the cells that share stage-1 runs; the results are those of the
one-process grid."""

from __future__ import annotations

import json
from types import SimpleNamespace

from h2q.experiments import get_config, run_grid
from h2q.experiments.grid import _groups, _longest_first, _seed_leaders_first, plan_cells
from h2q.experiments.runner import runs_for


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


def test_groups_share_runs_within_and_never_across():
    config = get_config("default")
    cells = plan_cells(config)
    groups = _groups(config, [(cell, "settings") for cell in cells])
    # Per (seed, method, bits): the rows on the lambda = 0 run, "+lambda" and "+HSWD".
    assert len(groups) == 3 * len(config.seeds) * len(config.methods) * len(config.bits)
    assert [cell for group in groups for cell, _ in group] == cells  # grid order kept
    seen: set = set()
    for group in groups:
        runs = [frozenset(runs_for(config, cell)) for cell, _ in group]
        assert len(set(runs)) == 1  # every cell of a group reads the same runs
        assert not runs[0] & seen  # no run is trained by two groups
        seen |= runs[0]
    assert sorted(len(g) for g in groups[:3]) == [1, 1, 6]


def test_longest_groups_go_first():
    config = get_config("default", seeds=(0,), methods=("dpsh",), bits=(16, 32))
    groups = _groups(config, [(cell, "settings") for cell in plan_cells(config)])
    pending = {run for group in groups for cell, _ in group for run in runs_for(config, cell)}
    order = [(g[0][0].row, g[0][0].n_bits) for g in _longest_first(config, groups, pending)]
    # Three "+lambda" runs, then one run with six cells, then one run with one cell.
    assert order == [
        ("penalty", 16), ("penalty", 32), ("lambda0", 16), ("lambda0", 32),
        ("hswd", 16), ("hswd", 32),
    ]  # fmt: skip
    # Runs already trained are no work: a group whose runs are done goes last.
    done = pending - set(runs_for(config, groups[1][0][0]))
    assert _longest_first(config, groups, done)[-1] == groups[1]
