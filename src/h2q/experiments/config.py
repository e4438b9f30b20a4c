"""Settings of a reproduction grid and the named presets.

A grid is methods x quantization strategies x bits x seeds for one data set and backbone
(:class:`GridConfig`). Three presets (:func:`get_config`):

``"default"``
    The main job, sized for 2 CPU cores (its measured time is in the kept run): Fashion-MNIST
    with the paper's per-class folds (train 500, query 100, validation 100 per class) and a database
    capped at 10,000 random items, a frozen EfficientNet-Lite0 at 64 px (features extracted
    once per seed's folds and cached) with an MLP head, DPSH, DCH and HyP², 16/32/64 bits,
    three seeds (0, 1 and 2), mAP@1000. The kept run, with its machine and wall time, is in
    ``docs/results/default`` (shown in ``docs/results.md``).
``"full"``
    The paper's grid, for GPU machines: the eight stage-1 methods of :data:`FULL_METHODS`
    and ADSH as a reference row (:data:`REFERENCE_METHODS`),
    16/32/48/64 bits, 4 seeds, the whole database (63,000 items on Fashion-MNIST), mAP@5000,
    the paper's 100 epochs with patience 20, EfficientNet-Lite0 at 224 px (frozen).
``"quick"``
    Seconds on scikit-learn's digits (no extra install): for tests and smoke runs.

The rows of the tables (strategy x quantizer) are in :mod:`h2q.experiments.rows`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._validation import check_positive_int
from ..losses import LOSSES
from ..training.config import MAX_BITS
from ..training.config import REFERENCE_METHODS as TRAIN_REFERENCE_METHODS
from .rows import BASELINE, ROWS

__all__ = [
    "FULL_METHODS",
    "PRESETS",
    "REFERENCE_METHODS",
    "GridConfig",
    "get_config",
]

#: Methods shown as a reference row only (the paper's state-of-the-art table): trained with
#: their own schedule, evaluated by the sign of their outputs, no strategy rows (no lambda = 0
#: / H²Q variant): ADSH (:mod:`h2q.training.adsh`).
REFERENCE_METHODS = TRAIN_REFERENCE_METHODS
#: The stage-1 methods of the full grid: every loss of :data:`h2q.losses.LOSSES` (the eight
#: methods of the paper's tables that use the common training loop), then the reference ADSH.
FULL_METHODS = (*LOSSES, *REFERENCE_METHODS)


@dataclass(frozen=True)
class GridConfig:
    """Everything that defines a reproduction grid.

    Parameters
    ----------
    name : str
        Preset name (``"default"``, ``"full"``, ``"quick"``) or a label of the user's own.
    dataset : str
        A name for :func:`h2q.data.load_dataset`.
    methods : tuple of str
        Stage-1 losses (:func:`h2q.losses.make_loss` names).
    bits : tuple of int
        Code lengths.
    seeds : tuple of int
        Seeds of the split, the stage-1 training and the stage-2 random starts.
    backbone : str or None
        Backbone name (None: :func:`h2q.training.default_backbone`).
    frozen : bool
        Keep a pretrained backbone frozen and train an MLP head on cached features.
    image_size : int or None
        Backbone input side (None: the backbone's default).
    hidden : tuple of int
        Hidden widths of the MLP head (or of the ``mlp`` backbone).
    max_database : int or None
        Cap on the database fold (a random subset); None keeps the whole database.
    k : int
        Cut-off of mAP@k (lowered to the database size when larger).
    epochs, patience, eval_every, batch_size, lr_head, lr_backbone, weight_decay
        Stage-1 training settings (:func:`h2q.training.run_training`).
    val_k : int or None
        Cut-off of the validation mAP used for early stopping and for choosing lambda.
    rows : tuple of str
        Rows of the table to compute (keys of :data:`h2q.experiments.rows.ROW_BY_KEY`; the
        baseline, :data:`~h2q.experiments.rows.BASELINE`, is always computed since every
        improvement is measured against it).
    lambda_grids : dict
        Overrides of :data:`h2q.experiments.rows.LAMBDA_GRIDS` (method -> values).
    h2q_solver : {"gd", "paper"}
        Solver of :class:`h2q.quantizers.HouseholderQuantizer`.
    pr_bits : int or None
        Bit length of the precision-recall figure (None: the largest of ``bits``).
    tie_break : bool
        Break Hamming ties by the continuous features (the paper's protocol).
    method_options : dict
        Settings of a method's loss or schedule (method -> ``loss_kwargs`` of its runs), e.g.
        ``{"adsh": {"iterations": 10}}`` (:class:`h2q.training.adsh.ADSHSettings`).
    """

    name: str = "custom"
    dataset: str = "fashion-mnist"
    methods: tuple[str, ...] = ("dpsh", "dch", "hyp2")
    bits: tuple[int, ...] = (16, 32, 64)
    seeds: tuple[int, ...] = (0,)
    backbone: str | None = "efficientnet-lite0"
    frozen: bool = True
    image_size: int | None = 64
    hidden: tuple[int, ...] = (512,)
    max_database: int | None = 10_000
    k: int = 1000
    epochs: int = 20
    patience: int | None = 6
    eval_every: int = 3
    batch_size: int = 128
    lr_head: float = 1e-3
    lr_backbone: float = 1e-5
    weight_decay: float = 5e-4
    val_k: int | None = None
    rows: tuple[str, ...] = ROWS
    lambda_grids: dict[str, tuple[float, ...]] = field(default_factory=dict)
    h2q_solver: str = "gd"
    pr_bits: int | None = None
    tie_break: bool = True
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ValueError`` naming the field and the fix."""
        if not self.methods:
            raise ValueError("methods is empty; give at least one stage-1 method, e.g. dpsh.")
        for name, values in (("bits", self.bits), ("seeds", self.seeds)):
            if not values:
                raise ValueError(f"{name} is empty; give at least one value.")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values {list(values)}; list each once.")
        for b in self.bits:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise ValueError(f"bits must be positive integers, got {b!r}.")
            if b > MAX_BITS:
                raise ValueError(f"bits={b} is more than the {MAX_BITS} bits a run accepts.")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(f"seeds must be non-negative integers, got {s!r}.")
        if len({m.lower() for m in self.methods}) != len(self.methods):
            raise ValueError(f"methods has repeated names {list(self.methods)}; list each once.")
        unknown = [r for r in self.rows if r not in ROWS]
        if unknown:
            raise ValueError(f"unknown rows {unknown}; choose among {list(ROWS)}.")
        for name in ("k", "epochs", "eval_every", "batch_size"):
            check_positive_int(getattr(self, name), name)
        for name in ("patience", "max_database", "val_k", "image_size", "pr_bits"):
            check_positive_int(getattr(self, name), name, allow_none=True)
        if self.pr_bits is not None and self.pr_bits not in self.bits:
            raise ValueError(f"pr_bits={self.pr_bits} is not one of bits {list(self.bits)}.")
        if self.h2q_solver not in ("gd", "paper"):
            raise ValueError(f"h2q_solver must be 'gd' or 'paper', got {self.h2q_solver!r}.")

    @property
    def row_keys(self) -> tuple[str, ...]:
        """The rows computed, in table order, the baseline included."""
        wanted = set(self.rows) | {BASELINE}
        return tuple(r for r in ROWS if r in wanted)

    @property
    def figure_bits(self) -> int:
        """Bit length of the precision-recall figure."""
        return self.pr_bits if self.pr_bits is not None else max(self.bits)

    def replace(self, **changes: Any) -> GridConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["lambda_grids"] = {k: list(v) for k, v in self.lambda_grids.items()}
        return out

    def stage1_settings(self) -> dict[str, Any]:
        """The settings every stage-1 run of this grid shares (part of each run's identity):
        the fields of :class:`h2q.training.TrainConfig` that this class has too."""
        from ..training import TrainConfig

        shared = {f.name for f in dataclasses.fields(TrainConfig)}
        out = {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
            if f.name in shared
        }
        if self.method_options:  # Note: only when set, so older results folders still match.
            # as stored in JSON (tuples become lists), so that a resumed grid matches
            out["method_options"] = json.loads(json.dumps(dict(self.method_options)))
        return out

    def evaluation_settings(self) -> dict[str, Any]:
        """The settings every stage-2 evaluation shares (part of each cell's identity)."""
        return {"k": self.k, "tie_break": self.tie_break, "h2q_solver": self.h2q_solver}


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Short SHA-256 of JSON-ready settings, to tell results of other settings apart."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


PRESETS: dict[str, GridConfig] = {
    "default": GridConfig(name="default", seeds=(0, 1, 2)),
    "full": GridConfig(
        name="full",
        methods=FULL_METHODS,
        bits=(16, 32, 48, 64),
        seeds=(0, 1, 2, 3),
        image_size=224,
        max_database=None,
        k=5000,
        epochs=100,
        patience=20,
        eval_every=1,
    ),
    "quick": GridConfig(
        name="quick",
        dataset="digits",
        methods=("dpsh",),
        bits=(8, 16),
        seeds=(0,),
        backbone="mlp",
        frozen=False,
        image_size=None,
        hidden=(64,),
        max_database=None,
        k=100,
        epochs=4,
        patience=None,
        eval_every=2,
        lr_head=3e-3,
        lambda_grids={"dpsh": (0.1, 0.01)},
    ),
}


#: Text data sets, and the settings any preset takes for them unless overridden: their items
#: are embedded once by a frozen sentence encoder (:func:`h2q.text.training_features`), and
#: stage 1 trains an MLP head on the embeddings, so there is no image backbone to freeze.
TEXT_DATASETS = ("wordnet", "wordnet-nouns")
TEXT_SETTINGS: dict[str, Any] = {"backbone": "mlp", "frozen": False, "image_size": None}


def get_config(name: str = "default", **overrides: Any) -> GridConfig:
    """A preset (:data:`PRESETS`), with fields overridden (None values are ignored).

    Parameters
    ----------
    name : {"default", "full", "quick"}
    **overrides
        Fields of :class:`GridConfig` to change; a None value keeps the preset's.

    Returns
    -------
    GridConfig
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    fields = {f.name for f in dataclasses.fields(GridConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; GridConfig fields are {sorted(fields)}.")
    changes = {k: v for k, v in overrides.items() if v is not None}
    dataset = str(changes.get("dataset", PRESETS[name].dataset)).strip().lower().replace("_", "-")
    for key, value in TEXT_SETTINGS.items():  # texts: an MLP head on frozen sentence embeddings
        if dataset in TEXT_DATASETS and overrides.get(key) is None:
            changes[key] = value
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]
