"""Reproduction grids: the paper's methods x quantization strategies x bits x seeds.

- :mod:`~h2q.experiments.config`: :class:`GridConfig` and the presets ``default``, ``full``,
  ``quick`` (:func:`get_config`);
- :mod:`~h2q.experiments.grid`: :func:`run_grid`, the cached, resumable runner (the work
  itself in :mod:`~h2q.experiments.runner`, worker processes in
  :mod:`~h2q.experiments.parallel`; results of each cell in
  :mod:`~h2q.experiments.records`);
- :mod:`~h2q.experiments.stats`: means over seeds and gains of one strategy over another;
- :mod:`~h2q.experiments.tables`, :mod:`~h2q.experiments.plots`,
  :mod:`~h2q.experiments.report`: Markdown/CSV tables, PNG figures and ``report.md``
  (:func:`write_outputs`).

``h2q reproduce`` is the command-line front end.
"""

from .config import PRESETS, ROWS, GridConfig, get_config
from .grid import GridResult, run_grid
from .records import CellRecord
from .report import write_outputs
from .stats import Improvement, improvement, summarize

__all__ = [
    "PRESETS",
    "ROWS",
    "CellRecord",
    "GridConfig",
    "GridResult",
    "Improvement",
    "get_config",
    "improvement",
    "run_grid",
    "summarize",
    "write_outputs",
]
