"""The ``h2q`` command: one sub-command per step of the pipeline.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func``; ``main`` parses, runs the command under its thread limit
(``--threads``, see :func:`h2q.cli._args.add_threads_option`), and turns deliberate user
errors into a one-line message and exit status 2. Those are :class:`~h2q.cli._errors.UsageError`,
the library's input errors (``ValueError``, including :class:`~h2q.exceptions.FileFormatError`),
missing, existing or unwritable files, and a missing optional package (an ``ImportError``
that is not about a module of h2q itself).
Anything else is a bug: it keeps its traceback (a ``TypeError`` counts as a user error only
where a command wraps an input check in :func:`h2q.cli._errors.user_input`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .._threads import resolve_n_threads, thread_limit
from .._version import __version__
from ._errors import UsageError

_COMMAND_MODULES = ("quantize", "train", "reproduce", "export", "spark", "embed", "index", "serve")

#: Exceptions that mean "bad input", reported in one line with exit status 2.
USER_ERRORS = (
    UsageError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ImportError,
)


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="h2q",
        description="Deep hashing with Householder quantization: train embeddings, learn a "
        "rotation, encode, search and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"h2q {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages (default: warnings only)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        import_module(f"{__package__}.{name}").register(sub)
    return parser


def _n_threads(args: argparse.Namespace) -> int | None:
    """``--threads`` when given, else ``$H2Q_NUM_THREADS``, else the command's default."""
    n = resolve_n_threads(getattr(args, "threads", None))
    return n if n is not None else getattr(args, "threads_default", None)


def _is_user_error(exc: BaseException) -> bool:
    """False for an ``ImportError`` inside h2q itself (a bug), True for the other USER_ERRORS.

    A missing optional package is a user error: h2q raises ``ImportError`` with the install
    command, and a missing third-party module names that module.
    """
    if isinstance(exc, ImportError):
        name = exc.name or ""
        return name != "h2q" and not name.startswith("h2q.")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with thread_limit(_n_threads(args)):
            return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if not _is_user_error(exc):
            raise
        logging.getLogger(__name__).debug("traceback of the error below", exc_info=True)  # -v
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"h2q {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"h2q {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
