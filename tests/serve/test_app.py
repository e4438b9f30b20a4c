"""The JSON API against a live ``h2q serve`` (uvicorn on 127.0.0.1, a free port)."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from h2q.serve.launch import post_json

N_DB, N_FEATURES = 600, 32  # the served_files fixture's sizes


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers, response.read()


@pytest.fixture(scope="module")
def reference(served_files):
    """The same search in-process, the obviously-correct way: a numpy popcount scan."""
    from h2q.quantizers import load_quantizer

    q = load_quantizer(served_files["quantizer"])
    codes = np.load(served_files["database"])["codes"]
    emb = np.load(served_files["embeddings"])

    def search(query_codes: np.ndarray, k: int):
        bits = np.unpackbits(codes, axis=1)
        out = []
        for qc in query_codes:
            d = (bits != np.unpackbits(qc)).sum(1)
            order = np.lexsort((np.arange(len(d)), d))[:k]  # distance, then id
            out.append((d[order].tolist(), order.tolist()))
        return out

    return {"q": q, "codes": codes, "X": emb["database"], "y": emb["y_database"], "search": search}


def test_healthz_and_indexes(files_server):
    status, _, body = _get(files_server.url + "/healthz")
    assert status == 200 and json.loads(body)["ntotal"] == N_DB
    info = json.loads(_get(files_server.url + "/api/indexes")[2])
    (index,) = info["indexes"]
    assert index == {
        "name": "q",
        "kind": "flat",
        "n_bits": 32,
        "ntotal": N_DB,
        "scoring": "hamming",
        "n_features": N_FEATURES,
        "description": "ITQQuantizer",
    }
    assert info["items"] == {"kind": None, "labels": True}


@pytest.mark.parametrize("k", [1, 10, 37])
@pytest.mark.parametrize("item", [0, 5, N_DB - 1])
def test_search_by_id_matches_reference(files_server, reference, k, item):
    status, body = post_json(files_server.url + "/api/search", {"id": item, "k": k})
    assert status == 200, body
    (row,) = body["results"]
    D, I = reference["search"](reference["codes"][[item]], k)[0]
    assert row["ids"] == I and row["scores"] == D
    assert row["ids"][0] == item and row["scores"][0] == 0  # an item is its own nearest
    assert row["labels"] == reference["y"][I].tolist()
    assert body["index"] == "q" and body["scoring"] == "hamming" and body["took_ms"] > 0


def test_search_by_vectors_code_and_ids(files_server, reference):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, N_FEATURES)).astype(np.float32)
    codes = reference["q"].encode(X)
    expected = reference["search"](codes, 8)
    url = files_server.url + "/api/search"
    status, body = post_json(url, {"vectors": X.tolist(), "k": 8})
    assert status == 200 and [[r["scores"], r["ids"]] for r in body["results"]] == [
        list(e) for e in expected
    ]
    status, body = post_json(url, {"vector": X[1].tolist(), "k": 8})
    assert [body["results"][0]["scores"], body["results"][0]["ids"]] == list(expected[1])
    status, body = post_json(url, {"code": codes[2].tobytes().hex(), "k": 8, "index": "q"})
    assert [body["results"][0]["scores"], body["results"][0]["ids"]] == list(expected[2])
    status, body = post_json(url, {"ids": [4, 2], "k": 3})
    assert [r["ids"] for r in body["results"]] == [
        e[1] for e in reference["search"](reference["codes"][[4, 2]], 3)
    ]


def test_k_equal_to_ntotal_is_served_and_above_is_refused(files_server):
    url = files_server.url + "/api/search"
    status, body = post_json(url, {"id": 0, "k": N_DB})
    assert status == 200 and sorted(body["results"][0]["ids"]) == list(range(N_DB))
    status, body = post_json(url, {"id": 0, "k": N_DB + 1})
    assert status == 422
    assert (
        body["detail"] == f"k={N_DB + 1} exceeds the {N_DB} items in the index; pass k <= {N_DB}."
    )


def test_item_description(files_server, reference):
    status, _, body = _get(files_server.url + "/api/items/7")
    item = json.loads(body)
    assert status == 200 and item["id"] == 7 and item["label"] == int(reference["y"][7])


def test_concurrent_requests_all_succeed_and_match(files_server, reference):
    """Requests from 8 threads at once are batched by the server; each gets its own answer."""
    url = files_server.url + "/api/search"
    items = list(range(0, N_DB, 7))
    ks = [1 + i % 13 for i in range(len(items))]

    def one(pair):
        return post_json(url, {"id": pair[0], "k": pair[1]})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, zip(items, ks, strict=False)))
    assert [s for s, _ in answers] == [200] * len(items)
    for (item, k), (_, body) in zip(zip(items, ks, strict=False), answers, strict=False):
        D, I = reference["search"](reference["codes"][[item]], k)[0]
        assert body["results"][0]["ids"] == I and body["results"][0]["scores"] == D


def test_openapi_documents_the_search(files_server):
    schema = json.loads(_get(files_server.url + "/openapi.json")[2])
    assert "/api/search" in schema["paths"] and "SearchRequest" in schema["components"]["schemas"]
