"""The ``h2q`` command: one sub-command per step of the pipeline.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func``; ``main`` parses, runs, and turns expected failures (bad input,
missing files) into a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import FileFormatError

_COMMAND_MODULES = ("quantize", "train", "reproduce", "index")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileFormatError, ImportError) as exc:
        print(f"h2q {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"h2q {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
