"""End-to-end tests of `h2q index build` and `h2q index search`."""

from __future__ import annotations

import numpy as np
import pytest

from h2q import HammingIndex, pack_bits
from h2q.search import rescore


@pytest.fixture
def h2q(cli_runner):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    return cli_runner(("index",))


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.random((5, 32)) < 0.5
    db_bits = centres[rng.integers(0, 5, 400)] ^ (rng.random((400, 32)) < 0.05)
    q_bits = centres[rng.integers(0, 5, 9)] ^ (rng.random((9, 32)) < 0.05)
    paths = {
        "db": tmp_path / "db.npy",
        "q": tmp_path / "q.npy",
        "dbv": tmp_path / "dbv.npy",
        "qv": tmp_path / "qv.npy",
    }
    np.save(paths["db"], pack_bits(db_bits))
    np.save(paths["q"], pack_bits(q_bits))
    np.save(paths["dbv"], rng.standard_normal((400, 6)).astype(np.float32))
    np.save(paths["qv"], rng.standard_normal((9, 6)).astype(np.float32))
    return paths


@pytest.mark.parametrize("method", ["mih", "flat"])
def test_build_then_search_matches_the_library(h2q, files, tmp_path, method):
    index_path, result = tmp_path / "index.npz", tmp_path / "res.npz"
    status, out, err = h2q(
        "index", "build", "--codes", files["db"], "--out", index_path, "--method", method
    )
    assert status == 0, err
    assert f"built a {method} index of 400 32-bit codes" in out
    status, out, err = h2q(
        "index", "search", "--index", index_path, "--queries", files["q"], "-k", 25, "--out", result
    )
    assert status == 0, err
    flat = HammingIndex(32, backend="numpy")
    flat.add(np.load(files["db"]))
    D, I = flat.search(np.load(files["q"]), 25)
    with np.load(result) as r:
        np.testing.assert_array_equal(r["D"], D)
        np.testing.assert_array_equal(r["I"], I)
    radius_search = ("index", "search", "--index", index_path, "--queries", files["q"])
    radius_search += ("--radius", 3, "--out", result)
    status, _, err = h2q(*radius_search)  # the project's policy: an existing output needs --force
    assert status == 2 and "already exists" in err, err
    status, _, err = h2q(*radius_search, "--force")
    assert status == 0, err
    expected = flat.range_search(np.load(files["q"]), 3)
    with np.load(result) as r:
        for name, value in zip(("lims", "D", "I"), expected, strict=True):
            np.testing.assert_array_equal(r[name], value)


def test_search_with_rescore(h2q, files, tmp_path):
    index_path, result = tmp_path / "index.npz", tmp_path / "res.npz"
    assert h2q("index", "build", "--codes", files["db"], "--out", index_path)[0] == 0
    status, out, err = h2q(
        "index",
        "search",
        "--index",
        index_path,
        "--queries",
        files["q"],
        "-k",
        5,
        "--rescore",
        40,
        "--query-vectors",
        files["qv"],
        "--database-vectors",
        files["dbv"],
        "--metric",
        "l2",
        "--out",
        result,
    )
    assert status == 0, err
    assert "rescored from the top 40" in out
    flat = HammingIndex(32, backend="numpy")
    flat.add(np.load(files["db"]))
    _, short = flat.search(np.load(files["q"]), 40)
    _, expected = rescore(short, np.load(files["qv"]), np.load(files["dbv"]), 5, "l2")
    with np.load(result) as r:
        np.testing.assert_array_equal(r["I"], expected)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--radius", "-1"], "radius must be an integer >= 0"),
        (["-k", "5", "--rescore", "10"], "needs --query-vectors"),
        (["--radius", "2", "--rescore", "10"], "--radius takes neither"),
        (["-k", "401"], "k=401 exceeds the 400 items in the index; pass -k <= 400."),
        (["-k", "1000000000"], "k=1000000000 exceeds the 400 items in the index; pass -k <="),
    ],
)
def test_search_errors_exit_2(h2q, files, tmp_path, argv, match):
    index_path = tmp_path / "index.npz"
    assert h2q("index", "build", "--codes", files["db"], "--out", index_path)[0] == 0
    status, _, err = h2q(
        "index",
        "search",
        "--index",
        index_path,
        "--queries",
        files["q"],
        "--out",
        tmp_path / "r.npz",
        *argv,
    )
    assert status == 2 and match in err and "Traceback" not in err
    assert not (tmp_path / "r.npz").exists()


def test_a_multi_fold_npz_is_refused_without_naming_a_missing_option(h2q, files, tmp_path):
    """`h2q index` has no --fold: the error asks for a one-matrix file instead."""
    emb = tmp_path / "emb.npz"
    dbv = np.load(files["dbv"])
    np.savez(emb, train=dbv, database=dbv)
    status, _, err = h2q(
        "index", "build", "--codes", files["db"], "--out", tmp_path / "i.npz", "--features", emb
    )
    assert status == 2 and "--fold" not in err and "one matrix is expected" in err, err
    assert "Traceback" not in err


