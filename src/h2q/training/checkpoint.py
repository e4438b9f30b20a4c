"""Checkpoint files of the training loop: written atomically, read without pickle.

``<checkpoint_dir>/last.pt`` holds everything needed to continue a run after the last
checkpointed epoch, every ``eval_every`` epochs (model, objective, optimiser, epoch, best
score, history, RNG states);
``<checkpoint_dir>/best.pt`` holds the model and objective of the best validation epoch.
Both are ``torch.save`` dictionaries of tensors and plain Python values, read back with
``torch.load(weights_only=True)``, so loading one runs no code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_open, load_torch
from ..exceptions import FileFormatError

__all__ = ["LAST", "BEST", "load_checkpoint", "module_generators", "save_checkpoint"]

LAST = "last.pt"
BEST = "best.pt"
#: Version of the checkpoint layout.
FORMAT = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename it over ``path``."""
    with atomic_open(path) as handle:
        torch.save({"format": FORMAT, **payload}, handle)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors are loaded on the CPU)."""
    path = Path(path)
    payload = load_torch(
        path,
        "h2q checkpoint",
        missing=f"no such checkpoint: {path}",
        fix=" Delete it and train again.",
        error=FileFormatError,
    )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not an h2q training checkpoint (format {FORMAT}).")
    return payload


def cpu_state(module: nn.Module) -> dict[str, Any]:
    """A detached CPU copy of ``module.state_dict()`` (kept in memory as the best state)."""
    return {
        k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v
        for k, v in module.state_dict().items()
    }


def module_generators(module: nn.Module) -> dict[str, torch.Generator | None]:
    """Every ``torch.Generator`` attribute of ``module`` and its submodules, by dotted name.

    Losses that draw random numbers from their own generator (HSWD's ±1 samples) keep it as
    a plain attribute, outside ``state_dict``; saving its state makes a resumed run draw the
    same numbers as an uninterrupted one. Attributes that are ``None`` but named like a
    generator (``*generator*``) are listed too, so that a lazily created generator can be
    restored.
    """
    found: dict[str, torch.Generator | None] = {}
    for prefix, sub in module.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Generator) or (value is None and "generator" in attr):
                found[f"{prefix}.{attr}" if prefix else attr] = value
    return found


def generator_states(module: nn.Module) -> dict[str, dict[str, Any]]:
    """States of the generators of :func:`module_generators` that exist."""
    return {
        name: {"device": str(g.device), "state": g.get_state()}
        for name, g in module_generators(module).items()
        if g is not None
    }


def restore_generators(module: nn.Module, states: dict[str, dict[str, Any]]) -> None:
    """Set the generators of ``module`` to ``states`` (creating lazily made ones)."""
    subs = dict(module.named_modules())
    for name, saved in states.items():
        prefix, _, attr = name.rpartition(".")
        sub = subs.get(prefix)
        if sub is None or not hasattr(sub, attr):
            raise FileFormatError(
                f"the checkpoint has a random generator {name!r} that this objective lacks; "
                "resume with the same loss and strategy."
            )
        generator = getattr(sub, attr)
        if generator is None:
            generator = torch.Generator(device=saved["device"])
            setattr(sub, attr, generator)
        generator.set_state(saved["state"])
