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

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._validation import check_positive_int
from ..losses import LOSSES
from ..training.config import MAX_BITS, LoopSettings, TrainConfig
from ..training.config import REFERENCE_METHODS as TRAIN_REFERENCE_METHODS
from .rows import BASELINE, ROWS

__all__ = [
    "FULL_METHODS",
    "GRID_TRAIN_EXTRAS",
    "GRID_TRAIN_SETTINGS",
    "MAIN_JOB_TRAINING",
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


#: Settings of the :class:`~h2q.training.TrainConfig` template that every stage-1 run of a grid
#: shares (part of each run's identity, :meth:`GridConfig.stage1_settings`), in that order.
#: The template's ``scheme``, ``weights_path`` and ``precision`` are shared too, and join them
#: when not their default (:data:`GRID_TRAIN_EXTRAS`); its other fields are set per run
#: (method, n_bits, strategy, lam, seed, and ``loss_kwargs`` from ``method_options``).
GRID_TRAIN_SETTINGS = (
    "dataset",
    "backbone",
    "frozen",
    "image_size",
    "hidden",
    "max_database",
    "epochs",
    "patience",
    "eval_every",
    "batch_size",
    "lr_head",
    "lr_backbone",
    "weight_decay",
    "val_k",
)
#: Settings of the template that are part of a grid's identity only when not their default
#: (the data set's own split scheme, the backbone's own weights, float32 products), so that
#: older results folders match.
GRID_TRAIN_EXTRAS = ("scheme", "weights_path", "precision")
_EXTRA_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in GRID_TRAIN_EXTRAS
}

#: The stage-1 settings of the main job (the ``default`` preset): Fashion-MNIST, a frozen
#: EfficientNet-Lite0 at 64 px with an MLP head, up to 20 epochs, patience 6, checked every 3;
#: the head's products in bfloat16 where the CPU computes it natively (``precision="auto"``).
MAIN_JOB_TRAINING = TrainConfig(
    dataset="fashion-mnist",
    backbone="efficientnet-lite0",
    frozen=True,
    image_size=64,
    precision="auto",
    max_database=10_000,
    loop=LoopSettings(epochs=20, patience=6, eval_every=3, lr_head=1e-3),
)


