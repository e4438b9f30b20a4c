"""The machine a grid ran on, as recorded with each call of the grid (``calls.json``).

Float reductions in torch and BLAS are summed in a different order depending on the vector
instructions they dispatch to (AVX2, AVX-512, ...), so the same seeded run gives slightly
different features on different CPUs, and the differences grow through training. A result
table is therefore only reproducible bit for bit on the same kind of CPU with the same library
versions: both are recorded here.
"""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = ["cpu_model", "machine_info"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), or ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, the instruction set torch dispatches to, core count and library versions.

    Returns
    -------
    dict
        ``{"cpu", "torch_cpu_capability", "cpu_count", "platform", "python", "torch",
        "numpy"}`` (JSON-ready).
    """
    import numpy as np
    import torch

    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # pragma: no cover - old torch
        capability = "unknown"
    return {
        "cpu": cpu_model(),
        "torch_cpu_capability": capability,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
