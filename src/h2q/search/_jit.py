"""Whether the compiled kernels are available, and the decorators that compile them (internal).

numba is an optional extra (``pip install 'h2q[fast]'``). It is imported only when a kernel
module is first loaded (never when h2q is imported), and functions compile on their first call
(``cache=True`` keeps the machine code on disk for the next process). Without numba, or with
``H2Q_DISABLE_NUMBA=1`` in the environment, the same kernels run as plain Python: exact, but
only fit for small inputs, so the indexes then prefer their numpy paths.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any

DISABLE_VAR = "H2Q_DISABLE_NUMBA"


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    """True when numba can be imported and is not disabled by ``H2Q_DISABLE_NUMBA``."""
    if os.environ.get(DISABLE_VAR, "").strip() not in ("", "0"):
        return False
    return importlib.util.find_spec("numba") is not None


def jit(
    parallel: bool = False, error_model: str = "python"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, parallel=parallel, error_model=error_model)`` when numba is
    available, else identity. ``error_model="numpy"`` makes a float division by zero give
    inf/NaN as IEEE (and numpy and torch) do, instead of raising; it is also what lets a loop
    that divides vectorise."""
    if not numba_available():
        return lambda function: function
    import numba

    return numba.njit(cache=True, parallel=parallel, nogil=True, error_model=error_model)


def prange_or_range() -> Callable[..., Any]:
    """``numba.prange`` when numba is available (loops run in parallel), else ``range``."""
    if not numba_available():
        return range
    import numba

    return numba.prange


def make_popcount() -> Callable[[Any], Any]:
    """A popcount of one ``uint64`` that compiles to the CPU's instruction (LLVM ``ctpop``)."""
    if not numba_available():
        return lambda x: int(x).bit_count()
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def _ctpop(typingctx, x):  # noqa: ARG001 - numba's intrinsic signature
        if x != types.uint64:
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return types.uint64(types.uint64), codegen

    return _ctpop