@dataclass(frozen=True)
class GridConfig:
    """Everything that defines a reproduction grid: its axes and one stage-1 template.

    Parameters
    ----------
    name : str
        Preset name (``"default"``, ``"full"``, ``"quick"``) or a label of the user's own.
    methods : tuple of str
        Stage-1 losses (:func:`h2q.losses.make_loss` names).
    bits : tuple of int
        Code lengths.
    seeds : tuple of int
        Seeds of the split, the stage-1 training and the stage-2 random starts.
    train : TrainConfig
        The template of every stage-1 run: data set, backbone (None:
        :func:`h2q.training.default_backbone`), ``frozen`` (a pretrained backbone kept frozen
        with an MLP head trained on cached features), image size, ``hidden`` widths, the cap
        on the database fold (``max_database``; None keeps the whole database) and the loop's
        settings (``train.loop``: epochs, patience, learning rates, ...; its ``val_k`` is the
        cut-off of the validation mAP used for early stopping and for choosing lambda). Each
        run sets its own method, n_bits, strategy, lam, seed and ``loss_kwargs``
        (:func:`h2q.experiments.runner.stage1_config`).
    k : int
        Cut-off of mAP@k (lowered to the database size when larger).
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

    Notes
    -----
    :meth:`replace`, :meth:`to_dict` and :func:`get_config` name the template's shared
    settings flat (:data:`GRID_TRAIN_SETTINGS`): ``config.replace(epochs=5, lr_head=3e-3)``.
    """

    name: str = "custom"
    methods: tuple[str, ...] = ("dpsh", "dch", "hyp2")
    bits: tuple[int, ...] = (16, 32, 64)
    seeds: tuple[int, ...] = (0,)
    train: TrainConfig = field(default_factory=lambda: MAIN_JOB_TRAINING)
    k: int = 1000
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
        if not isinstance(self.train, TrainConfig):
            raise TypeError(
                f"train must be an h2q.training.TrainConfig, got {type(self.train).__name__}."
            )
        if self.train.loss_kwargs:
            raise ValueError(
                f"the template's loss_kwargs {dict(self.train.loss_kwargs)} would be replaced "
                "by each method's; set them per method in method_options, e.g. "
                "{'hyp2': {'pair_weight': 0.75}}."
            )
        check_positive_int(self.k, "k")
        check_positive_int(self.pr_bits, "pr_bits", allow_none=True)
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

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """Every name :meth:`replace` and :func:`get_config` take: the grid's own fields and
        the template's shared settings (:data:`GRID_TRAIN_SETTINGS`, :data:`GRID_TRAIN_EXTRAS`)."""
        own = tuple(f.name for f in dataclasses.fields(cls) if f.name != "train")
        return own + GRID_TRAIN_SETTINGS + GRID_TRAIN_EXTRAS

    def replace(self, **changes: Any) -> GridConfig:
        """A copy with some settings changed (validated); the template's by their names
        (``epochs=5``), or a whole new template (``train=TrainConfig(...)``)."""
        unknown = sorted(set(changes) - set(self.setting_names()) - {"train"})
        if unknown:
            raise TypeError(f"unknown settings {unknown}; choose among {self.setting_names()}.")
        names = GRID_TRAIN_SETTINGS + GRID_TRAIN_EXTRAS
        shared = {k: changes.pop(k) for k in names if k in changes}
        if shared:
            changes["train"] = changes.get("train", self.train).replace(**shared)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, the template's shared ones flat."""
        own = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "train"
        }
        out = {**own, **self._shared_train_settings()}
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["lambda_grids"] = {k: list(v) for k, v in self.lambda_grids.items()}
        return out

    def _shared_train_settings(self) -> dict[str, Any]:
        flat = self.train.to_dict()
        out = {name: flat[name] for name in GRID_TRAIN_SETTINGS}
        extras = {n: flat[n] for n in GRID_TRAIN_EXTRAS if flat[n] != _EXTRA_DEFAULTS[n]}
        out.update(extras)
        return out

    def loss_kwargs(self, method: str) -> dict[str, Any]:
        """The ``loss_kwargs`` of ``method``'s runs, as stored in JSON (tuples as lists), so
        that a resumed run matches the one it continues."""
        return json.loads(json.dumps(dict(self.method_options.get(method, {}))))

    def stage1_settings(self) -> dict[str, Any]:
        """The settings every stage-1 run of this grid shares (part of each run's identity):
        the template's :data:`GRID_TRAIN_SETTINGS`, and :data:`GRID_TRAIN_EXTRAS` and
        ``method_options`` when set."""
        out = self._shared_train_settings()
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
        train=MAIN_JOB_TRAINING.replace(
            image_size=224, max_database=None, epochs=100, patience=20, eval_every=1
        ),
        k=5000,
    ),
    "quick": GridConfig(
        name="quick",
        methods=("dpsh",),
        bits=(8, 16),
        seeds=(0,),
        train=TrainConfig(
            dataset="digits",
            backbone="mlp",
            hidden=(64,),
            loop=LoopSettings(epochs=4, patience=None, eval_every=2, lr_head=3e-3),
        ),
        k=100,
        lambda_grids={"dpsh": (0.1, 0.01)},
    ),
}


#: Text data sets, and the settings any preset takes for them unless overridden: their items
#: are embedded once by a frozen sentence encoder (:func:`h2q.text.training_features`), and
#: stage 1 trains an MLP head on the embeddings, so there is no image backbone to freeze. The
#: head computes in float32, as the kept WordNet results were computed (``--precision auto``
#: runs it in bfloat16 where the CPU has it).
TEXT_DATASETS = ("wordnet", "wordnet-nouns")
TEXT_SETTINGS: dict[str, Any] = {
    "backbone": "mlp",
    "frozen": False,
    "image_size": None,
    "precision": "float32",
}


def get_config(name: str = "default", **overrides: Any) -> GridConfig:
    """A preset (:data:`PRESETS`), with fields overridden (None values are ignored).

    Parameters
    ----------
    name : {"default", "full", "quick"}
    **overrides
        Settings of :class:`GridConfig` to change (:meth:`GridConfig.setting_names`: its own
        fields and the template's shared settings, flat: ``epochs=5``); a None value keeps
        the preset's.

    Returns
    -------
    GridConfig
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    names = set(GridConfig.setting_names())
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; GridConfig settings are {sorted(names)}.")
    changes = {k: v for k, v in overrides.items() if v is not None}
    preset_dataset = PRESETS[name].train.dataset
    dataset = str(changes.get("dataset", preset_dataset)).strip().lower().replace("_", "-")
    for key, value in TEXT_SETTINGS.items():  # texts: an MLP head on frozen sentence embeddings
        if dataset in TEXT_DATASETS and overrides.get(key) is None:
            changes[key] = value
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]
