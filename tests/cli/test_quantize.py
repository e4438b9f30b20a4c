"""End-to-end tests of `h2q fit`, `h2q encode`, `h2q search` and `h2q evaluate`."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest

from h2q.codes import hamming_distances
from h2q.embeddings import save_embeddings
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer, load_quantizer
from h2q.search import rank_database

WIDTH = 16


@pytest.fixture
def h2q(cli_runner):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    return cli_runner(("quantize",))


def _clusters(rng, centers, n):
    y = rng.integers(0, len(centers), n)
    return (centers[y] + 0.6 * rng.normal(size=(n, centers.shape[1]))).astype(np.float32), y


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A labelled, clustered embeddings file (all four folds) and a bare .npy matrix."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, WIDTH))
    folds = {}
    for fold, n in (("train", 300), ("val", 80), ("query", 40), ("database", 300)):
        folds[fold], folds[f"y_{fold}"] = _clusters(rng, centers, n)
    save_embeddings(root / "emb.npz", **folds)
    save_embeddings(
        root / "unlabelled.npz",
        train=folds["train"],
        query=folds["query"],
        database=folds["database"],
    )
    np.save(root / "train.npy", folds["train"])
    np.save(root / "narrow.npy", folds["train"][:, :8])
    return root, folds


# --- the pipeline ------------------------------------------------------------------------------


def test_fit_encode_search(h2q, files, tmp_path):
    root, folds = files
    q = tmp_path / "q.npz"
    status, out, err = h2q("fit", root / "emb.npz", "--out", q, "--max-iter", "40")
    assert status == 0, err
    assert "h2q (HouseholderQuantizer): 16 bits" in out and "val l2 loss" in out
    quantizer = load_quantizer(q)
    assert isinstance(quantizer, HouseholderQuantizer) and quantizer.n_bits_ == WIDTH
    assert quantizer.n_iter_ == 40 and len(quantizer.validation_curve_) == 9  # val was used

    for fold in ("query", "database"):
        status, out, err = h2q(
            "encode",
            q,
            root / "emb.npz",
            "--fold",
            fold,
            "--out",
            tmp_path / f"{fold}.npy",
            "--features-out",
            tmp_path / f"{fold}_f.npy",
        )
        assert status == 0, err
        codes = np.load(tmp_path / f"{fold}.npy")
        assert codes.dtype == np.uint8 and codes.shape == (len(folds[fold]), 2)
        np.testing.assert_array_equal(codes, quantizer.encode(folds[fold]))
        np.testing.assert_allclose(
            np.load(tmp_path / f"{fold}_f.npy"), quantizer.transform(folds[fold]), rtol=1e-6
        )

    qc, dc = np.load(tmp_path / "query.npy"), np.load(tmp_path / "database.npy")
    for backend in ("numpy", "auto"):
        res = tmp_path / f"r_{backend}.npz"
        status, out, err = h2q(
            "search",
            "--database",
            tmp_path / "database.npy",
            "--queries",
            tmp_path / "query.npy",
            "-k",
            25,
            "--out",
            res,
            "--backend",
            backend,
        )
        assert status == 0, err
        with np.load(res) as r:
            D, I = r["D"], r["I"]
        assert D.shape == I.shape == (40, 25)
        full = hamming_distances(qc, dc)
        np.testing.assert_array_equal(D, np.take_along_axis(full, I, axis=1))
        np.testing.assert_array_equal(D, np.sort(full, axis=1)[:, :25])

    res = tmp_path / "r_features.npz"
    status, out, err = h2q(
        "search",
        "--database",
        tmp_path / "database.npy",
        "--queries",
        tmp_path / "query.npy",
        "--k",
        25,
        "--out",
        res,
        "--database-features",
        tmp_path / "database_f.npy",
        "--query-features",
        tmp_path / "query_f.npy",
    )
    assert status == 0, err
    assert "re-ranked" in out
    with np.load(res) as r:
        _, expected = rank_database(
            qc,
            dc,
            25,
            query_features=quantizer.transform(folds["query"]),
            db_features=quantizer.transform(folds["database"]),
        )
        np.testing.assert_array_equal(r["I"], expected)


@pytest.mark.parametrize(
    ("argv", "cls", "n_bits"),
    [
        (["--method", "sign"], SignQuantizer, WIDTH),
        (["--method", "itq", "--seed", "3"], ITQQuantizer, WIDTH),
        (["--method", "itq", "--bits", "8", "--pca"], ITQQuantizer, 8),
        (["--bits", "8", "--pca", "--loss", "l1", "--max-iter", "5"], HouseholderQuantizer, 8),
        (["--solver", "paper", "--max-iter", "2", "--no-progress"], HouseholderQuantizer, WIDTH),
    ],
)
def test_fit_options(h2q, files, tmp_path, argv, cls, n_bits):
    root, folds = files
    q = tmp_path / "q.npz"
    status, out, err = h2q("fit", root / "train.npy", "--out", q, *argv)
    assert status == 0, err
    quantizer = load_quantizer(q)
    assert type(quantizer) is cls and quantizer.n_bits_ == n_bits
    assert "val" not in out  # a .npy has no validation fold
    status, _, err = h2q("encode", q, root / "train.npy", "--out", tmp_path / "c.npy")
    assert status == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), quantizer.encode(folds["train"]))


def test_fit_with_separate_val_file(h2q, files, tmp_path):
    root, folds = files
    np.save(tmp_path / "val.npy", folds["val"])
    q = tmp_path / "q.npz"
    status, out, err = h2q(
        "fit",
        root / "train.npy",
        "--val",
        tmp_path / "val.npy",
        "--out",
        q,
        "--max-iter",
        "3",
    )
    assert status == 0, err
    assert "val l2 loss" in out
    assert len(load_quantizer(q).validation_curve_) == 2  # checks at iterations 0 and 3


def test_evaluate_writes_report(h2q, files, tmp_path, monkeypatch):
    root, _ = files
    # at most 60 H²Q iterations, to keep the suite fast
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 60)
    out_dir = tmp_path / "report"
    status, out, err = h2q(
        "evaluate", root / "emb.npz", "--k", 100, "--out", out_dir, "--no-progress"
    )
    assert status == 0, err
    header = "mAP@100 (top-k relevant denominator; empty queries score 0)"
    assert header in out.splitlines()[0]
    assert (out_dir / "table.md").read_text() in out
    table = list(csv.reader(io.StringIO((out_dir / "table.csv").read_text())))
    assert table[0][2] == header and [r[0] for r in table[1:]] == ["sign", "itq", "h2q"]
    report = json.loads((out_dir / "results.json").read_text())
    assert report["map_variant"] == header and report["settings"]["methods"] == [
        "sign",
        "itq",
        "h2q",
    ]
    loss = {row["method"]: row["quantization_loss"] for row in report["rows"]}
    assert loss["h2q"] < loss["sign"] and loss["itq"] < loss["sign"]
    maps = {row["method"]: row["map_at_k"] for row in report["rows"]}
    assert all(0 < v <= 1 for v in maps.values())
    assert (out_dir / "precision_recall.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_with_pca_and_subset(h2q, files, tmp_path):
    root, _ = files
    status, out, err = h2q(
        "evaluate",
        root / "emb.npz",
        "--bits",
        8,
        "--methods",
        "sign, itq",
        "--k",
        50,
        "--radius",
        1,
        "--no-tie-break",
        "--no-progress",
    )
    assert status == 0, err
    lines = out.splitlines()
    assert "mAP@H<=1" in lines[0] and "ties by database id" in out
    assert lines[2].startswith("| sign | 8 |") and lines[3].startswith("| itq | 8 |")


def test_evaluate_says_when_k_exceeds_the_database(h2q, files):
    root, _ = files
    n_db = len(np.load(root / "emb.npz")["database"])
    status, out, err = h2q(
        "evaluate", root / "emb.npz", "--methods", "sign", "--k", 10 * n_db, "--no-progress"
    )
    assert status == 0, err
    assert f"note: -k {10 * n_db} is more than the {n_db} database items; mAP@{n_db}" in err
    assert f"mAP@{n_db} (top-k" in out.splitlines()[0]


# --- failures: exit status 2, a one-line message, nothing written --------------------------------


@pytest.fixture(scope="module")
def fitted(files, tmp_path_factory):
    root, folds = files
    path = tmp_path_factory.mktemp("fitted") / "q.npz"
    ITQQuantizer(max_iter=5).fit(folds["train"]).save(path)
    return path


FAILURES = [
    (["fit", "{root}/missing.npz"], "no such embeddings file"),
    (["fit", "{root}/train.npy", "--bits", "32"], "--bits 32 is larger than the embedding width"),
    (["fit", "{root}/train.npy", "--bits", "8"], "Add --pca"),
    (["fit", "{root}/train.npy", "--pca"], "--pca needs --bits"),
    (["fit", "{root}/train.npy", "--method", "itq", "--loss", "l1"], "--loss applies only"),
    (["fit", "{root}/train.npy", "--method", "sign", "--max-iter", "3"], "--max-iter applies"),
    (["fit", "{root}/train.npy", "--val", "{root}/narrow.npy"], "validation embeddings have 8"),
    (["encode", "{fitted}", "{root}/narrow.npy"], "has 8 features, but the quantizer"),
    (["encode", "{fitted}", "{root}/emb.npz"], "choose one with --fold"),
    (["encode", "{fitted}", "{root}/train.npy", "--fold", "query"], "drop --fold"),
    (["encode", "{root}/emb.npz", "{root}/train.npy"], "not an h2q file"),
    (["encode", "{root}/nothing.npz", "{root}/train.npy"], "no such file"),
    (
        ["search", "--database", "{root}/train.npy", "--queries", "{root}/train.npy", "-k", "3"],
        "packed binary codes",
    ),
    (
        ["search", "--database", "{root}/c1.npy", "--queries", "{root}/c2.npy", "-k", "3"],
        "encode both with the same quantizer",
    ),
    (
        [
            "search",
            "--database",
            "{root}/c1.npy",
            "--queries",
            "{root}/c1.npy",
            "-k",
            "3",
            "--query-features",
            "{root}/train.npy",
        ],
        "pass both, or neither",
    ),
    (
        ["search", "--database", "{root}/c1.npy", "--queries", "{root}/c1.npy", "-k", "0"],
        "-k must be a positive integer",
    ),
    (
        ["evaluate", "{root}/unlabelled.npz", "--quantizer", "{fitted}"],
        "--quantizer scores fitted quantizers on labelled data",
    ),
    (["evaluate", "{root}/emb.npz", "--methods", "sign,pq"], "unknown method(s) ['pq']"),
    (["evaluate", "{root}/emb.npz", "--methods", "sign,sign"], "more than once"),
    (["evaluate", "{root}/emb.npz", "--bits", "17"], "--bits 17 is larger"),
    (["evaluate", "{root}/train.npy", "--queries", "300"], "leaves no database"),
    (["evaluate", "{root}/unlabelled.npz", "--rescore", "0"], "--rescore must be a positive"),
]


@pytest.mark.parametrize(("argv", "match"), FAILURES)
@pytest.mark.parametrize("existing", [False, True])
def test_failures_write_nothing(h2q, files, fitted, tmp_path, argv, match, existing):
    root, folds = files
    np.save(tmp_path / "c1.npy", np.zeros((5, 2), dtype=np.uint8))
    np.save(tmp_path / "c2.npy", np.zeros((5, 3), dtype=np.uint8))
    if "{root}/c1.npy" in " ".join(argv):
        root = tmp_path
        np.save(tmp_path / "train.npy", folds["train"])
    argv = [a.format(root=root, fitted=fitted) for a in argv]
    out = tmp_path / ("out_dir" if argv[0] == "evaluate" else "out.npy")
    if existing:
        out.write_bytes(b"previous") if argv[0] != "evaluate" else out.mkdir()
    # --force: an existing output is refused without it, whatever else is wrong
    status, stdout, err = h2q(*argv, "--out", out, *(["--force"] if existing else []))
    assert status == 2
    assert err.startswith(f"h2q {argv[0]}: error: ") and err.count("\n") == 1
    assert match in err
    if existing and argv[0] != "evaluate":
        assert out.read_bytes() == b"previous"
    elif existing:
        assert list(out.iterdir()) == []
    else:
        assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_output_folder_must_exist(h2q, files, tmp_path):
    root, _ = files
    status, _, err = h2q("fit", root / "train.npy", "--out", tmp_path / "no" / "q.npz")
    assert status == 2 and "folder" in err and "does not exist" in err
    assert not (tmp_path / "no").exists()


def test_evaluate_out_is_a_file(h2q, files, tmp_path):
    root, _ = files
    target = tmp_path / "file"
    target.write_text("keep")
    status, _, err = h2q("evaluate", root / "emb.npz", "--out", target)
    assert status == 2 and "is not a folder" in err and target.read_text() == "keep"


def test_fit_failure_leaves_no_file(h2q, tmp_path):
    X = np.ones((10, 4), dtype=np.float32)
    X[3, 1] = np.nan
    np.save(tmp_path / "bad.npy", X)
    status, _, err = h2q("fit", tmp_path / "bad.npy", "--out", tmp_path / "q.npz")
    assert status == 2 and "NaN" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy"]


def test_evaluate_plot_needs_matplotlib(h2q, files, tmp_path, monkeypatch):
    root, _ = files
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = h2q("evaluate", root / "emb.npz", "--out", tmp_path / "r")
    assert status == 2 and "needs matplotlib" in err and "--no-plot" in err
    assert out == "" and not (tmp_path / "r").exists()  # failed before any work


def test_unknown_method_is_a_usage_error(h2q, files, tmp_path):
    root, _ = files
    with pytest.raises(SystemExit) as exc:
        h2q("fit", root / "train.npy", "--out", tmp_path / "q.npz", "--method", "pq")
    assert exc.value.code == 2
    assert not (tmp_path / "q.npz").exists()


@pytest.mark.parametrize("method", ["h2q", "itq", "sign"])
def test_fit_center_subtracts_the_training_mean(h2q, tmp_path, method):
    """`h2q fit --center` fits a centred quantizer, the same as `center=True` in Python; on
    embeddings far from zero-mean its codes differ from those of a fit without it."""
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(200, WIDTH)) + 2.0).astype(np.float32)  # mean far from zero
    path = tmp_path / "offset.npy"
    np.save(path, X)
    plain, centred = tmp_path / "plain.npz", tmp_path / "centred.npz"
    extra = [] if method == "sign" else ["--max-iter", "10"]
    common = ["--method", method, *extra, "--no-progress"]
    assert h2q("fit", path, "--out", plain, *common)[0] == 0
    status, out, err = h2q("fit", path, "--out", centred, "--center", *common)
    assert status == 0, err
    assert "centred" in out
    q_plain, q_centred = load_quantizer(plain), load_quantizer(centred)
    assert q_plain.center is False and q_centred.center is True
    np.testing.assert_allclose(q_centred.mean_, X.mean(axis=0), rtol=1e-5, atol=1e-5)
    codes_plain, codes_centred = q_plain.encode(X), q_centred.encode(X)
    assert not np.array_equal(codes_plain, codes_centred)
    # sign: every bit of an offset vector is 1 without centring; about half with it
    if method == "sign":
        assert np.unpackbits(codes_plain).mean() > 0.95
        assert 0.3 < np.unpackbits(codes_centred).mean() < 0.7
