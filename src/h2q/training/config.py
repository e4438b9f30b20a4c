"""``TrainConfig``: the one description of a stage-1 run, and the loop settings it nests.

Every option of a run is declared once, here, as a field of a frozen dataclass: the training
loop's hyperparameters in :class:`LoopSettings` (what :func:`h2q.training.train` takes), the
rest of the run in :class:`TrainConfig`, which holds one ``LoopSettings`` as ``loop``. The
command line (:mod:`h2q.cli.train`) and the grid (:mod:`h2q.experiments.runner`) build one,
:func:`h2q.training.run_training` consumes it, the run folder stores it flat
(``config.json``: :meth:`TrainConfig.to_dict`), and resume compares it
(:meth:`TrainConfig.identity`). A field whose metadata says ``identity=False`` may change when
a run is resumed (``epochs`` may grow, for instance).

Where and how a run executes (output folder, data folder, device, cache, progress bars,
resume) is not part of the description: those are arguments of ``run_training``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._validation import check_positive_int
from ..data.split import ListScheme, PerClassScheme, StratifiedScheme, TotalScheme
from ..losses import LAMBDA0, STRATEGIES, canonical_loss_name
from ..models import BACKBONES
from ..models.precision import check_precision

__all__ = ["MAX_BITS", "PAPER_LR_HEAD", "REFERENCE_METHODS", "LoopSettings", "TrainConfig"]

#: Stage-1 methods with a training schedule of their own instead of a loss in the common loop
#: (:mod:`h2q.training.adsh`). They have no quantization strategies (only
#: :data:`h2q.losses.LAMBDA0`), and their settings go in ``loss_kwargs``
#: (:class:`h2q.training.adsh.ADSHSettings`).
REFERENCE_METHODS = ("adsh",)

#: Widest hash layer a run accepts. Note: past a few thousand bits nothing in h2q is useful
#: (the paper's codes have 16-64 bits), while the hash layer, its Adam state and two
#: checkpoints grow linearly: 100,000 bits wrote 785 MB of checkpoints before failing.
MAX_BITS = 4096

_SCHEME_TYPES = {
    cls.__name__: cls for cls in (PerClassScheme, TotalScheme, ListScheme, StratifiedScheme)
}


#: Learning rate of the hash layer when ``lr_head`` is None: the paper's, for a fine-tuned
#: pretrained backbone (:func:`h2q.training.run_training` picks :data:`SCRATCH_LR_HEAD` when
#: every trained weight starts from scratch).
PAPER_LR_HEAD = 1e-4
#: ``lr_head`` of a run whose trained weights all start from scratch (``small-cnn``, ``mlp``,
#: or the head of a ``frozen`` backbone), where 1e-4 converges several times slower (digits,
#: DPSH, 32 bits: val mAP 0.95 after 100 epochs at 1e-4, 0.98 after 67 at 1e-3).
SCRATCH_LR_HEAD = 1e-3


def _resumable(default: Any) -> Any:
    """A field that may change when a run is resumed (not part of its identity)."""
    return field(default=default, metadata={"identity": False})


@dataclass(frozen=True)
class LoopSettings:
    """What :func:`h2q.training.train` optimises for how long: the loop's hyperparameters.

    Validated when built. :class:`TrainConfig` nests one as ``loop``.

    Parameters
    ----------
    epochs : int, default 100
        Maximum number of epochs (the total, counting those of a resumed run; may grow on
        resume).
    lr_backbone : float, default 1e-5
        Adam learning rate of the weights of a pretrained backbone
        (``model.backbone.pretrained``).
    lr_head : float, optional
        Adam learning rate of the hash layer, the objective's parameters and every layer
        trained from scratch (small CNN, MLP). None: :data:`PAPER_LR_HEAD` (1e-4, the paper's);
        :func:`h2q.training.run_training` first resolves None from the backbone
        (:data:`SCRATCH_LR_HEAD`, 1e-3, when every trained weight starts from scratch).
    weight_decay : float, default 5e-4
    batch_size : int, default 128
    patience : int or None, default 20
        Stop when the best validation mAP is this many epochs old; None never stops early.
    eval_every : int, default 1
        Validate every this many epochs (and after the last).
    val_k : int, optional
        Cut-off of the validation mAP; default the whole training fold.
    seed : int, default 0
        Seeds the shuffling and every random draw made during training (dropout, HSWD's
        samples without their own generator); in a :class:`TrainConfig`, also the split and
        the initial weights. Training runs inside ``torch.random.fork_rng``, so the caller's
        global RNG state is left as it was.
    """

    epochs: int = _resumable(100)
    lr_backbone: float = 1e-5
    lr_head: float | None = None
    weight_decay: float = 5e-4
    batch_size: int = 128
    patience: int | None = _resumable(20)
    eval_every: int = _resumable(1)
    val_k: int | None = _resumable(None)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every"):
            check_positive_int(getattr(self, name), name)
        for name in ("patience", "val_k"):
            check_positive_int(getattr(self, name), name, allow_none=True)
        for name in ("lr_backbone", "lr_head"):
            value = getattr(self, name)
            if value is None and name == "lr_head":
                continue
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be positive (a number > 0), got {value!r}.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}.")

    def replace(self, **changes: Any) -> LoopSettings:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


#: Names of the :class:`LoopSettings` fields, which :class:`TrainConfig` reads and writes flat.
LOOP_FIELDS = tuple(f.name for f in dataclasses.fields(LoopSettings))


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a stage-1 run (validated when built).

    Parameters
    ----------
    dataset : str
        A name for :func:`h2q.data.load_dataset` (``"digits"``, ``"fashion-mnist"``, ...), or
        the ``name`` of the :class:`h2q.data.Dataset` passed to ``run_training(data=...)``.
    method : str, default "dpsh"
        A stage-1 loss: a key of :data:`h2q.losses.LOSSES` or ``"pml:<ClassName>"``; or
        ``"adsh"`` (:data:`REFERENCE_METHODS`: ADSH with its own schedule, settings in
        ``loss_kwargs``; ``epochs``, ``patience``, ``lr_head`` do not apply to it).
    n_bits : int, default 32
        Code length (width of the hash layer), 1 to :data:`MAX_BITS`.
    strategy : str, default :data:`h2q.losses.LAMBDA0`
        Quantization strategy, one of :data:`h2q.losses.STRATEGIES` (lambda0 = H²Q stage 1).
    lam : float, optional
        Penalty weight, for the :data:`h2q.losses.PENALTY` strategy only.
    backbone : str, optional
        A name of :data:`h2q.models.BACKBONES`; default from
        :func:`h2q.training.default_backbone`.
    frozen : bool, default False
        Keep a pretrained backbone frozen: its features are extracted once and cached, and only
        an MLP head (``hidden``) and the hash layer are trained on them.
    image_size : int, optional
        Backbone input side (default 28 small CNN, 64 EfficientNet-Lite0, 224 AlexNet/VGG16).
    hidden : tuple of int, default (512,)
        Hidden widths of the MLP (the ``mlp`` backbone, and the head of a frozen backbone).
    precision : {"float32", "bfloat16", "auto"}, default "float32"
        Precision of the MLP's matrix products (:mod:`h2q.models.precision`): ``"auto"`` is
        bfloat16 on a CPU with native bfloat16 dot products (about 2.2x faster there), float32
        elsewhere. Weights, gradients, batch norm, the hash layer and the loss stay float32.
        Other backbones compute in float32 (``"bfloat16"`` is refused for them).
    scheme : str or scheme object, optional
        Split scheme (default: the one named after the data set, :data:`h2q.data.SCHEMES`).
    max_database : int, optional
        Cap on the database fold (a random subset), to keep a CPU run short.
    loop : LoopSettings, default LoopSettings()
        The training loop's settings: epochs, learning rates, batch size, early stopping and
        the seed, which also seeds the split and the initial weights. ``loop.lr_head`` None:
        1e-4 (the paper's) when a pretrained backbone is fine-tuned with it, 1e-3 when every
        trained weight starts from scratch (``small-cnn``, ``mlp``, or the head of a
        ``frozen`` backbone).
    loss_kwargs : mapping, optional
        Hyperparameters of the loss (e.g. ``{"pair_weight": 0.75}`` for HyP²).
    weights_path : str, optional
        Pretrained weights file for the pretrained backbones.

    Notes
    -----
    :meth:`to_dict`, :meth:`from_dict`, :meth:`replace` and :meth:`identity` name the loop's
    settings flat, as ``config.json`` stores them: ``config.replace(epochs=50, seed=1)``.
    """

    dataset: str
    method: str = "dpsh"
    n_bits: int = 32
    strategy: str = LAMBDA0
    lam: float | None = None
    backbone: str | None = None
    frozen: bool = False
    image_size: int | None = None
    hidden: tuple[int, ...] = (512,)
    precision: str = "float32"
    scheme: str | PerClassScheme | TotalScheme | ListScheme | StratifiedScheme | None = None
    max_database: int | None = None
    loop: LoopSettings = field(default_factory=LoopSettings)
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights_path: str | None = None

    def __post_init__(self) -> None:
        # Normalise the types a caller may reasonably pass (a list, a Path) once, here.
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "loss_kwargs", dict(self.loss_kwargs or {}))
        if self.weights_path is not None:
            object.__setattr__(self, "weights_path", str(self.weights_path))
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ValueError`` (or ``TypeError``) naming it and the fix."""
        if not isinstance(self.dataset, str) or not self.dataset:
            raise TypeError(f"dataset must be a data set name, got {self.dataset!r}.")
        if isinstance(self.method, str) and self.method.strip().lower() in REFERENCE_METHODS:
            object.__setattr__(self, "method", self.method.strip().lower())
            if self.strategy != LAMBDA0 or self.lam is not None:
                raise ValueError(
                    f"{self.method} learns its codes directly and has no quantization "
                    f"strategies; use strategy='lambda0' and lam=None (got {self.strategy!r}, "
                    f"{self.lam!r})."
                )
        else:
            object.__setattr__(self, "method", canonical_loss_name(self.method))
        check_positive_int(self.n_bits, "n_bits")
        if self.n_bits > MAX_BITS:
            raise ValueError(
                f"n_bits={self.n_bits} is more than the {MAX_BITS} bits a run accepts (the "
                "paper uses 16 to 64); pass a shorter code length."
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        if self.lam is not None and not (isinstance(self.lam, (int, float)) and self.lam >= 0):
            raise ValueError(f"lam must be a non-negative number or None, got {self.lam!r}.")
        if self.backbone is not None and self.backbone.lower() not in BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}."
            )
        for name in ("image_size", "max_database"):
            check_positive_int(getattr(self, name), name, allow_none=True)
        for width in self.hidden:
            check_positive_int(width, "hidden widths")
        check_precision(self.precision)
        if not isinstance(self.loop, LoopSettings):
            raise TypeError(
                f"loop must be an h2q.training.LoopSettings, got {type(self.loop).__name__}."
            )
        if not isinstance(self.scheme, (str, type(None), *_SCHEME_TYPES.values())):
            raise TypeError(f"scheme must be a name or a scheme object, got {self.scheme!r}.")

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The flat names of every setting (:meth:`to_dict`'s keys): the fields, with the
        loop's settings in place of ``loop``."""
        names: list[str] = []
        for f in dataclasses.fields(cls):
            names.extend(LOOP_FIELDS if f.name == "loop" else (f.name,))
        return tuple(names)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated); the loop's settings by their names."""
        loop_changes = {name: changes.pop(name) for name in LOOP_FIELDS if name in changes}
        if loop_changes:
            changes["loop"] = changes.get("loop", self.loop).replace(**loop_changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, the loop's flat (a scheme object as ``{"type": ..., **fields}``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "loop":
                out.update(dataclasses.asdict(self.loop))
            else:
                out[f.name] = getattr(self, f.name)
        out["hidden"] = list(self.hidden)
        out["loss_kwargs"] = dict(self.loss_kwargs)
        if not isinstance(self.scheme, (str, type(None))):
            out["scheme"] = {"type": type(self.scheme).__name__, **dataclasses.asdict(self.scheme)}
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> TrainConfig:
        """The config written by :meth:`to_dict` (other keys, such as a run's facts, ignored)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"loop"}
        values = {k: v for k, v in obj.items() if k in names}
        values["loop"] = LoopSettings(**{k: obj[k] for k in LOOP_FIELDS if k in obj})
        scheme = values.get("scheme")
        if isinstance(scheme, Mapping):
            params = {k: v for k, v in scheme.items() if k != "type"}
            values["scheme"] = _SCHEME_TYPES[scheme["type"]](**params)
        return cls(**values)

    def identity(self) -> dict[str, Any]:
        """The settings that must not change when a run is resumed, JSON-ready and flat."""
        full = self.to_dict()
        resumable = {
            f.name
            for f in (*dataclasses.fields(self), *dataclasses.fields(self.loop))
            if not f.metadata.get("identity", True)
        }
        return {k: v for k, v in full.items() if k not in resumable}

    def differences(self, other: TrainConfig) -> list[str]:
        """``"name: old -> new"`` for each identity field where ``other`` differs."""
        mine, theirs = _comparable(self.identity()), _comparable(other.identity())
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Values as they read after a JSON round trip (tuples as lists, 1 == 1.0, NaN == NaN)."""
    out = json.loads(json.dumps(values, sort_keys=True, default=str))
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}
