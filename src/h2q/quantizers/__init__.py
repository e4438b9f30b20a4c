"""Stage-2 quantizers: H²Q, ITQ, random rotation and sign, with one estimator interface."""

from .base import BaseQuantizer
from .householder import HouseholderQuantizer
from .itq import ITQQuantizer
from .random import RandomRotationQuantizer
from .registry import (
    LOSSES,
    QUANTIZERS,
    SOLVERS,
    load_quantizer,
    make_quantizer,
    quantizer_class,
)
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
