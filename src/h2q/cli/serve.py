"""``h2q serve``: a search service over fitted quantizers, with a page to look at the results.

Three ways to start it: from files (``--quantizer`` / ``--database`` / ``--embeddings``), from a
run or results folder (``h2q serve FOLDER``), or ``--demo``. The indexes are loaded before the
socket opens; the server then answers until SIGTERM or Ctrl-C (a clean shutdown either way).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

from ..search.registry import INDEX_KINDS
from ._args import add_threads_option, positive_int
from ._errors import UsageError

_THREADS_WHY = (
    "one search thread serves every index; its scans on 2 threads answered more queries per "
    "second than on 1 at concurrency 1, 8 and 32 on a quiet 2-core machine "
    "(benchmarks/results/bench_serve.md); on a busy machine 1 leaves a core to the HTTP server"
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve k-NN search over HTTP (JSON API and a page at /)",
        description="Serve search over fitted quantizers: a JSON API (POST /api/search, GET "
        "/api/indexes, /api/items/ID, /healthz; described at /docs) and a page at / that "
        "shows the top k under each quantizer side by side. Start it from files, from a run "
        "or results FOLDER, or with --demo. Needs the serve extra: pip install 'h2q[serve]'.",
    )
    p.add_argument(
        "folder",
        nargs="?",
        metavar="FOLDER",
        help="a `h2q train` run folder or a `h2q reproduce` results folder",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="serve ./results of `h2q reproduce` when present, else fit a small digits run",
    )
    p.add_argument("--quantizer", metavar="Q.npz", help="quantizer of `h2q fit`")
    p.add_argument("--database", metavar="DB.npz", help="database codes of `h2q encode`")
    p.add_argument(
        "--embeddings", metavar="EMB.npz", help="a run's embeddings.npz (labels, pictures)"
    )
    p.add_argument(
        "--index",
        default="flat",
        choices=tuple(INDEX_KINDS),
        help="flat: exact scan (default); mih: exact multi-index hashing (faster on clustered "
        "codes); asymmetric: float queries scored against the codes (needs h2q.AsymmetricIndex)",
    )
    p.add_argument("--method", help="results folder: the stage-1 method (default: the first)")
    p.add_argument("--bits", type=positive_int, help="results folder: code length (default: max)")
    p.add_argument("--seed", type=int, help="results folder: seed (default: the first)")
    p.add_argument("--data-root", metavar="DIR", help="data folder of the run's data set")
    p.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8765, help="default: 8765; 0 picks a free port")
    p.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=1 << 20,
        help="refuse larger request bodies with 413 (default: 1 MiB)",
    )
    add_threads_option(p, 2, _THREADS_WHY)
    p.set_defaults(func=_run)


def _check_mode(args: argparse.Namespace) -> str:
    files = args.quantizer is not None or args.database is not None
    modes = [m for m, on in (("folder", args.folder), ("demo", args.demo), ("files", files)) if on]
    if len(modes) != 1:
        raise UsageError(
            "pass one of FOLDER, --demo, or --quantizer/--database"
            + (f" (got {' and '.join(modes)})" if modes else "")
            + "; see h2q serve --help."
        )
    mode = modes[0]
    picks = [o for o in ("method", "bits", "seed") if getattr(args, o) is not None]
    if picks and mode != "folder":
        raise UsageError(f"--{picks[0]} picks a run of a results FOLDER; drop it here.")
    if args.embeddings is not None and mode != "files":
        raise UsageError("--embeddings goes with --quantizer/--database; a folder has its own.")
    return mode


def _catalog(args: argparse.Namespace, mode: str) -> Any:
    from ..serve import demo_catalog, load_files, load_folder

    if mode == "demo":
        return demo_catalog(kind=args.index, progress=True)
    if mode == "folder":
        return load_folder(
            args.folder,
            method=args.method,
            bits=args.bits,
            seed=args.seed,
            kind=args.index,
            data_root=args.data_root,
        )
    return load_files(
        args.quantizer, args.database, args.embeddings, kind=args.index, data_root=args.data_root
    )


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port number; pass 0 to 65535.")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host} cannot be resolved ({exc}); pass an address.") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port (0 picks a "
            "free one)."
        ) from None
    return sock


def _run(args: argparse.Namespace) -> int:
    import importlib.util

    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            raise ImportError(
                f"h2q serve needs {module}; install the serve extra: pip install 'h2q[serve]'.",
                name=module,
            )
    import uvicorn

    from .._threads import resolve_n_threads
    from ..serve import create_app

    mode = _check_mode(args)
    sock = _bind(args.host, args.port)
    catalog = _catalog(args, mode)
    n_threads = resolve_n_threads(args.threads) or 1
    app = create_app(catalog, n_threads=n_threads, max_body_bytes=args.max_body_bytes)
    host, port = sock.getsockname()[:2]
    names = ", ".join(catalog.indexes)
    print(
        f"serving {len(catalog.indexes)} index(es) of {catalog.ntotal} items ({names}) at "
        f"http://{host}:{port}/ (API: /docs); Ctrl-C or SIGTERM stops",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    with _quiet_after_shutdown():
        uvicorn.Server(config).run(sockets=[sock])
    print("h2q serve: stopped", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _quiet_after_shutdown() -> Iterator[None]:
    """Exit status 0 after a shutdown by SIGTERM or Ctrl-C.

    Note: uvicorn shuts down cleanly on those signals, then raises the signal again to the
    handler that was there before it started; that handler is this one, which ignores it.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda *_: None) for s in signals}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
