"""Reproduction grids: the paper's methods x quantization strategies x bits x seeds.

- :mod:`~h2q.experiments.config`: :class:`GridConfig` and the presets ``default``, ``full``,
  ``quick`` (:func:`get_config`);
- :mod:`~h2q.experiments.rows`: the rows of the tables (strategy x quantizer), one registry;
- :mod:`~h2q.experiments.grid`: :func:`run_grid`, the cached, resumable runner (the work
  itself in :mod:`~h2q.experiments.runner`, worker processes in
  :mod:`~h2q.experiments.parallel`; results of each cell in
  :mod:`~h2q.experiments.records`);
- :mod:`~h2q.experiments.stats`: means over seeds, gains of one strategy over another and
  their 95% intervals (t over seeds, or a paired bootstrap over queries with one seed);
- :mod:`~h2q.experiments.tables`, :mod:`~h2q.experiments.plots`,
  :mod:`~h2q.experiments.report`: Markdown/CSV tables, PNG figures and ``report.md``
  (:func:`write_outputs`), with the stage-1 runs (:mod:`~h2q.experiments.stage1`), the
  paper's numbers beside ours (:mod:`~h2q.experiments.paper`) and the machine of each call
  (:mod:`~h2q.experiments.machine`).

``h2q reproduce`` is the command-line front end.
"""

from .config import PRESETS, GridConfig, get_config
from .grid import GridResult, run_grid
from .records import CellRecord
from .report import write_outputs
from .rows import ROWS
from .stats import Improvement, Interval, compare, improvement, summarize

__all__ = [
    "PRESETS",
    "ROWS",
    "CellRecord",
    "GridConfig",
    "GridResult",
    "Improvement",
    "Interval",
    "compare",
    "get_config",
    "improvement",
    "run_grid",
    "summarize",
    "write_outputs",
]
