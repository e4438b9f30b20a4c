"""The rows of a reproduction grid: how each row of the paper's tables makes its codes.

A row is a stage-1 quantization strategy (the run whose embeddings it reads) and a stage-2
quantizer fitted on those embeddings. :data:`ROW_BY_KEY` is the one list of rows, in table
order; the grid, the tables, the plots, the report, the retrieval figure, the CLI and the
server read it:

- ``lambda0`` ("λ = 0"): stage 1 with lambda = 0, codes = sign(f(x));
- ``penalty`` ("+λ"): the method's own penalty on tanh outputs, lambda chosen on validation
  mAP from the method's grid (:data:`LAMBDA_GRIDS`);
- ``hswd`` ("+HSWD"): the sliced-Wasserstein penalty, weight 0.1, no tanh;
- ``itq`` ("+ITQ"): ITQ with a correct Procrustes step on the lambda = 0 embeddings;
- ``h2q-l2``, ``h2q-l1``, ``h2q-min_entry``, ``h2q-bit_var`` ("+H²Q" and its loss
  variants): the Householder quantizer on the lambda = 0 embeddings.

The keys of the three stage-1 rows are the names of their strategies
(:data:`h2q.losses.STRATEGIES`), that of the ITQ row the quantizer's name
(:data:`h2q.quantizers.QUANTIZERS`), those of the H²Q rows :func:`h2q_row` of their loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..losses import HSWD, LAMBDA0, PENALTY
from ..quantizers import H2Q, ITQ, SIGN, BaseQuantizer, make_quantizer
from ..training.config import REFERENCE_METHODS

if TYPE_CHECKING:
    from .config import GridConfig

__all__ = [
    "ALTERNATIVES",
    "BASELINE",
    "DEFAULT_LAMBDA_GRID",
    "H2Q_L2",
    "H2Q_LOSSES",
    "LAMBDA_GRIDS",
    "ROWS",
    "ROW_BY_KEY",
    "Row",
    "h2q_row",
    "lambda_grid",
    "row_label",
    "rows_for",
    "rows_reading",
]


@dataclass(frozen=True)
class Row:
    """One row of the grid's tables.

    Attributes
    ----------
    key : str
        Its name in files, folders and settings (``cells/<method>/<key>/``, ``rows=``).
    label : str
        As printed in tables and plots.
    stage1_strategy : str
        Strategy of the stage-1 run whose embeddings the row reads
        (:data:`h2q.losses.STRATEGIES`).
    description : str
        How the row makes its codes, in one line (the server's index descriptions).
    quantizer : str
        Name of its stage-2 quantizer (:data:`h2q.quantizers.QUANTIZERS`).
    loss : str or None
        Stage-2 loss of an H²Q row (:data:`h2q.quantizers.LOSSES`).
    """

    key: str
    label: str
    stage1_strategy: str
    description: str
    quantizer: str = SIGN
    loss: str | None = None

    @property
    def is_stage2(self) -> bool:
        """Whether the row fits a rotation (ITQ or H²Q) on its run's embeddings: the rows
        that a change of the stage-2 code computes again."""
        return self.quantizer != SIGN

    @property
    def is_h2q(self) -> bool:
        """Whether the row's quantizer is H²Q (any loss)."""
        return self.quantizer == H2Q

    def make_quantizer(
        self, random_state: int = 0, *, solver: str | None = None, n_bits: int | None = None
    ) -> BaseQuantizer:
        """The row's unfitted stage-2 quantizer (:func:`h2q.quantizers.make_quantizer`); every
        setting not named here keeps its class's default (ITQ's 50 iterations, ...).

        Parameters
        ----------
        random_state : int, default 0
            Seed of ITQ's random start and of H²Q's batch order (the sign rows have none).
        solver : str, optional
            Solver of an H²Q row (None: the class's default).
        n_bits : int, optional
            Code length (None: the embedding width).

        Returns
        -------
        BaseQuantizer
        """
        options: dict[str, Any] = {}
        if self.is_stage2:
            options["random_state"] = random_state
        if self.loss is not None:
            options["loss"] = self.loss
        if solver is not None and self.is_h2q:
            options["solver"] = solver
        return make_quantizer(self.quantizer, n_bits, **options)


def h2q_row(loss: str) -> str:
    """Row key of the H²Q variant with stage-2 loss ``loss`` (``h2q-l2``, ...)."""
    return f"{H2Q}-{loss}"


#: Losses of the H²Q rows, the paper's default (L2) first -> (label, description) names.
_H2Q_NAMES: dict[str, tuple[str, str]] = {
    "l2": ("L2", "L2"),
    "l1": ("L1", "L1"),
    "min_entry": ("min-entry", "min-entry"),
    "bit_var": ("bit-var", "bit-variance"),
}
#: Losses of the H²Q rows, the paper's default (L2) first.
H2Q_LOSSES = tuple(_H2Q_NAMES)

_ROWS = (
    Row(LAMBDA0, "λ = 0", LAMBDA0, "λ = 0: the sign of the stage-1 embeddings"),
    Row(PENALTY, "+λ", PENALTY, "+λ: the sign of embeddings trained with the method's penalty"),
    Row(HSWD, "+HSWD", HSWD, "+HSWD: the sign of embeddings trained with the HSWD penalty"),
    Row(ITQ, "+ITQ", LAMBDA0, "ITQ rotation, then sign", ITQ),
    *(
        Row(
            h2q_row(loss),
            f"+H²Q ({label})",
            LAMBDA0,
            f"H²Q rotation ({text} loss), then sign",
            H2Q,
            loss,
        )
        for loss, (label, text) in _H2Q_NAMES.items()
    ),
)
#: Every row by key, in table order.
ROW_BY_KEY: Mapping[str, Row] = {row.key: row for row in _ROWS}
#: Every row key, in table order.
ROWS = tuple(ROW_BY_KEY)

#: The row every gain is measured against (lambda = 0, codes = sign); always computed.
BASELINE = LAMBDA0
#: The paper's method: H²Q with its default loss (L2).
H2Q_L2 = h2q_row("l2")
#: The other ways to quantize that H²Q (L2) is compared with, in table order.
ALTERNATIVES = tuple(r.key for r in _ROWS if r.key != BASELINE and not r.is_h2q)


def row_label(key: str) -> str:
    """The printed label of a row (the key itself for a name that is not a row)."""
    row = ROW_BY_KEY.get(key)
    return key if row is None else row.label


def rows_reading(strategy: str) -> tuple[str, ...]:
    """Keys of the rows that read the stage-1 runs of ``strategy``, in table order."""
    return tuple(r.key for r in _ROWS if r.stage1_strategy == strategy)


def rows_for(config: GridConfig, method: str) -> tuple[str, ...]:
    """The rows computed for ``method``: all of ``config.row_keys``, or only the baseline (its
    own codes, ``sign(F(x))``) for a reference method."""
    if method.lower() in REFERENCE_METHODS:
        return (BASELINE,)
    return config.row_keys


#: Lambda grids of the "+lambda" row. DPSH, DHN and DCH: the paper's grids. The others are
#: ours, centred on the weight the paper's experiments use (0.01 for CEL and HyP², DSH's
#: alpha = 0.01). HashNet has no penalty: its "+lambda" row is its tanh continuation alone
#: (one run, ``lam=None``); the same holds for any loss without a penalty.
LAMBDA_GRIDS: dict[str, tuple[float, ...]] = {
    "dpsh": (1.0, 0.1, 0.01),
    "dhn": (1e-5, 1e-3, 0.1),
    "dch": (1e-5, 1e-3, 0.1),
    "wglhh": (1.0, 0.1, 0.01),
    "cel": (0.1, 0.01, 0.001),
    "hyp2": (0.1, 0.01, 0.001),
    "dsh": (0.1, 0.01, 0.001),
}
#: Grid for a penalised loss not listed in :data:`LAMBDA_GRIDS`.
DEFAULT_LAMBDA_GRID = (1.0, 0.1, 0.01)


def lambda_grid(method: str, grid: Mapping[str, tuple[float, ...]] | None = None) -> tuple:
    """The lambda values the "+lambda" row tries for ``method``.

    Parameters
    ----------
    method : str
        A stage-1 loss name (:func:`h2q.losses.make_loss`).
    grid : mapping, optional
        Overrides of :data:`LAMBDA_GRIDS` (method name -> values).

    Returns
    -------
    tuple
        ``(None,)`` for a loss without a quantization penalty (HashNet, metric-learning
        losses), else the grid's values.
    """
    from ..losses import make_loss

    key = method.lower()
    if key in REFERENCE_METHODS:
        return (None,)  # its own schedule: no quantization penalty
    if grid is not None and key in grid:
        return tuple(grid[key])
    try:
        loss = make_loss(method, 8, 2)
    except (ValueError, TypeError, ImportError):
        loss = None
    if loss is not None and not getattr(loss, "has_penalty", False):
        return (None,)
    return LAMBDA_GRIDS.get(key, DEFAULT_LAMBDA_GRID)
