"""Seeded train / query / validation / database folds with the paper's structure.

Four kinds of scheme:

- :class:`PerClassScheme`: for single-label sets. Within each class, items are shuffled and
  the first ``train`` go to train, the next ``query`` to query, the next ``val`` to
  validation and the rest of the class to the database.
- :class:`StratifiedScheme`: for single-label sets with classes of unequal size (WordNet's
  supersenses: 42 to 11,587 items). Each fold gets exactly ``train``, ``query`` and ``val``
  items in total, shared among the classes in proportion to their sizes (largest remainder),
  with at least ``min_per_class`` from every class; within each class the items are drawn as
  in the per-class scheme and the rest of the class goes to the database.
- :class:`TotalScheme`: for multi-label sets. All items are shuffled together and cut into
  ``train``, ``query`` and ``val`` items; the rest is the database.
- :class:`ListScheme`: for sets that come with their own list files (ImageNet-100): train and
  database are the ``train`` and ``database`` lists as given; the ``test`` list is split in
  two halves, query and validation: alternate lines by default (1st, 3rd, ... to query), as
  the paper's authors processed HashNet's list, or first and second half. No randomness.

Database convention. For the per-class and total schemes the database is *the rest*: train,
query, validation and database are pairwise disjoint and, unless ``max_database`` caps it,
cover every item (CIFAR-10: 5,000 + 1,000 + 1,000 + 53,000 = 60,000); with multi-hot labels
the total scheme leaves items without any label out of every fold (``drop_unlabeled``).
``database_includes_train=True`` adds the training items to the database, the other
convention found in deep-hashing code. ``max_database`` keeps a uniformly random (not
stratified) subset of the database, drawn after the other folds, so the other folds do not
change with the cap. For the list scheme the folds are what the lists say; in HashNet's
ImageNet-100 lists the training images are also database images, so train and database
overlap there, while query and validation are disjoint from both.

Named schemes (:data:`SCHEMES`):

========================  =========================================  ==================
name                      folds                                      from
========================  =========================================  ==================
``"cifar10"``             500 / 100 / 100 per class, database rest   the paper
``"nus-wide"``            10,500 / 2,100 / 2,100 total, rest         the paper
``"coco"``                10,000 / 5,000 / 5,000 total, rest         the paper
``"imagenet100"``         lists; test list alternately query / val   the paper
``"fashion-mnist"``       500 / 100 / 100 per class, database rest   ours (as CIFAR-10)
``"mnist"``               500 / 100 / 100 per class, database rest   ours (as CIFAR-10)
``"digits"``              100 / 20 / 20 per class, database rest     ours (small set)
``"wordnet"``             10,000 / 2,000 / 2,000 stratified (at      ours (unequal
                          least 2 per class and fold), rest          classes)
``"wordnet-nouns"``       as ``"wordnet"``                           ours
========================  =========================================  ==================

With WordNet's 95,882 noun and verb synsets the ``"wordnet"`` scheme gives train 10,000,
query 2,000, val 2,000 and a database of 81,882, each fold with every one of the 41 classes
in proportion to its size (the smallest, ``noun.motive`` with 42 synsets, gets 4 train, 2
query and 2 val items).

With Fashion-MNIST's 70,000 images (train and test files pooled, as the paper pools
CIFAR-10's) the ``"fashion-mnist"`` scheme gives train 5,000, query 1,000, val 1,000 and a
database of 63,000; pass ``max_database`` to use a random subset of it.

Index arrays are sorted int64. A split is reproducible from ``(labels, scheme,
random_state)`` with the same numpy version; save it with :meth:`Split.save` to repeat a run
exactly whatever the version.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .._io import load_state, save_state
from ..exceptions import FileFormatError
from ._names import canonical_name
from .dataset import Dataset, labels_fingerprint

FOLDS = ("train", "query", "val", "database")
_KIND = "Split"
_VERSION = 1


@dataclass(frozen=True)
class PerClassScheme:
    """Per-class counts for single-label data (class ids ``(n,)``).

    Parameters
    ----------
    train, query, val : int
        Items drawn from *each* class for each fold; every class must have at least
        ``train + query + val`` items. The rest of each class is the database.
    database_includes_train : bool
        Add the training items to the database (default: the database is the rest only).
    """

    train: int
    query: int
    val: int
    database_includes_train: bool = False


@dataclass(frozen=True)
class TotalScheme:
    """Total counts drawn from all items at random (for multi-label data, or any labels).

    Parameters
    ----------
    train, query, val : int
        Items in each fold; the rest is the database.
    database_includes_train : bool
        Add the training items to the database (default: the database is the rest only).
    drop_unlabeled : bool
        For multi-hot labels, leave items with no label out of every fold (a query without
        labels has no relevant item; the paper keeps only images with at least one of the
        retained concepts).
    """

    train: int
    query: int
    val: int
    database_includes_train: bool = False
    drop_unlabeled: bool = True


@dataclass(frozen=True)
class ListScheme:
    """Folds given by a data set's own list files (``dataset.lists``).

    Parameters
    ----------
    train, test, database : str
        Keys of ``dataset.lists`` for the train, test and database lists.
    test_halves : {"alternate", "contiguous"}
        How the test list is cut into query and validation: ``"alternate"`` puts the 1st,
        3rd, 5th, ... test images in query and the 2nd, 4th, ... in validation (the paper's
        processing of HashNet's ImageNet-100 test list); ``"contiguous"`` puts the first half
        (rounded up) in query and the second in validation.
    """

    train: str = "train"
    test: str = "test"
    database: str = "database"
    test_halves: Literal["alternate", "contiguous"] = "alternate"


@dataclass(frozen=True)
class StratifiedScheme:
    """Total counts shared among the classes in proportion to their sizes (class ids ``(n,)``).

    For a fold of ``t`` items out of ``n``, class ``c`` with ``n_c`` items gets
    ``max(min_per_class, floor(t * n_c / n))`` items, then the total is made exactly ``t``:
    items still missing go one each to the classes furthest below their share
    ``t * n_c / n`` (the largest remainders; ties to the larger class), and items in excess
    (when the minimum lifted small classes) are taken one each from the classes furthest
    above their share that still have more than the minimum. A fold with ``t = 0`` takes
    nothing from any class.

    Parameters
    ----------
    train, query, val : int
        Items in each fold (in total, over all classes); the rest of each class is the
        database.
    min_per_class : int
        Fewest items each class gives to each non-empty fold (default 1); the scheme raises
        when a class is too small to give them, or a fold is too small to hold them.
    database_includes_train : bool
        Add the training items to the database (default: the database is the rest only).
    """

    train: int
    query: int
    val: int
    min_per_class: int = 1
    database_includes_train: bool = False


Scheme = PerClassScheme | TotalScheme | ListScheme | StratifiedScheme

SCHEMES: dict[str, Scheme] = {
    "cifar10": PerClassScheme(500, 100, 100),
    "nus-wide": TotalScheme(10_500, 2_100, 2_100),
    "coco": TotalScheme(10_000, 5_000, 5_000),
    "imagenet100": ListScheme(),
    "fashion-mnist": PerClassScheme(500, 100, 100),
    "mnist": PerClassScheme(500, 100, 100),
    "digits": PerClassScheme(100, 20, 20),
    "wordnet": StratifiedScheme(10_000, 2_000, 2_000, min_per_class=2),
    "wordnet-nouns": StratifiedScheme(10_000, 2_000, 2_000, min_per_class=2),
}


def get_scheme(name: str) -> Scheme:
    """The named split scheme (see the table in this module's docstring)."""
    key = canonical_name(name)
    if key not in SCHEMES:
        raise ValueError(
            f"unknown split scheme {name!r}; named schemes are {sorted(SCHEMES)}. For another "
            "data set pass PerClassScheme(train, query, val), StratifiedScheme(train, query, val) "
            "or TotalScheme(train, query, val)."
        )
    return SCHEMES[key]  # type: ignore[index]


def _scheme_description(scheme: Scheme) -> dict[str, Any]:
    return {"type": type(scheme).__name__, **asdict(scheme)}


def _scheme_from_description(desc: dict[str, Any]) -> Scheme:
    types = {
        cls.__name__: cls for cls in (PerClassScheme, TotalScheme, ListScheme, StratifiedScheme)
    }
    params = {k: v for k, v in desc.items() if k != "type"}
    return types[desc["type"]](**params)


@dataclass(frozen=True, eq=False)
class Split:
    """Index arrays of the four folds of a retrieval experiment.

    Parameters
    ----------
    train, query, val, database : numpy.ndarray
        Sorted int64 item indices of each fold.
    n_samples : int
        Number of items in the data set the split was made for.
    labels_sha256 : str
        :func:`h2q.data.dataset.labels_fingerprint` of that data set's labels.
    scheme : PerClassScheme, TotalScheme or ListScheme
        The scheme that made the split.
    random_state : int or None
        The seed that made it (None when a ``numpy.random.Generator`` was passed, or for
        list schemes, which use no randomness).
    """

    train: np.ndarray
    query: np.ndarray
    val: np.ndarray
    database: np.ndarray
    n_samples: int
    labels_sha256: str
    scheme: Scheme
    random_state: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in FOLDS:
            idx = np.asarray(getattr(self, name))
            if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
                raise ValueError(
                    f"Split.{name} must be a 1-D integer array, got {idx.dtype} {idx.shape}."
                )
            idx = np.sort(idx.astype(np.int64))
            if idx.size and (idx[0] < 0 or idx[-1] >= self.n_samples):
                raise ValueError(
                    f"Split.{name} has indices outside 0..{self.n_samples - 1} "
                    f"({int(idx[0])}..{int(idx[-1])})."
                )
            if idx.size > 1 and np.any(idx[1:] == idx[:-1]):
                raise ValueError(f"Split.{name} lists an item more than once.")
            object.__setattr__(self, name, idx)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"Split({sizes}, n_samples={self.n_samples}, random_state={self.random_state})"

    @property
    def sizes(self) -> dict[str, int]:
        """Number of items in each fold."""
        return {name: len(getattr(self, name)) for name in FOLDS}

    def overlaps(self) -> dict[tuple[str, str], int]:
        """Number of items shared by each pair of folds (all zero for a disjoint split)."""
        out = {}
        for i, a in enumerate(FOLDS):
            for b in FOLDS[i + 1 :]:
                out[(a, b)] = len(np.intersect1d(getattr(self, a), getattr(self, b)))
        return out

    def is_disjoint(self) -> bool:
        """True when no item is in two folds."""
        return not any(self.overlaps().values())

    def check(self, y: np.ndarray | Dataset) -> None:
        """Raise ``ValueError`` unless ``y`` (labels or a Dataset) matches the split."""
        labels = y.y if isinstance(y, Dataset) else np.asarray(y)
        if len(labels) != self.n_samples:
            raise ValueError(
                f"this split was made for a data set of {self.n_samples} items, but the one "
                f"given has {len(labels)}. Load the data set the split was made for, or make a "
                "new split with make_split()."
            )
        if labels_fingerprint(labels) != self.labels_sha256:
            raise ValueError(
                f"this split was made for other labels (hash {self.labels_sha256[:12]}..., the "
                f"data set given has {labels_fingerprint(labels)[:12]}...): same size, "
                "different data or order. Load the data set the split was made for, or make a "
                "new split with make_split()."
            )

    def save(self, path: str | os.PathLike) -> None:
        """Write the split to a ``.npz`` index file, atomically."""
        meta = {
            "n_samples": int(self.n_samples),
            "labels_sha256": self.labels_sha256,
            "scheme": _scheme_description(self.scheme),
            "random_state": self.random_state,
            "meta": self.meta,
        }
        save_state(path, _KIND, _VERSION, {n: getattr(self, n) for n in FOLDS}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, y: np.ndarray | Dataset | None = None) -> Split:
        """Read a split written by :meth:`save`; with ``y``, check it belongs to those labels.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        h2q.exceptions.FileFormatError
            When the file is corrupted or not a split file.
        ValueError
            When ``y`` is given and differs in size or content from the split's data set.
        """
        arrays, meta = load_state(path, _KIND, _VERSION)
        try:
            split = cls(
                **{n: arrays[n] for n in FOLDS},
                n_samples=meta["n_samples"],
                labels_sha256=meta["labels_sha256"],
                scheme=_scheme_from_description(meta["scheme"]),
                random_state=meta["random_state"],
                meta=meta.get("meta", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(
                f"{path} is a damaged split file ({type(exc).__name__}: {exc}). Make the split "
                "again with make_split() and save it."
            ) from exc
        if y is not None:
            split.check(y)
        return split


def save_split(split: Split, path: str | os.PathLike) -> None:
    """Write ``split`` to ``path`` (``.npz``), atomically; see :meth:`Split.save`."""
    split.save(path)


def load_split(path: str | os.PathLike, y: np.ndarray | Dataset | None = None) -> Split:
    """Read a split file; with ``y``, check it was made for those labels; see :meth:`Split.load`."""
    return Split.load(path, y)


def _per_class(y: np.ndarray, s: PerClassScheme, rng: np.random.Generator) -> dict[str, np.ndarray]:
    if y.ndim != 1:
        raise ValueError(
            "a per-class scheme needs class ids of shape (n,), got multi-hot labels of shape "
            f"{y.shape}. Use a TotalScheme (e.g. the 'nus-wide' or 'coco' scheme) instead."
        )
    need = s.train + s.query + s.val
    folds: dict[str, list[np.ndarray]] = {name: [] for name in FOLDS}
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        if len(members) < need:
            raise ValueError(
                f"class {c} has {len(members)} items, but the scheme draws {s.train} + "
                f"{s.query} + {s.val} = {need} per class. Use smaller counts, a StratifiedScheme "
                "(for classes of unequal size) or a TotalScheme."
            )
        cuts = np.cumsum([s.train, s.query, s.val])
        for name, part in zip(FOLDS, np.split(members, cuts), strict=True):
            folds[name].append(part)
    return {name: np.concatenate(parts) for name, parts in folds.items()}


def _proportional_counts(sizes: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Per-class counts summing to ``total``, proportional to ``sizes``, each >= ``minimum``."""
    if total == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    if total < minimum * len(sizes):
        raise ValueError(
            f"a fold of {total} items cannot hold min_per_class={minimum} items from each of "
            f"{len(sizes)} classes; use a larger fold or a smaller min_per_class."
        )
    exact = total * sizes / sizes.sum()
    counts = np.maximum(np.floor(exact).astype(np.int64), minimum)
    index = np.arange(len(sizes))
    missing = total - int(counts.sum())
    if missing > 0:  # furthest below their share first, then the largest classes
        order = np.lexsort((index, -sizes, counts - exact))
        counts[order[:missing]] += 1
    while missing < 0:  # the minimum pushed the total over: take from those most above it
        spare = np.flatnonzero(counts > minimum)
        order = spare[np.lexsort((spare, -sizes[spare], exact[spare] - counts[spare]))]
        take = order[: min(-missing, len(order))]
        counts[take] -= 1
        missing += len(take)
    return counts


def _stratified(
    y: np.ndarray, s: StratifiedScheme, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    if y.ndim != 1:
        raise ValueError(
            "a stratified scheme needs class ids of shape (n,), got multi-hot labels of shape "
            f"{y.shape}. Use a TotalScheme (e.g. the 'nus-wide' or 'coco' scheme) instead."
        )
    if isinstance(s.min_per_class, bool) or not isinstance(s.min_per_class, (int, np.integer)):
        raise ValueError(f"scheme.min_per_class must be an integer >= 0, got {s.min_per_class!r}.")
    if s.min_per_class < 0:
        raise ValueError(f"scheme.min_per_class must be an integer >= 0, got {s.min_per_class}.")
    classes, sizes = np.unique(y, return_counts=True)
    if s.train + s.query + s.val > len(y):
        raise ValueError(
            f"the scheme draws {s.train} + {s.query} + {s.val} = {s.train + s.query + s.val} "
            f"items, but there are only {len(y)}. Use smaller counts."
        )
    per_fold = [_proportional_counts(sizes, t, s.min_per_class) for t in (s.train, s.query, s.val)]
    need = np.sum(per_fold, axis=0)
    short = np.flatnonzero(need > sizes)
    if short.size:
        c = short[0]
        raise ValueError(
            f"class {classes[c]} has {sizes[c]} items, but the scheme draws "
            f"{' + '.join(str(int(f[c])) for f in per_fold)} = {need[c]} from it "
            f"(min_per_class={s.min_per_class}). Use a smaller min_per_class or smaller folds."
        )
    folds: dict[str, list[np.ndarray]] = {name: [] for name in FOLDS}
    for c, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(y == label))
        cuts = np.cumsum([f[c] for f in per_fold])
        for name, part in zip(FOLDS, np.split(members, cuts), strict=True):
            folds[name].append(part)
    return {name: np.concatenate(parts) for name, parts in folds.items()}


def _total(y: np.ndarray, s: TotalScheme, rng: np.random.Generator) -> dict[str, np.ndarray]:
    candidates = np.arange(len(y))
    if y.ndim == 2 and s.drop_unlabeled:
        candidates = candidates[y.any(axis=1)]
    need = s.train + s.query + s.val
    if len(candidates) < need:
        raise ValueError(
            f"the scheme draws {s.train} + {s.query} + {s.val} = {need} items, but only "
            f"{len(candidates)} are available"
            + (" (items without any label are left out)" if len(candidates) < len(y) else "")
            + ". Use smaller counts."
        )
    perm = rng.permutation(candidates)
    cuts = np.cumsum([s.train, s.query, s.val])
    return dict(zip(FOLDS, np.split(perm, cuts), strict=True))


def _from_lists(lists: dict[str, np.ndarray], s: ListScheme) -> dict[str, np.ndarray]:
    missing = [k for k in (s.train, s.test, s.database) if k not in lists]
    if missing:
        raise ValueError(
            f"a list scheme needs the lists {[s.train, s.test, s.database]}, but "
            f"{missing} are not among the lists given ({sorted(lists)}). Pass a Dataset "
            "loaded from list files (e.g. load_dataset('imagenet100', root)) or lists=...."
        )
    test = np.asarray(lists[s.test], dtype=np.int64)
    if s.test_halves == "alternate":
        query, val = test[0::2], test[1::2]
    elif s.test_halves == "contiguous":
        half = (len(test) + 1) // 2
        query, val = test[:half], test[half:]
    else:
        raise ValueError(f"test_halves must be 'alternate' or 'contiguous', got {s.test_halves!r}.")
    return {
        "train": np.asarray(lists[s.train], dtype=np.int64),
        "query": query,
        "val": val,
        "database": np.asarray(lists[s.database], dtype=np.int64),
    }


def _seed(random_state: int | np.random.Generator | None) -> tuple[np.random.Generator, int | None]:
    if isinstance(random_state, np.random.Generator):
        return random_state, None
    if random_state is None:
        # Draw a fresh seed and record it, so even an unseeded split can be made again.
        seed = int(np.random.SeedSequence().generate_state(1)[0])
        return np.random.default_rng(seed), seed
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise TypeError(
            f"random_state must be an int, a numpy Generator or None, got {random_state!r}."
        )
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state}.")
    return np.random.default_rng(int(random_state)), int(random_state)


def make_split(
    y: np.ndarray | Dataset,
    scheme: str | Scheme,
    random_state: int | np.random.Generator | None = None,
    *,
    max_database: int | None = None,
    lists: dict[str, np.ndarray] | None = None,
) -> Split:
    """Draw train / query / val / database folds.

    Parameters
    ----------
    y : numpy.ndarray or Dataset
        Class ids ``(n,)`` or multi-hot ``(n, n_classes)``, or a :class:`Dataset` (its
        ``y`` and ``lists`` are used).
    scheme : str or scheme object
        A name from :data:`SCHEMES` (``"cifar10"``, ``"nus-wide"``, ``"coco"``,
        ``"imagenet100"``, ``"fashion-mnist"``, ``"mnist"``, ``"digits"``, ``"wordnet"``,
        ``"wordnet-nouns"``) or a :class:`PerClassScheme`, :class:`StratifiedScheme`,
        :class:`TotalScheme` or :class:`ListScheme`.
    random_state : int, numpy.random.Generator or None
        Seed. The same seed, labels and scheme give the same split. None draws a fresh seed
        and records it in ``split.random_state``.
    max_database : int, optional
        Cap on the database size: when larger, a random subset of this many items (drawn
        with the same generator, after the other folds) is kept.
    lists : dict of str to numpy.ndarray, optional
        The data set's own list indices, for a :class:`ListScheme` when ``y`` is an array.

    Returns
    -------
    Split
        Sorted int64 index arrays. Disjoint for the per-class and total schemes (see this
        module's docstring for the database convention).

    Raises
    ------
    ValueError
        When a class is too small for a per-class scheme, there are too few items for a total
        scheme, a per-class scheme gets multi-hot labels, a list is missing, or an argument
        is out of range.
    """
    if isinstance(y, Dataset):
        lists = y.lists if lists is None else lists
        labels = y.y
    else:
        labels = np.asarray(y)
    if labels.ndim not in (1, 2) or len(labels) == 0:
        raise ValueError(
            f"y must be non-empty class ids (n,) or multi-hot (n, n_classes), got shape "
            f"{labels.shape}."
        )
    if labels.dtype.kind not in "biu":
        raise TypeError(f"y must hold integer labels, got dtype {labels.dtype}.")
    s = get_scheme(scheme) if isinstance(scheme, str) else scheme
    if not isinstance(s, (PerClassScheme, TotalScheme, ListScheme, StratifiedScheme)):
        raise TypeError(f"scheme must be a name or a scheme object, got {scheme!r}.")
    if not isinstance(s, ListScheme):
        for name in ("train", "query", "val"):
            value = getattr(s, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"scheme.{name} must be an integer >= 0, got {value!r}.")
    if max_database is not None and (
        isinstance(max_database, bool)
        or not isinstance(max_database, (int, np.integer))
        or max_database < 1
    ):
        raise ValueError(f"max_database must be a positive integer or None, got {max_database!r}.")
    rng, seed = _seed(random_state)
    if isinstance(s, ListScheme):
        folds = _from_lists(lists or {}, s)
        seed = seed if max_database is not None else None
    elif isinstance(s, PerClassScheme):
        folds = _per_class(labels, s, rng)
    elif isinstance(s, StratifiedScheme):
        folds = _stratified(labels, s, rng)
    else:
        folds = _total(labels, s, rng)
    if getattr(s, "database_includes_train", False):
        folds["database"] = np.union1d(folds["database"], folds["train"])
    if max_database is not None and len(folds["database"]) > max_database:
        folds["database"] = rng.choice(folds["database"], size=max_database, replace=False)
    n = len(labels)
    for name, idx in folds.items():
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"the {name} list holds indices outside 0..{n - 1}; the lists do not belong "
                "to these labels."
            )
    return Split(
        **folds,
        n_samples=n,
        labels_sha256=labels_fingerprint(labels),
        scheme=s,
        random_state=seed,
    )
