"""Byte-compile the modules that `h2q reproduce` imports, by importing them (set-up's last step).

pip byte-compiles every module it installs: about 9,500 files for the main job's extras, 20 s
of a fresh set-up. The main job imports about a third of them. ``scripts/setup.sh`` installs
with ``--no-compile`` and then runs this script, which imports those modules with bytecode
writing switched on (whatever ``PYTHONDONTWRITEBYTECODE`` says), in two processes at once, so
that no process of the job compiles them again. Any module left out is compiled by Python on
first import, as usual.

Usage::

    .venv/bin/python scripts/precompile.py
"""

from __future__ import annotations

import subprocess
import sys

#: Two groups of modules imported in parallel: h2q and torch's side in one, the other users
#: of numpy in the other (numpy itself is imported by both).
GROUPS = (
    (
        "h2q.cli.main",
        "h2q.experiments.grid",
        "h2q.experiments.parallel",
        "h2q.experiments.report",
        "h2q.training.run",
        "torch.optim",
        "torch._dynamo",
        "efficientnet_lite_pytorch",
    ),
    ("sympy", "numpy", "scipy.stats", "numba", "matplotlib.pyplot", "faiss"),
)

_CHILD = "import importlib, sys; sys.dont_write_bytecode = False; [importlib.import_module(m) for m in sys.argv[1:]]"  # noqa: E501


def main(groups: tuple[tuple[str, ...], ...] = GROUPS) -> int:
    """Import each group in its own process, all at once; 0 when every import worked."""
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, *group]) for group in groups]
    if any([p.wait() != 0 for p in procs]):  # a list: wait for both
        print("precompile: an import failed (above); run scripts/setup.sh again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
