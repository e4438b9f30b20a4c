"""Run ``h2q serve`` in a child process and wait until it answers (tests, benchmarks, scripts).

:class:`ServerProcess` starts ``python -m h2q.cli.main serve ARGS --port 0``, reads the address
from the line the server prints once its socket is open, and waits for ``/healthz``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

__all__ = ["ServerProcess", "post_json"]

_ADDRESS = re.compile(r"at (http://[^\s/]+)/")


def post_json(url: str, body: Any, timeout: float = 30.0) -> tuple[int, Any]:
    """POST ``body`` as JSON; ``(status, decoded JSON answer)`` (also for 4xx/5xx answers)."""
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


class ServerProcess:
    """``h2q serve *args`` in a child process (a context manager).

    Parameters
    ----------
    args : sequence of str
        Arguments after ``serve`` (without ``--port``: a free port is picked).
    env : dict, optional
        Extra environment variables.
    cwd : path-like, optional
        Working folder of the server.
    startup_timeout : float
        Seconds to wait for the server to answer ``/healthz``.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT`` once started.
    output : list of str
        Lines the server printed (stdout and stderr).
    """

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        startup_timeout: float = 300,
    ) -> None:
        self.args = [str(a) for a in args]
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.url = ""
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._found = threading.Event()

    def start(self, port: int = 0) -> ServerProcess:
        """Start the server on ``port`` (0: a free one) and wait until it answers."""
        argv = [sys.executable, "-m", "h2q.cli.main", "serve", *self.args, "--port", str(port)]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("h2q serve did not start:\n" + "".join(self.output[-30:]))
        self._wait_healthy(deadline)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            match = _ADDRESS.search(line)
            if match and not self._found.is_set():
                self.url = match.group(1)
                self._found.set()

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL the server (no shutdown at all) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM the server and wait for it; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
