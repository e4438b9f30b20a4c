"""Stage-2 quantizers: H²Q, ITQ and the sign baseline, all with one estimator interface."""

from .base import BaseQuantizer, load_quantizer
from .householder import HouseholderQuantizer
from .itq import ITQQuantizer
from .sign import SignQuantizer

QUANTIZERS: dict[str, type[BaseQuantizer]] = {
    cls.__name__: cls for cls in (HouseholderQuantizer, ITQQuantizer, SignQuantizer)
}

__all__ = [
    "BaseQuantizer",
    "HouseholderQuantizer",
    "ITQQuantizer",
    "QUANTIZERS",
    "SignQuantizer",
    "load_quantizer",
]
