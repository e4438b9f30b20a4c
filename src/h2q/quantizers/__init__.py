"""Stage-2 quantizers: H²Q, ITQ, random rotation and sign, with one estimator interface."""

from .base import BaseQuantizer
from .householder import HouseholderQuantizer
from .itq import ITQQuantizer
from .random import RandomRotationQuantizer
from .registry import (
    BASELINES,
    H2Q,
    ITQ,
    LOSSES,
    QUANTIZERS,
    RANDOM_ROTATION,
    SIGN,
    SOLVERS,
    load_quantizer,
    make_quantizer,
    quantizer_class,
)
from .sign import SignQuantizer

__all__ = [
    "BASELINES",
    "H2Q",
    "ITQ",
    "RANDOM_ROTATION",
    "SIGN",
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
