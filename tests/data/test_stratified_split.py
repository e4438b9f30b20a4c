"""Stratified splits for classes of unequal size (WordNet's supersenses)."""

from __future__ import annotations

import numpy as np
import pytest

from h2q.data import StratifiedScheme, get_scheme, make_split

# Synsets per supersense in WordNet 3.0 (nouns then verbs; lexicographer files 3..43).
WORDNET_SIZES = [
    51, 6650, 7509, 11587, 3039, 2016, 2964, 5607, 1074, 428, 2573, 2624, 3209, 42,
    1545, 11087, 641, 8030, 1061, 770, 1275, 437, 341, 3544, 2983, 1028, 547, 2383,
    695, 1548, 459, 243, 2196, 694, 343, 1408, 461, 847, 1106, 756, 81,
]  # fmt: skip
FOLDS = ("train", "query", "val", "database")


def labels_with_sizes(sizes, seed=0):
    y = np.repeat(np.arange(len(sizes)), sizes)
    return np.random.default_rng(seed).permutation(y)


def reference_counts(sizes, total, minimum):
    """Slow reference: hand out items one at a time to the class furthest below its share."""
    sizes = np.asarray(sizes, dtype=float)
    share = total * sizes / sizes.sum()
    counts = np.zeros(len(sizes), dtype=np.int64)
    if total == 0:
        return counts
    counts[:] = minimum
    while counts.sum() < total:
        counts[np.argmax(share - counts)] += 1
    return counts


def fold_counts(y, split, fold, n_classes):
    return np.bincount(y[getattr(split, fold)], minlength=n_classes)


def test_wordnet_scheme_on_wordnet_class_sizes():
    y = labels_with_sizes(WORDNET_SIZES)
    split = make_split(y, "wordnet", random_state=0)
    assert split.sizes == {"train": 10_000, "query": 2_000, "val": 2_000, "database": 81_882}
    assert split.is_disjoint()
    union = np.concatenate([getattr(split, f) for f in FOLDS])
    np.testing.assert_array_equal(np.sort(union), np.arange(len(y)))
    for fold, total in (("train", 10_000), ("query", 2_000), ("val", 2_000)):
        counts = fold_counts(y, split, fold, len(WORDNET_SIZES))
        assert counts.min() >= 2 and counts.sum() == total
        share = total * np.asarray(WORDNET_SIZES) / len(y)
        # within one item of the proportional share wherever the minimum does not bind
        free = share >= 3
        assert np.all(np.abs(counts[free] - share[free]) < 1 + 1e-9)
    # the smallest class, noun.motive (42 synsets), as documented in the module docstring
    assert [fold_counts(y, split, f, 41)[13] for f in ("train", "query", "val")] == [4, 2, 2]
    assert get_scheme("wordnet-nouns") == get_scheme("WordNet") == split.scheme


@pytest.mark.parametrize("seed", range(6))
def test_counts_match_a_slow_reference(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 400, size=rng.integers(2, 12))
    y = labels_with_sizes(sizes, seed)
    scheme = StratifiedScheme(
        int(rng.integers(0, len(y) // 3)),
        int(rng.integers(2 * len(sizes), len(y) // 4)),
        0,
        min_per_class=int(rng.integers(0, 2)),
    )
    split = make_split(y, scheme, random_state=seed)
    for fold in ("train", "query", "val"):
        total = getattr(scheme, fold)
        want = reference_counts(sizes, total, scheme.min_per_class if total else 0)
        got = fold_counts(y, split, fold, len(sizes))
        assert got.sum() == total
        # ties between equal shortfalls may be broken differently; the shares must agree
        share = total * sizes / sizes.sum()
        assert np.max(np.abs(got - share)) <= np.max(np.abs(want - share)) + 1e-9
        assert got.min() >= (scheme.min_per_class if total else 0)


def test_minimum_binds_and_total_stays_exact():
    sizes = [1000, 1000, 5, 5]
    y = labels_with_sizes(sizes)
    split = make_split(y, StratifiedScheme(40, 20, 0, min_per_class=2), random_state=1)
    np.testing.assert_array_equal(fold_counts(y, split, "query", 4), [8, 8, 2, 2])
    np.testing.assert_array_equal(fold_counts(y, split, "train", 4), [18, 18, 2, 2])
    np.testing.assert_array_equal(fold_counts(y, split, "val", 4), [0, 0, 0, 0])
    np.testing.assert_array_equal(fold_counts(y, split, "database", 4), [974, 974, 1, 1])


def test_determinism_and_database_includes_train():
    y = labels_with_sizes([300, 50, 20])
    a = make_split(y, StratifiedScheme(30, 10, 10), random_state=3)
    b = make_split(y, StratifiedScheme(30, 10, 10), random_state=3)
    c = make_split(y, StratifiedScheme(30, 10, 10), random_state=4)
    for fold in FOLDS:
        np.testing.assert_array_equal(getattr(a, fold), getattr(b, fold))
    assert not np.array_equal(a.query, c.query)
    d = make_split(y, StratifiedScheme(30, 10, 10, database_includes_train=True), random_state=3)
    np.testing.assert_array_equal(d.database, np.union1d(a.database, a.train))


@pytest.mark.parametrize(
    ("y", "scheme", "match"),
    [
        (labels_with_sizes([100, 3]), StratifiedScheme(10, 4, 4, min_per_class=2), "class 1 has 3"),
        (labels_with_sizes([100, 100]), StratifiedScheme(10, 3, 2, min_per_class=2), "fold of 3"),
        (labels_with_sizes([10, 10]), StratifiedScheme(15, 5, 2), "only 20"),
        (labels_with_sizes([10, 10]), StratifiedScheme(2, 2, 2, min_per_class=-1), "min_per_class"),
        (np.zeros((20, 3), np.uint8), StratifiedScheme(2, 2, 2), "class ids of shape"),
    ],
)
def test_errors(y, scheme, match):
    with pytest.raises(ValueError, match=match):
        make_split(y, scheme, random_state=0)


def test_digits_scheme_on_unequal_classes_still_names_the_fix():
    y = labels_with_sizes(WORDNET_SIZES)
    with pytest.raises(ValueError, match="class 0 has 51 items.*StratifiedScheme"):
        make_split(y, "digits", random_state=0)
