"""The one list of stage-2 names: quantizers, solvers and losses.

The CLI's choices, the experiment grid and the docs read these mappings; a new quantizer is
one new module plus one line here. Solver and loss names are read from the modules that
implement them (:mod:`h2q.quantizers._solvers`, :mod:`h2q.quantizers.objectives`).
"""

from __future__ import annotations

import os
from typing import Any

from .. import _io
from . import _solvers
from .base import BaseQuantizer
from .householder import HouseholderQuantizer
from .itq import ITQQuantizer
from .objectives import OBJECTIVES
from .random import RandomRotationQuantizer
from .sign import SignQuantizer

#: Quantizer names (as the CLI and the grid spell them) -> classes; baselines first.
QUANTIZERS: dict[str, type[BaseQuantizer]] = {
    "sign": SignQuantizer,
    "itq": ITQQuantizer,
    "h2q": HouseholderQuantizer,
}
#: Solvers of :class:`HouseholderQuantizer`; the first is the default.
SOLVERS: tuple[str, ...] = tuple(_solvers.SOLVERS)
#: Stage-2 losses of :class:`HouseholderQuantizer`; ``"l2"`` is the paper's default.
LOSSES: tuple[str, ...] = tuple(OBJECTIVES)


def quantizer_class(name: str) -> type[BaseQuantizer]:
    """The class behind a quantizer name, with an error that lists the valid names."""
    try:
        return QUANTIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown quantizer {name!r}; choose one of {', '.join(QUANTIZERS)}."
        ) from None


def make_quantizer(name: str, **params: Any) -> BaseQuantizer:
    """An unfitted quantizer by name, e.g. ``make_quantizer("itq", n_bits=32)``."""
    return quantizer_class(name)(**params)


def quantizer_class_for_kind(kind: str) -> type[BaseQuantizer] | None:
    """The class whose name a saved file records (``"HouseholderQuantizer"``), or None."""
    classes = (*QUANTIZERS.values(), RandomRotationQuantizer)  # the baseline is loadable too
    return {cls.__name__: cls for cls in classes}.get(kind)


def load_quantizer(path: str | os.PathLike) -> BaseQuantizer:
    """Read any quantizer written by ``save``, whatever its class."""
    kind = _io.read_kind(path)
    cls = quantizer_class_for_kind(kind)
    if cls is None:
        raise _io.FileFormatError(
            f"{path} holds a {kind}, not a quantizer; load it with the matching class."
        )
    return cls.load(path)
