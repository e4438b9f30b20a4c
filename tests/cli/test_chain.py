"""The CLI chain fit -> encode -> search keeps the paper's tie-breaking, and
`h2q evaluate --quantizer` scores the fitted file with the same protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest

from h2q.embeddings import EmbeddingFolds, save_embeddings
from h2q.evaluation import evaluate_quantizers
from h2q.evaluation.metrics import mean_average_precision
from h2q.quantizers import load_quantizer
from h2q.search import rank_database

WIDTH = 8  # 8 bits over 300 items: Hamming ties everywhere, so the tie rule matters
K = 100


@pytest.fixture
def h2q(cli_runner):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    return cli_runner(("quantize",))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Embeddings with their quantizer fitted by the library (same settings as `h2q fit`)."""
    root = tmp_path_factory.mktemp("chain")
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(6, WIDTH))
    folds = {}
    for fold, n in (("train", 300), ("val", 60), ("query", 40), ("database", 300)):
        y = rng.integers(0, 6, n)
        folds[fold] = (centers[y] + 0.9 * rng.normal(size=(n, WIDTH))).astype(np.float32)
        folds[f"y_{fold}"] = y
    save_embeddings(root / "emb.npz", **folds)
    return root, folds


def _search(h2q, root, db, q, out, *extra):
    status, stdout, err = h2q(
        "search", "--database", db, "--queries", q, "-k", K, "--out", out, *extra
    )
    assert status == 0, err
    with np.load(out) as r:
        return r["I"], stdout


def test_chain_keeps_the_papers_tie_breaking(h2q, chain, tmp_path):
    root, folds = chain
    qfile = tmp_path / "q.npz"
    assert h2q("fit", root / "emb.npz", "--out", qfile, "--max-iter", 20, "--no-progress")[0] == 0
    for fold in ("query", "database"):
        status, out, err = h2q(
            "encode", qfile, root / "emb.npz", "--fold", fold, "--out", tmp_path / f"{fold}.npz"
        )
        assert status == 0 and "codes and features" in out and err == "", err
    I, out = _search(
        h2q, root, tmp_path / "database.npz", tmp_path / "query.npz", tmp_path / "r.npz"
    )
    assert "ties re-ranked by features" in out

    quantizer = load_quantizer(qfile)
    _, expected = rank_database(
        quantizer.encode(folds["query"]),
        quantizer.encode(folds["database"]),
        K,
        query_features=quantizer.transform(folds["query"]),
        db_features=quantizer.transform(folds["database"]),
    )
    np.testing.assert_array_equal(I, expected)

    # the chain's mAP@K is the one `h2q evaluate --quantizer` reports for the same file
    chain_map = mean_average_precision(I, folds["y_query"], folds["y_database"], K)
    status, _, err = h2q(
        "evaluate",
        root / "emb.npz",
        "--quantizer",
        qfile,
        "-k",
        K,
        "--out",
        tmp_path / "ev",
        "--no-plot",
        "--no-progress",
    )
    assert status == 0, err
    report = json.loads((tmp_path / "ev" / "results.json").read_text())
    (row,) = report["rows"]
    assert row["method"] == "q" and row["fit_time_s"] is None  # not refitted
    assert row["map_at_k"] == pytest.approx(chain_map, abs=1e-12)
    assert report["settings"]["quantizer_files"] == [str(qfile)]

    # codes only (.npy): ties go by id, which gives another ranking on these 8-bit codes
    for fold in ("query", "database"):
        status, _, err = h2q(
            "encode", qfile, root / "emb.npz", "--fold", fold, "--out", tmp_path / f"{fold}.npy"
        )
        assert status == 0 and "break Hamming ties by id" in err
    I_id, out = _search(
        h2q, root, tmp_path / "database.npy", tmp_path / "query.npy", tmp_path / "r2.npz"
    )
    assert "ties by id" in out and not np.array_equal(I_id, I)
    # and --no-tie-break on the .npz files gives the same id order
    I_off, _ = _search(
        h2q,
        root,
        tmp_path / "database.npz",
        tmp_path / "query.npz",
        tmp_path / "r3.npz",
        "--no-tie-break",
    )
    np.testing.assert_array_equal(I_off, I_id)


def test_evaluate_quantizer_matches_the_library(h2q, chain, tmp_path):
    root, folds = chain
    from h2q.quantizers import ITQQuantizer

    q = ITQQuantizer(max_iter=5).fit(folds["train"])
    q.save(tmp_path / "itq.npz")
    status, out, err = h2q(
        "evaluate",
        root / "emb.npz",
        "--quantizer",
        tmp_path / "itq.npz",
        "-k",
        50,
        "--no-progress",
    )
    assert status == 0, err
    scored = EmbeddingFolds(**folds).replace(train=None)
    result = evaluate_quantizers({"itq": q}, scored, k=50, refit=False)
    assert f"| itq | {WIDTH} | {100 * result.rows[0].map_at_k:.2f} |" in out
    assert (
        "quantizers scored as fitted (not refitted)" in out and result.to_dict()["refit"] is False
    )
    np.testing.assert_array_equal(load_quantizer(tmp_path / "itq.npz").rotation_, q.rotation_)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--methods", "sign"], "--methods chooses quantizers to fit"),
        (["--bits", "4"], "--bits chooses quantizers to fit"),
    ],
)
def test_evaluate_quantizer_conflicts(h2q, chain, tmp_path, argv, match):
    root, folds = chain
    from h2q.quantizers import SignQuantizer

    SignQuantizer().fit(folds["train"]).save(tmp_path / "s.npz")
    status, _, err = h2q("evaluate", root / "emb.npz", "--quantizer", tmp_path / "s.npz", *argv)
    assert status == 2 and match in err


def test_evaluate_unfitted_refit_false_is_refused(chain):
    _, folds = chain
    from h2q.quantizers import SignQuantizer

    with pytest.raises(ValueError, match="is not fitted"):
        scored = EmbeddingFolds(**folds).replace(train=None, val=None)
        evaluate_quantizers({"s": SignQuantizer()}, scored, refit=False)


def test_search_features_on_one_side_only(h2q, chain, tmp_path):
    root, folds = chain
    q = tmp_path / "q.npz"
    h2q("fit", root / "emb.npz", "--out", q, "--method", "sign")
    h2q("encode", q, root / "emb.npz", "--fold", "query", "--out", tmp_path / "query.npz")
    h2q("encode", q, root / "emb.npz", "--fold", "database", "--out", tmp_path / "db.npy")
    status, _, err = h2q(
        "search",
        "--database",
        tmp_path / "db.npy",
        "--queries",
        tmp_path / "query.npz",
        "-k",
        5,
        "--out",
        tmp_path / "r.npz",
    )
    assert (
        status == 2 and "--queries holds features for tie-breaking but --database does not" in err
    )
