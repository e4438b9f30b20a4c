"""Retrieval you can see: the figure of a real tiny grid on digits, its ranking against
rank_database, its wrong marks against the labels, the text table, and old folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from h2q.data import Dataset, Split, load_dataset
from h2q.embeddings import load_embeddings
from h2q.experiments.config import get_config
from h2q.experiments.grid import run_grid
from h2q.experiments.records import Cell
from h2q.experiments.report import write_outputs
from h2q.experiments.retrieval import (
    STRATEGIES,
    StrategyResults,
    pick_queries,
    retrieval_markdown,
    strategy_results,
    write_retrieval,
)
from h2q.quantizers import load_quantizer
from h2q.search import rank_database

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _config():
    return get_config("quick", bits=(8,), epochs=2, lambda_grids={"dpsh": (0.1,)})


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A real quick grid on digits (one bit length, one lambda): about 8 s."""
    out = tmp_path_factory.mktemp("grid")
    result = run_grid(_config(), out, progress=False)
    files = write_outputs(result)
    return result, files


def _record(result, row):
    return next(r for r in result.records if r.row == row)


@pytest.mark.slow
def test_figure_is_written_and_linked(grid):
    result, files = grid
    path = result.out_dir / "plots" / "retrieval_dpsh_8bits.png"
    assert files["plots/retrieval_dpsh_8bits.png"] == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    report = (result.out_dir / "report.md").read_text()
    assert "## Retrieval you can see" in report
    assert "![retrieval](plots/retrieval_dpsh_8bits.png)" in report


@pytest.mark.slow
@pytest.mark.parametrize("row", STRATEGIES)
def test_ranking_is_the_evaluations_and_marks_follow_labels(grid, row):
    result, _ = grid
    out, record = result.out_dir, _record(result, row)
    data = load_dataset("digits")
    shown = strategy_results(out, record, data.y)

    # The reference: rank every query of the fold as evaluate_quantizers does, keep the rows.
    run_dir = out / "runs" / record.stage1_run
    emb = load_embeddings(run_dir / "embeddings.npz")
    cell = Cell(record.method, record.row, record.n_bits, record.seed)
    q = load_quantizer((out / "cells" / cell.relpath).with_suffix(".quantizer.npz"))
    ranked = rank_database(
        q.encode(emb.query),
        q.encode(emb.database),
        None,
        query_features=q.transform(emb.query),
        db_features=q.transform(emb.database),
    )
    ranking = ranked[1] if isinstance(ranked, tuple) else ranked  # (D, I) in later versions
    rows = pick_queries(len(emb.query))
    np.testing.assert_array_equal(shown.query_rows, rows)
    np.testing.assert_array_equal(shown.result_rows, ranking[rows, :10])

    split = Split.load(run_dir / "split.npz", data)
    np.testing.assert_array_equal(shown.query_ids, split.query[rows])
    np.testing.assert_array_equal(shown.result_ids, split.database[ranking[rows, :10]])
    expected_wrong = data.y[shown.result_ids] != data.y[shown.query_ids][:, None]
    np.testing.assert_array_equal(shown.wrong, expected_wrong)


@pytest.mark.slow
def test_old_folder_without_split_gets_a_note(grid, tmp_path):
    result, _ = grid
    old = tmp_path / "old"
    shutil.copytree(result.out_dir, old)
    for path in (old / "runs").rglob("split.npz"):
        path.unlink()
    (old / "plots" / "retrieval_dpsh_8bits.png").unlink()
    section = write_retrieval(result.config, result.records, old)
    assert section.files == {}
    assert section.lines[0] == "## Retrieval you can see"
    assert any(line.startswith("Not shown: ") and "split.npz" in line for line in section.lines)

    files = write_outputs(run_grid(_config(), old, progress=False))  # the report still comes
    assert "plots/retrieval_dpsh_8bits.png" not in files
    assert "Not shown: " in (old / "report.md").read_text()


def test_pick_queries_is_evenly_spaced():
    np.testing.assert_array_equal(pick_queries(20), [0, 6, 13, 19])
    np.testing.assert_array_equal(pick_queries(2), [0, 1])
    with pytest.raises(ValueError, match="query fold is empty"):
        pick_queries(0)


def test_text_table_marks_wrong_results():
    texts = ["alpha | one", "beta", "gamma", "delta", "epsilon"]
    data = Dataset("toy", texts, np.array([0, 0, 1, 1, 0]), "text", ["a", "b"])
    result_ids = np.array([[1, 2, 4]])
    wrong = data.y[result_ids] != data.y[[0]][:, None]
    res = [
        StrategyResults("lambda0", np.array([0]), np.array([0]), result_ids, result_ids, wrong),
        StrategyResults(
            "h2q-l2",
            np.array([0]),
            np.array([0]),
            result_ids[:, ::-1],
            result_ids[:, ::-1],
            wrong[:, ::-1],
        ),
    ]
    lines = retrieval_markdown(res, data).splitlines()
    assert lines[0] == "Query 1 (a): alpha \\| one"
    assert lines[2] == "| rank | λ = 0 | +H²Q (L2) |"
    assert lines[4] == "| 1 | ✓ beta | ✓ epsilon |"
    assert lines[5] == "| 2 | ✗ gamma | ✗ gamma |"
    assert lines[6] == "| 3 | ✓ epsilon | ✓ beta |"
