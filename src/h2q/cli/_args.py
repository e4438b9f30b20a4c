"""Argument types and options shared by the sub-commands."""

from __future__ import annotations

import argparse
from typing import Any

#: ``--threads`` default of the stage-2 commands (fit, encode, search, evaluate). Measured on
#: a 2-core machine shared with other jobs (benchmarks/results/bench_contention.md): ``h2q fit``
#: on the digits embeddings took 3.7 s idle and 5.7 s beside a 2-thread torch job on one
#: thread, against 7.7 s and 9.6 s (worst 15.9 s) on both cores; fit on 20,000 x 64 and encode
#: had medians within 1.3x of their idle time beside that job. These problems are too small to
#: gain from more threads.
STAGE2_THREADS = 1


def train_threads() -> int:
    """``--threads`` default of ``h2q train``: half the cores this process may use, at least 1.

    Measured on a 2-core machine: one thread ran the digits training at 0.73 s/epoch against
    4.7 s/epoch with torch's default pool (2 threads) beside another job (and 5.9-8.3 s against
    12.8-18.1 s for 3 epochs on the same machine under a load of 8; in
    benchmarks/results/bench_contention.md 12.7 s idle and 15.1 s beside a 2-thread torch job
    on one thread, 18.9 s and 19.6 s on both cores). Half the cores keeps the same margin for
    another job on larger machines (not measured there).
    """
    from .._threads import available_cores

    return max(1, available_cores() // 2)


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``h2q train`` and ``h2q reproduce`` both pass to their run:
    ``root``, ``device``, ``cache_dir`` and ``progress`` (from ``--no-progress``)."""
    return {
        "root": args.root,
        "device": args.device,
        "cache_dir": args.cache_dir,
        "progress": not args.no_progress,
    }


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1, with a usage error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_threads_option(parser: Any, default: int | None, why: str) -> None:
    """Add ``--threads N``: the cap on every thread pool (torch, BLAS/OpenMP, numba).

    :func:`h2q.cli.main.main` applies it around the command with
    :func:`h2q._threads.thread_limit`: the option when given, else ``$H2Q_NUM_THREADS`` when
    set, else ``default`` (None: leave the pools as they are). ``why`` explains the default
    in ``--help``.
    """
    shown = "the libraries' own choice" if default is None else default
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"threads for torch, BLAS/OpenMP and numba together (default: $H2Q_NUM_THREADS "
        f"when set, else {shown}; {why})",
    )
    parser.set_defaults(threads_default=default)


def add_precision_option(parser: Any, default: str | None, shown: str) -> None:
    """Add ``--precision``: of the MLP head's matrix products (:mod:`h2q.models.precision`);
    ``shown`` names the default in ``--help``."""
    from ..models.precision import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=default,
        help=f"precision of the MLP layers' matrix products (default: {shown}): float32; "
        "bfloat16; auto = bfloat16 on a CPU with native bfloat16 (AVX-512 BF16, AMX), about "
        "2.2x faster there, else float32",
    )
