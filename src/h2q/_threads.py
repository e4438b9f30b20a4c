"""One place that sets how many threads h2q's work may use.

Every thread pool the library touches (torch's intra-op pool, the BLAS/OpenMP pools that numpy
and scipy call into, numba's) is limited together, so that two pools never fight over the same
cores. ``thread_limit(n)`` is the only way the library changes them, and it restores the old
settings on exit.

``n_threads=None`` means "leave it to the caller's setting": the limit of an enclosing
``thread_limit`` when there is one (so that a kernel that imports numba late still gets the
command's ``--threads``), else the environment variable ``H2Q_NUM_THREADS`` when set, else the
pools are left as they are.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

ENV_VAR = "H2Q_NUM_THREADS"

#: The limits of the enclosing ``thread_limit`` blocks, innermost last (one process-wide
#: stack: thread limits are a process-wide setting of every pool anyway).
_ACTIVE: list[int] = []

#: Bumped whenever any thread changes the pools (a block applied or restored), so that a
#: block can tell whether the limits it applied are still in force.
_GENERATION = [0]
#: Per thread: the blocks applied in this thread, innermost last, as
#: ``(n, generation after applying, whether numba was limited)``.
_LOCAL = threading.local()


def available_cores() -> int:
    """The number of cores this process may run on (its CPU affinity, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_n_threads(n_threads: object, name: str = "n_threads") -> int | None:
    """Validate a thread count: ``None`` or an integer >= 1; return it."""
    if n_threads is None:
        return None
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(
            f"{name} must be None or an integer >= 1, got {n_threads!r}. "
            f"Pass e.g. {name}=1 for one thread."
        )
    return n_threads


def resolve_n_threads(n_threads: int | None) -> int | None:
    """The thread count to apply: the argument, else the enclosing ``thread_limit``'s, else
    ``H2Q_NUM_THREADS``, else ``None``."""
    n = check_n_threads(n_threads)
    if n is not None:
        return n
    if _ACTIVE:
        return _ACTIVE[-1]
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"{ENV_VAR}={text!r} is not an integer; set a thread count such as 1, or unset it."
        ) from None
    return check_n_threads(value, ENV_VAR)


def _numba_pool_started() -> bool:
    """Whether numba's parallel thread pool is running (asking numba for its thread count
    would start it)."""
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return bool(getattr(parallel, "_is_initialized", False))


@contextmanager
def _limited(n: int, parallel_kernels: bool) -> Iterator[None]:
    import torch

    old_torch = torch.get_num_threads()
    numba = sys.modules.get("numba")  # only limited when something already imported it
    if numba is not None and not (parallel_kernels or _numba_pool_started()):
        # Note: setting numba's thread count starts its pool, whose OpenMP layer changed the
        # numbers torch computed afterwards in the same process (a stage-1 run trained after
        # it differed from the same run alone); a pool that does not run needs no limit.
        numba = None
    old_numba = numba.get_num_threads() if numba is not None else None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        blas = nullcontext()
    else:
        blas = threadpool_limits(limits=n)
    with blas:
        torch.set_num_threads(n)
        if numba is not None:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        _ACTIVE.append(n)
        _GENERATION[0] += 1
        applied = _applied()
        applied.append((n, _GENERATION[0], numba is not None))
        try:
            yield
        finally:
            applied.pop()
            _ACTIVE.pop()
            torch.set_num_threads(old_torch)
            if numba is not None:
                numba.set_num_threads(old_numba)
            _GENERATION[0] += 1


def _applied() -> list[tuple[int, int, bool]]:
    if not hasattr(_LOCAL, "applied"):
        _LOCAL.applied = []
    return _LOCAL.applied


def _in_force(n: int, parallel_kernels: bool) -> bool:
    """Whether this thread's innermost block applied ``n`` and nothing changed the pools since.

    Note: applying a limit costs milliseconds (threadpoolctl scans the loaded libraries), so
    a kernel called many times inside a command's block (a search service answering requests)
    must not re-apply the same limit on every call. numba's setting is per thread, hence the
    per-thread record; numba imported after the block began still needs applying.
    """
    applied = _applied()
    if not applied:
        return False
    last_n, generation, numba_limited = applied[-1]
    numba_settled = (
        numba_limited
        or "numba" not in sys.modules
        or not (parallel_kernels or _numba_pool_started())  # a pool that does not run
    )
    return last_n == n and generation == _GENERATION[0] and numba_settled


def thread_limit(n_threads: int | None, *, parallel_kernels: bool = False):
    """Context manager: run the body with every thread pool limited to ``n_threads``.

    ``None`` applies the enclosing block's limit, else ``H2Q_NUM_THREADS`` when it is set, and
    changes nothing otherwise. numba's pool is limited when it is already running, or when
    ``parallel_kernels`` says that the body runs numba's parallel kernels (it is then started
    with the limit); otherwise it is left unstarted. A block inside a block of the same thread
    with the same limit, still in force, changes nothing (it would only cost time).
    """
    n = resolve_n_threads(n_threads)
    if n is None or _in_force(n, parallel_kernels):  # an enclosing block already set exactly n
        return nullcontext()
    return _limited(n, parallel_kernels)
