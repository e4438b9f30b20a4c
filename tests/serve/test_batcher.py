"""The batching search thread: batched answers equal one-at-a-time answers."""

from __future__ import annotations

import threading
import time

import numpy as np

from h2q.search import HammingIndex
from h2q.serve.batcher import Batcher


def _index(n_bits=64, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    index = HammingIndex(n_bits, backend="numpy")
    index.add(rng.integers(0, 256, size=(n, n_bits // 8), dtype=np.uint8))
    return index, rng


def test_waiting_requests_run_together_and_each_gets_its_own_top_k():
    index, rng = _index()
    other, _ = _index(seed=1)
    gate = threading.Event()

    def slow_search(q, k):  # holds the thread so that the next requests queue up
        gate.wait(10)
        return index.search(q, k)

    batcher = Batcher(max_rows=64, n_threads=1)
    batcher.start()
    try:
        first = batcher.submit(slow_search, rng.integers(0, 256, (1, 8), dtype=np.uint8), 3)
        time.sleep(0.05)
        queries = [rng.integers(0, 256, (1 + i % 3, 8), dtype=np.uint8) for i in range(12)]
        ks = [1, 5, 10, 17, 2, 40, 3, 9, 8, 1, 30, 12]
        searches = [index.search if i % 4 else other.search for i in range(12)]
        futures = [batcher.submit(s, q, k) for s, q, k in zip(searches, queries, ks, strict=False)]
        gate.set()
        first.result(10)
        for s, q, k, f in zip(searches, queries, ks, futures, strict=False):
            D, I = f.result(10)
            D_ref, I_ref = s(q, k)  # the same search alone, with its own k
            np.testing.assert_array_equal(I, I_ref)
            np.testing.assert_array_equal(D, D_ref)
        # 13 requests: the slow first one, then one call per index for the 12 waiting
        assert batcher.calls == 3 and batcher.rows == 1 + sum(len(q) for q in queries)
    finally:
        batcher.stop()


def test_an_error_goes_to_each_waiting_request_and_the_thread_goes_on():
    index, rng = _index()
    batcher = Batcher()
    batcher.start()
    try:
        bad = batcher.submit(index.search, np.zeros((1, 3), dtype=np.uint8), 2)  # wrong width
        try:
            bad.result(10)
        except ValueError as exc:
            assert "8" in str(exc)
        else:
            raise AssertionError("a bad query must fail")
        q = rng.integers(0, 256, (2, 8), dtype=np.uint8)
        np.testing.assert_array_equal(
            batcher.submit(index.search, q, 4).result(10)[1], index.search(q, 4)[1]
        )
    finally:
        batcher.stop()


def test_requests_after_stop_are_refused_not_left_waiting():
    index, rng = _index()
    batcher = Batcher()
    batcher.start()
    batcher.stop()
    future = batcher.submit(index.search, rng.integers(0, 256, (1, 8), dtype=np.uint8), 1)
    batcher.stop()
    assert isinstance(future.exception(1), RuntimeError)


def test_searches_and_encodes_apply_the_thread_limit_once(served_files, monkeypatch):
    """Under the command's limit (as `h2q serve --threads 1` runs), the search thread sets the
    limit once; encoding and scanning in it then never re-apply it (milliseconds each)."""
    from h2q import _threads
    from h2q.serve import load_files

    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    catalog = load_files(served_files["quantizer"], served_files["database"])
    (served,) = catalog.indexes.values()
    X = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    calls = []
    real = _threads._limited

    def counting(n, parallel_kernels):
        calls.append(n)
        return real(n, parallel_kernels)

    expected = served.search(served.quantizer.encode(X), 4)[1]
    monkeypatch.setattr(_threads, "_limited", counting)
    with _threads.thread_limit(1):  # the CLI's block around the whole command
        batcher = Batcher(n_threads=1)
        batcher.start()
        try:
            for _ in range(5):
                D, I = batcher.submit(served.search_vectors, X, 4).result(30)
                np.testing.assert_array_equal(I, expected)
        finally:
            batcher.stop()
    assert calls == [1, 1]  # the command's block and the search thread's, nothing per search
