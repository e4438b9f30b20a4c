"""One search thread for the whole service, which runs the queries waiting together.

Requests arrive on the event loop's thread; each one's queries go to the :class:`Batcher`,
whose one thread runs every request waiting at that moment, one call per index (the compiled
scan reads the database once per block of queries, so eight waiting queries cost little more
than one). The top ``K = max(k)`` of a call is cut to each request's ``k``: the ranking is a
total order (score, then id), so the first ``k`` of the top ``K`` are the top ``k``.

One thread means the service never runs two scans at once: the scan's own threads (numba's,
limited once for the thread's life by :func:`h2q._threads.thread_limit`) are the only
parallelism, so the HTTP server's threads and the scan's never fight over the cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from .._threads import thread_limit

__all__ = ["Batcher"]

SearchFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class _Job:
    search: SearchFn
    queries: np.ndarray
    k: int
    future: Future


class Batcher:
    """Run ``search(queries, k) -> (D, I)`` calls in one thread, batching waiting requests.

    Parameters
    ----------
    max_rows : int
        Most query rows taken from the queue at once; a single request with more rows runs
        alone.
    n_threads : int, optional
        Thread limit of the search thread (:func:`h2q._threads.thread_limit`).

    Attributes
    ----------
    calls, rows : int
        Search calls made and query rows they held (``rows / calls`` is the mean batch).
    """

    def __init__(self, max_rows: int = 64, n_threads: int | None = None) -> None:
        self._max_rows = max_rows
        self._n_threads = n_threads
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.calls = 0
        self.rows = 0

    def start(self) -> None:
        """Start the search thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="h2q-search", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the requests queued before this call and end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        while True:  # anything queued after the stop: refused, never left waiting
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.set_exception(RuntimeError("the search service is shutting down"))

    def submit(self, search: SearchFn, queries: np.ndarray, k: int) -> Future:
        """Queue ``search(queries, k)``; the future gives ``(D, I)`` of shape ``(n, k)``.

        Requests with the same ``search`` (the same index) that wait together run as one call.
        """
        future: Future = Future()
        self._queue.put(_Job(search, queries, k, future))
        return future

    def _take(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job and those waiting behind it, up to ``max_rows`` rows in all."""
        jobs, rows = [first], len(first.queries)
        while rows < self._max_rows:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            rows += len(job.queries)
        return jobs, False

    def _run(self) -> None:
        with thread_limit(self._n_threads, parallel_kernels=True):  # the scans run here
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    return
                jobs, stop = self._take(first)
                groups: dict[SearchFn, list[_Job]] = {}
                for job in jobs:  # bound methods of the same index compare equal
                    groups.setdefault(job.search, []).append(job)
                for group in groups.values():
                    self._run_group(group)

    def _run_group(self, jobs: list[_Job]) -> None:
        """One search call for jobs of the same index; each future gets its rows."""
        k = max(job.k for job in jobs)
        try:
            parts = [job.queries for job in jobs]
            queries = np.concatenate(parts) if len(parts) > 1 else parts[0]
            D, I = jobs[0].search(queries, k)
        except Exception as exc:  # handed to each waiting request, which answers it
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.calls += 1
        self.rows += len(queries)
        start = 0
        for job in jobs:
            stop = start + len(job.queries)
            job.future.set_result((D[start:stop, : job.k], I[start:stop, : job.k]))
            start = stop
