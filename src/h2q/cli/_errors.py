"""The CLI's one kind of deliberate user error.

:func:`h2q.cli.main.main` prints a :class:`UsageError` (and the library's input errors:
``ValueError``, missing or unreadable files, missing optional packages) as one line and exits
with status 2. Anything else is a bug and keeps its traceback: in particular a ``TypeError``
is a user error only where a command turns it into one with :func:`user_input`, around the
library's input checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class UsageError(Exception):
    """A bad command line or input file, reported in one line with exit status 2."""


@contextlib.contextmanager
def user_input() -> Iterator[None]:
    """Turn the ``TypeError`` of a library input check (e.g. integer embeddings) into a
    :class:`UsageError`; wrap only calls whose ``TypeError`` means bad user input."""
    try:
        yield
    except TypeError as exc:
        raise UsageError(str(exc)) from exc
