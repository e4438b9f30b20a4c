"""kill -9 under load, restart: the same answers, and no file touched."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from h2q.serve.launch import ServerProcess, post_json


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _answers(url, items):
    return [post_json(url + "/api/search", {"id": i, "k": 15}) for i in items]


@pytest.mark.slow
def test_kill_9_under_load_then_restart_gives_the_same_results(served_files):
    args = [
        "--quantizer",
        served_files["quantizer"],
        "--database",
        served_files["database"],
        "--embeddings",
        served_files["embeddings"],
    ]
    before_files = _hashes(served_files["root"])
    items = list(range(0, 600, 37))
    server = ServerProcess(args).start()
    try:
        before = _answers(server.url, items)
        assert all(status == 200 for status, _ in before)
        sent, stop = [0], threading.Event()

        def load():
            while not stop.is_set():
                try:
                    post_json(server.url + "/api/search", {"id": sent[0] % 600, "k": 10}, 5)
                    sent[0] += 1
                except OSError:
                    return  # the server is gone: expected once killed

        workers = [threading.Thread(target=load) for _ in range(6)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 30
        while sent[0] < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent[0] >= 100, "the load never reached the server"
        port = server.port
        server.kill()  # SIGKILL in the middle of the load: no shutdown code runs
        stop.set()
        for w in workers:
            w.join(10)
        assert server.proc.returncode == -9
        server = ServerProcess(args).start(port=port)  # the same port, free again at once
        after = _answers(server.url, items)
    finally:
        server.stop()
    assert [b["results"] for _, b in after] == [b["results"] for _, b in before]
    assert _hashes(served_files["root"]) == before_files  # nothing written, nothing left over


def test_sigterm_stops_cleanly(served_files):
    args = ["--quantizer", served_files["quantizer"], "--database", served_files["database"]]
    server = ServerProcess(args).start()
    assert server.stop() == 0
    assert "h2q serve: stopped" in "".join(server.output)
