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

__all__ = ["VECTOR_FLAGS", "cpu_model", "machine_info", "vector_flags"]

#: CPU flags that decide which kernels torch and oneDNN dispatch to.
VECTOR_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), or ``platform.processor()``."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def vector_flags() -> list[str]:
    """Which of :data:`VECTOR_FLAGS` the CPU has (empty where ``/proc/cpuinfo`` is missing)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return [flag for flag in VECTOR_FLAGS if flag in flags]


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, the instruction set torch dispatches to, core count and library versions.

    Returns
    -------
    dict
        ``{"cpu", "vector_flags", "torch_cpu_capability", "cpu_count", "load_average",
        "platform", "python", "torch", "numpy"}`` (JSON-ready; ``load_average`` is the 1, 5 and
        15 minute load when called, None where the system does not give it).
    """
    import numpy as np
    import torch

    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # pragma: no cover - old torch
        capability = "unknown"
    return {
        "cpu": cpu_model(),
        "vector_flags": vector_flags(),
        "torch_cpu_capability": capability,
        "cpu_count": os.cpu_count(),
        "load_average": _load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
