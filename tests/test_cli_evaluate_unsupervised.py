"""``h2q evaluate`` on unlabelled embeddings: recall of the exact float neighbours, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from h2q.embeddings import save_embeddings
from h2q.evaluation.unsupervised import baseline_quantizers, evaluate_recall

METHODS = ["sign", "centred sign", "random rotation", "ITQ", "H2Q"]


@pytest.fixture
def h2q(cli_runner):
    return cli_runner(("quantize",))


def _matrix(n, d=16, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, d)) + 0.4
    return (M / np.linalg.norm(M, axis=1, keepdims=True)).astype(np.float32)


def test_npy_matrix_end_to_end(h2q, tmp_path):
    path = tmp_path / "emb.npy"
    M = _matrix(400)
    np.save(path, M)
    out = tmp_path / "out"
    argv = ["evaluate", path, "--queries", "40", "--no-progress", "--out", out]
    status, stdout, err = h2q(*argv)
    assert status == 0, err
    for method in METHODS:
        assert f"| {method} | 16 |" in stdout
    assert "R@10 ties by float x100" in stdout and "R@100 rescored top-100 x100" in stdout
    assert "40 queries, 360 database items" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "table.csv", "table.md"]
    assert (out / "table.md").read_text() in stdout
    report = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in report["rows"]] == METHODS
    assert report["metric"] == "ip" and report["settings"]["queries"] == 40
    # the same split by hand through the library gives the same recall figures
    order = np.random.default_rng(0).permutation(len(M))
    Q, X = M[np.sort(order[:40])], M[np.sort(order[40:])]
    expected = evaluate_recall(baseline_quantizers(), X, None, Q, X, asymmetric=True)
    for row, want in zip(report["rows"], expected.rows, strict=True):
        assert row["recall"] == pytest.approx(want.recall)
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert len(csv_lines) == 6 and csv_lines[1].startswith("sign,16,")
    # a second run into the same folder needs --force
    status, _, err = h2q(*argv)
    assert status == 2 and "--force" in err


def test_npz_folds_with_bits_metric_and_rescore(h2q, tmp_path):
    path = tmp_path / "emb.npz"
    save_embeddings(
        path, train=_matrix(200, seed=1), query=_matrix(30, seed=2), database=_matrix(300, seed=3)
    )
    status, stdout, err = h2q(
        "evaluate", path, "--bits", "8", "--metric", "l2", "--rescore", "300",
        "--methods", "sign,h2q", "--max-database", "250", "--no-progress",
    )  # fmt: skip
    assert status == 0, err
    assert "| PCA sign | 8 |" in stdout and "| H2Q | 8 |" in stdout and "ITQ" not in stdout
    assert "squared L2 distance" in stdout and "fitted on 200 items" in stdout
    assert "30 queries, 250 database items" in stdout and "rescored top-250" in stdout
    rows = [line.split("|") for line in stdout.splitlines() if line.startswith("| PCA sign")]
    assert [cell.strip() for cell in rows[0][5:6]] == ["100.00"]  # whole database rescored


def test_labelled_file_with_unsupervised_flag(h2q, tmp_path):
    path = tmp_path / "emb.npz"
    y = np.zeros(300, dtype=np.int64)
    save_embeddings(
        path,
        train=_matrix(200, seed=1),
        query=_matrix(20, seed=2),
        database=_matrix(300, seed=3),
        y_query=y[:20],
        y_database=y,
    )
    status, stdout, err = h2q("evaluate", path, "--unsupervised", "--methods", "sign")
    assert status == 0, err
    assert "R@10 ties by id" in stdout and "mAP" not in stdout


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--methods", "sign,pq"], "the unsupervised evaluation knows sign, centred-sign"),
        (["--queries", "0"], "--queries must be a positive integer"),
        (["--rescore", "20"], "rescore=20 is smaller than k=100"),
        (["--bits", "32"], "--bits 32 is larger than the embedding width 16"),
    ],
)
def test_bad_input_is_one_line(h2q, tmp_path, extra, match):
    path = tmp_path / "emb.npy"
    np.save(path, _matrix(300))
    status, _, err = h2q("evaluate", path, "--queries", "30", *extra, "--out", tmp_path / "o")
    assert status == 2
    assert err.startswith("h2q evaluate: error: ") and err.count("\n") == 1
    assert match in err
    assert not (tmp_path / "o").exists()


def test_npz_with_two_unpaired_folds_is_refused(h2q, tmp_path):
    path = tmp_path / "emb.npz"
    save_embeddings(path, train=_matrix(50), val=_matrix(20))
    status, _, err = h2q("evaluate", path)
    assert status == 2 and "pass both 'query' and 'database' folds" in err


def test_labelled_file_without_train_still_needs_it(h2q, tmp_path):
    path = tmp_path / "emb.npz"
    y = np.zeros(50, dtype=np.int64)
    save_embeddings(
        path, query=_matrix(10), database=_matrix(50, seed=1), y_query=y[:10], y_database=y
    )
    status, _, err = h2q("evaluate", path)
    assert status == 2 and "lacks ['train']" in err and err.count("\n") == 1
