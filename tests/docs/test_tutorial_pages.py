"""The tutorial pages run as written: every python and bash block, in order, on small data."""

from __future__ import annotations

import numpy as np
import pytest

from ._pages import blocks, read, run_page

pytest.importorskip("sklearn", reason="the tutorial loads scikit-learn's digits (h2q[data])")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 30)  # keep it fast
    return tmp_path


def test_tutorial_runs_as_written(workdir, capsys):
    text = read("docs/tutorial.md")
    languages = [language for language, _ in blocks(text)]
    assert languages.count("python") >= 4 and languages.count("bash") == 1
    ns = run_page(text, "docs/tutorial.md", capsys)
    # what the comments say
    assert ns["db_codes"].dtype == np.uint8 and ns["db_codes"].shape == (len(ns["X_db"]), 4)
    assert ns["D"].shape == ns["I"].shape == (len(ns["X_query"]), 10)
    assert ns["q"].n_bits_ == 32
    assert sorted(ns["data"].keys()) == sorted(
        ["train", "val", "query", "database", "y_query", "y_database"]
    )
    assert [row.method for row in ns["table"].rows] == ["sign", "ITQ", "H2Q"]
    with np.load(workdir / "result.npz") as result:
        assert result["I"].shape == (len(ns["X_query"]), 10)
    assert (workdir / "eval" / "table.md").is_file()


def test_search_page_runs_as_written(workdir, capsys):
    text = read("docs/search.md")
    ns = run_page(text, "docs/search.md", capsys)
    from h2q import HammingIndex

    flat = HammingIndex(64, backend="numpy")
    flat.add(ns["db_codes"])
    D_ref, I_ref = flat.search(ns["query_codes"], 100)
    mih = ns["index"]
    D, I = mih.search(ns["query_codes"], 100)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, I_ref)
    assert ns["S"].shape == ns["I"].shape == (20, 10)
    with np.load(workdir / "rescored.npz") as result:
        np.testing.assert_array_equal(result["I"], ns["I"])
    with np.load(workdir / "result.npz") as result:
        np.testing.assert_array_equal(result["D"], D_ref)
