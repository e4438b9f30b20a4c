"""Stage-2 quantizers: H²Q, ITQ, the random rotation and the sign baseline, all with one estimator interface."""

from .base import BaseQuantizer
from .householder import HouseholderQuantizer
from .itq import ITQQuantizer
from .registry import (
    LOSSES,
    QUANTIZERS,
    SOLVERS,
    load_quantizer,
    make_quantizer,
    quantizer_class,
)
from .random import RandomRotationQuantizer
from .sign import SignQuantizer

__all__ = [
    "BaseQuantizer",
    "HouseholderQuantizer",
    "ITQQuantizer",
    "LOSSES",
    "QUANTIZERS",
    "RandomRotationQuantizer",
    "SOLVERS",
    "SignQuantizer",
    "load_quantizer",
    "make_quantizer",
    "quantizer_class",
]
