"""Canonical data-set names and their accepted spellings (shared by the registry and splits)."""

from __future__ import annotations

_ALIASES = {
    "fashion-mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "mnist": "mnist",
    "digits": "digits",
    "openclipart": "openclipart",
    "wordnet-nouns": "wordnet-nouns",
    "wordnet": "wordnet",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "nus-wide": "nus-wide",
    "nuswide": "nus-wide",
    "nus-wide-21": "nus-wide",
    "coco": "coco",
    "ms-coco": "coco",
    "mscoco": "coco",
    "imagenet100": "imagenet100",
    "imagenet-100": "imagenet100",
}


def canonical_name(name: str) -> str | None:
    """The canonical spelling of a data-set name, or None when unknown.

    Case, ``_`` versus ``-`` and surrounding spaces do not matter.
    """
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(key)
