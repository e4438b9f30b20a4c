"""Loading what a server serves (in-process): files, run and results folders, index kinds."""

from __future__ import annotations

import numpy as np
import pytest

from h2q.serve import load_files, load_folder, load_results, load_run
from h2q.serve.app import SearchRequest
from h2q.serve.errors import ApiError
from h2q.serve.items import ItemStore
from h2q.serve.queries import query_rows


def _popcount_topk(codes, query, k):
    d = (np.unpackbits(codes, axis=1) != np.unpackbits(query)).sum(1)
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return d[order], order


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_files_serve_the_exact_ranking(served_files, kind):
    catalog = load_files(
        served_files["quantizer"], served_files["database"], served_files["embeddings"], kind=kind
    )
    (served,) = catalog.indexes.values()
    assert served.kind == kind and served.ntotal == 600
    for item in (0, 17, 599):
        queries, encode = query_rows(served, SearchRequest(id=item, k=12))
        assert not encode
        D, I = served.search(queries, 12)
        D_ref, I_ref = _popcount_topk(served.codes, served.codes[item], 12)
        np.testing.assert_array_equal(I[0], I_ref)
        np.testing.assert_array_equal(D[0], D_ref)
    y = np.load(served_files["embeddings"])["y_database"]
    assert catalog.items.labels_of(np.array([3, 4])) == y[[3, 4]].tolist()


def test_database_codes_encoded_from_embeddings_when_no_file(served_files):
    from_file = load_files(served_files["quantizer"], served_files["database"])
    encoded = load_files(served_files["quantizer"], None, served_files["embeddings"])
    a, b = (next(iter(c.indexes.values())).codes for c in (from_file, encoded))
    np.testing.assert_array_equal(a, b)


def test_results_folder_serves_the_kept_quantizers_with_pictures(demo_cache):
    from h2q.quantizers import load_quantizer

    root = demo_cache / "serve-demo"
    catalog = load_results(root)
    assert list(catalog.indexes) == ["lambda0", "itq", "h2q-l2"]
    assert catalog.items.kind == "image" and catalog.items.dataset.name == "digits"
    emb = np.load(root / "runs/dpsh/lambda0/b16/s0/embeddings.npz")
    itq = load_quantizer(root / "cells/dpsh/itq/b16-s0.quantizer.npz")
    np.testing.assert_array_equal(catalog.indexes["itq"].codes, itq.encode(emb["database"]))
    split = np.load(root / "runs/dpsh/lambda0/b16/s0/split.npz")
    assert catalog.items.label(7) == int(catalog.items.dataset.y[split["database"][7]])
    assert catalog.items.label(7) == int(emb["y_database"][7])
    assert catalog.items.png(7).startswith(b"\x89PNG")
    with pytest.raises(FileNotFoundError, match="no finished lambda = 0 run for dpsh, 64 bits"):
        load_results(root, bits=64)


def test_run_folder_fits_sign_itq_and_h2q(demo_cache):
    run = demo_cache / "serve-demo/runs/dpsh/lambda0/b16/s0"
    catalog = load_folder(run)
    assert list(catalog.indexes) == ["lambda0", "itq", "h2q-l2"]
    from h2q.codes import encode_sign

    emb = np.load(run / "embeddings.npz")
    np.testing.assert_array_equal(  # lambda = 0: the sign of the embeddings
        catalog.indexes["lambda0"].codes, encode_sign(emb["database"])
    )
    assert catalog.items.kind == "image"
    with pytest.raises(ValueError, match="--bits picks a run of a results folder"):
        load_folder(run, bits=16)
    assert load_run(run).ntotal == len(emb["database"])


def test_items_text_and_multi_hot():
    from h2q.data import Dataset

    data = Dataset(
        "toy", ["a cat", "a dog", "a car"], np.array([0, 1, 2]), "text", ["c0", "c1", "c2"]
    )
    labels = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.uint8)
    items = ItemStore(
        labels=labels, class_names=["x", "y", "z"], dataset=data, source_ids=np.array([2, 0])
    )
    assert items.kind == "text" and items.png(0) is None
    assert items.describe(0) == {
        "id": 0,
        "label": [0, 2],
        "class_names": ["x", "z"],
        "text": "a car",
        "source": {"dataset": "toy", "index": 2},
    }


def test_image_thumbnail_keeps_the_pixels():
    import io

    from PIL import Image

    from h2q.data import Dataset

    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8), dtype=np.uint8)
    data = Dataset("toy", pixels, np.array([0, 1]), "image", ["a", "b"])
    items = ItemStore(labels=np.array([1, 0]), dataset=data, source_ids=np.array([1, 0]))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(items.png(0)))), pixels[1])


def test_asymmetric_kind_serves_float_queries(served_files):
    from h2q import AsymmetricIndex

    catalog = load_files(
        served_files["quantizer"], None, served_files["embeddings"], kind="asymmetric"
    )
    (served,) = catalog.indexes.values()
    assert isinstance(served.index, AsymmetricIndex)
    assert served.scoring == "asymmetric-ip" and not served.takes_codes
    X = np.load(served_files["embeddings"])["database"]
    q, encode = query_rows(served, SearchRequest(vector=X[5].tolist(), k=3))
    assert not encode and q.dtype == np.float32 and q.shape == (1, X.shape[1])  # floats
    reference = AsymmetricIndex(served.quantizer, metric="ip")
    reference.add(X)
    S, I = served.search(q, 3)
    S_ref, I_ref = reference.search(X[[5]], 3)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(S, S_ref)
    np.testing.assert_array_equal(query_rows(served, SearchRequest(id=5))[0], X[[5]])
    with pytest.raises(ApiError, match="scores float queries; pass vector or id"):
        query_rows(served, SearchRequest(code="00" * 4))


def test_demo_serves_the_main_jobs_results_when_present(demo_cache, tmp_path):
    from h2q.serve import demo_catalog

    catalog = demo_catalog(results=demo_cache / "serve-demo", cache=tmp_path / "digits")
    assert list(catalog.indexes) == ["lambda0", "itq", "h2q-l2"]
    assert not (tmp_path / "digits").exists()  # no digits run was needed


def test_demo_falls_back_to_digits_without_usable_results(demo_cache, tmp_path):
    import shutil

    from h2q.serve import demo_catalog

    kept = tmp_path / "results"  # the kept tables of a reproduction, without its runs
    kept.mkdir()
    shutil.copy(demo_cache / "serve-demo" / "grid.json", kept / "grid.json")
    digits = tmp_path / "digits"
    shutil.copytree(demo_cache / "serve-demo", digits)  # a finished digits run: reused
    catalog = demo_catalog(results=kept, cache=digits)
    assert catalog.items.dataset.name == "digits" and catalog.ntotal == 397
