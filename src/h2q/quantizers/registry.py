"""The one list of stage-2 names: quantizers, solvers and losses.

The CLI's choices, the experiment grid, the unsupervised evaluation, the server and the docs
read these mappings, and build quantizers with :func:`make_quantizer`; a new quantizer is one
new module plus one line here. Every default lives in the quantizer's class. Solver and loss
names are read from the modules that implement them (:mod:`h2q.quantizers._solvers`,
:mod:`h2q.quantizers.objectives`).
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

#: Names of the quantizers, as the CLI, the grid and the server spell them.
SIGN, ITQ, H2Q, RANDOM_ROTATION = "sign", "itq", "h2q", "random-rotation"

#: The stage-2 quantizers of the CLI and the grid, by name -> class; baselines first.
QUANTIZERS: dict[str, type[BaseQuantizer]] = {
    SIGN: SignQuantizer,
    ITQ: ITQQuantizer,
    H2Q: HouseholderQuantizer,
}
#: Baselines built by name besides :data:`QUANTIZERS` (the unsupervised evaluation's), not
#: offered by the stage-2 commands.
BASELINES: dict[str, type[BaseQuantizer]] = {RANDOM_ROTATION: RandomRotationQuantizer}
#: Solvers of :class:`HouseholderQuantizer`; the first is the default.
SOLVERS: tuple[str, ...] = tuple(_solvers.SOLVERS)
#: Stage-2 losses of :class:`HouseholderQuantizer`; ``"l2"`` is the paper's default.
LOSSES: tuple[str, ...] = tuple(OBJECTIVES)


def quantizer_class(name: str) -> type[BaseQuantizer]:
    """The class behind a quantizer name (:data:`QUANTIZERS` or :data:`BASELINES`), with an
    error that lists the valid names."""
    try:
        return QUANTIZERS[name]
    except (KeyError, TypeError):
        pass
    try:
        return BASELINES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown quantizer {name!r}; choose one of {', '.join(QUANTIZERS)}."
        ) from None


def make_quantizer(name: str, n_bits: int | None = None, **options: Any) -> BaseQuantizer:
    """An unfitted quantizer by name, e.g. ``make_quantizer("itq", 32, random_state=1)``.

    Parameters
    ----------
    name : str
        A key of :data:`QUANTIZERS` or :data:`BASELINES`.
    n_bits : int, optional
        Code length (None: the embedding width).
    **options
        Other arguments of the class; those not given keep the class's defaults.
    """
    return quantizer_class(name)(n_bits, **options)


def quantizer_class_for_kind(kind: str) -> type[BaseQuantizer] | None:
    """The class whose name a saved file records (``"HouseholderQuantizer"``), or None."""
    classes = (*QUANTIZERS.values(), *BASELINES.values())  # the baselines are loadable too
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