def test_build_errors_exit_2(h2q, files, tmp_path):
    status, _, err = h2q(
        "index",
        "build",
        "--codes",
        files["db"],
        "--out",
        tmp_path / "i.npz",
        "--method",
        "flat",
        "--substrings",
        "3",
    )
    assert status == 2 and "--substrings applies to --method mih" in err
    status, _, err = h2q(
        "index", "build", "--codes", files["db"], "--out", tmp_path / "i.npz", "--substrings", "1"
    )
    assert status == 2 and "m=1 substrings" in err
    status, _, err = h2q(
        "index",
        "search",
        "--index",
        files["db"],
        "--queries",
        files["q"],
        "-k",
        "3",
        "--out",
        tmp_path / "r.npz",
    )
    assert status == 2 and "error" in err


def _craft(index_path, out, **changes):
    """A copy of a saved index with some arrays replaced (its h2q header kept)."""
    with np.load(index_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(changes)
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("method", ["mih", "flat"])
def test_bad_index_files_are_one_line_errors(h2q, files, tmp_path, method):
    index_path = tmp_path / "index.npz"
    argv = ["--codes", files["db"], "--out", index_path, "--method", method]
    assert h2q("index", "build", *argv, "--features", files["dbv"])[0] == 0
    with np.load(index_path) as archive:
        codes, features = archive["codes"], archive["features"]
    nan = features.copy()
    nan[3, 1] = np.nan
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    cases = [
        (["--index", files["db"]], "is a single numpy array (.npy), not an h2q file"),
        (
            ["--index", _craft(index_path, tmp_path / "int16.npz", codes=codes.astype(np.int16))],
            "re-create it",
        ),  # fmt: skip
        (["--index", _craft(index_path, tmp_path / "nan.npz", features=nan)], "re-create it"),
        (["--index", index_path, "--queries", objects], "array of Python objects"),
    ]
    for extra, match in cases:
        base = {"--index": index_path, "--queries": files["q"]}
        for option, value in zip(extra[::2], extra[1::2], strict=True):
            base[option] = value
        flat = [str(a) for pair in base.items() for a in pair]
        status, _, err = h2q("index", "search", *flat, "-k", 3, "--out", tmp_path / "r.npz")
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1, err
        assert match.lower() in lines[0].lower(), err
    assert not (tmp_path / "r.npz").exists()


@pytest.fixture
def float_files(tmp_path):
    from h2q.quantizers import RandomRotationQuantizer

    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 24)).astype(np.float32)
    paths = {"x": tmp_path / "x.npy", "q": tmp_path / "xq.npy", "quantizer": tmp_path / "rr.npz"}
    np.save(paths["x"], X)
    np.save(paths["q"], X[:7] + 0.1 * rng.standard_normal((7, 24)).astype(np.float32))
    RandomRotationQuantizer().fit(X).save(paths["quantizer"])
    return paths


def test_asymmetric_build_then_search_matches_the_library(h2q, float_files, tmp_path):
    from h2q import AsymmetricIndex
    from h2q.quantizers import load_quantizer

    index_path, result = tmp_path / "asym.npz", tmp_path / "res.npz"
    build = ("index", "build", "--scoring", "asymmetric", "--vectors", float_files["x"])
    build += ("--quantizer", float_files["quantizer"], "--out", index_path)
    status, out, err = h2q(*build, "--bits-per-dim", 2, "--keep-vectors", "--centroids", 3)
    assert status == 0, err
    assert "built an asymmetric index of 300 items" in out
    search = ("index", "search", "--index", index_path, "--queries", float_files["q"])
    status, _, err = h2q(*search, "-k", 10, "--rescore", 30, "--out", result)
    assert status == 0, err
    index = AsymmetricIndex(
        load_quantizer(float_files["quantizer"]), bits_per_dim=2, keep_vectors=True, n_centroids=3
    )
    index.add(np.load(float_files["x"]))
    S, I = index.search(np.load(float_files["q"]), 10, rescore=30)
    with np.load(result) as r:
        np.testing.assert_array_equal(r["I"], I)
        np.testing.assert_array_equal(r["D"], S)
        assert (r["I"][:, 0] == np.arange(7)).all()  # each query's own row is its best match
    status, _, err = h2q(*search, "-k", 301, "--out", tmp_path / "r2.npz")
    assert status == 2 and "k=301 exceeds the 300 items in the index; pass -k <= 300." in err
    status, _, err = h2q(*build[:-2], "--out", tmp_path / "x2.npz", "--codes", float_files["x"])
    assert status == 2 and "drop --codes" in err
    status, _, err = h2q("index", "build", "--scoring", "asymmetric", "--out", tmp_path / "y.npz")
    assert status == 2 and "needs --vectors" in err and "Traceback" not in err
