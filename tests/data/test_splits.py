"""Seeded splits: fold counts, disjointness, determinism, index files."""

from __future__ import annotations

import numpy as np
import pytest

from h2q.data import (
    SCHEMES,
    Dataset,
    ListScheme,
    PerClassScheme,
    Split,
    StratifiedScheme,
    TotalScheme,
    get_scheme,
    load_split,
    make_split,
    save_split,
)
from h2q.exceptions import FileFormatError


def class_ids(n_per_class=800, n_classes=10, seed=0):
    y = np.repeat(np.arange(n_classes), n_per_class)
    return np.random.default_rng(seed).permutation(y)


def multi_hot(n=16_000, n_classes=21, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, n_classes)) < 0.1).astype(np.uint8)


def assert_partition(split, n):
    assert split.is_disjoint()
    union = np.concatenate([split.train, split.query, split.val, split.database])
    np.testing.assert_array_equal(np.sort(union), np.arange(n))
    for fold in (split.train, split.query, split.val, split.database):
        assert fold.dtype == np.int64 and np.all(np.diff(fold) > 0)


@pytest.mark.parametrize("name", ["cifar10", "fashion-mnist", "mnist"])
def test_paper_per_class_counts(name):
    y = class_ids()
    split = make_split(y, name, random_state=0)
    for fold, per_class in (("train", 500), ("query", 100), ("val", 100), ("database", 100)):
        np.testing.assert_array_equal(np.bincount(y[getattr(split, fold)]), [per_class] * 10)
    assert split.sizes == {"train": 5000, "query": 1000, "val": 1000, "database": 1000}
    assert_partition(split, len(y))


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("counts", [(5, 2, 3), (1, 1, 1), (0, 4, 0)])
def test_small_per_class_schemes(seed, counts):
    y = class_ids(n_per_class=12, n_classes=3, seed=seed)
    split = make_split(y, PerClassScheme(*counts), random_state=seed)
    for fold, per_class in zip(("train", "query", "val"), counts, strict=True):
        assert len(getattr(split, fold)) == 3 * per_class
        if per_class:
            np.testing.assert_array_equal(np.bincount(y[getattr(split, fold)]), [per_class] * 3)
    assert len(split.database) == 3 * (12 - sum(counts))
    assert_partition(split, len(y))


@pytest.mark.parametrize(
    ("name", "sizes"), [("nus-wide", (10_500, 2_100, 2_100)), ("coco", (10_000, 5_000, 5_000))]
)
def test_paper_total_counts(name, sizes):
    y = multi_hot(n=24_000)
    labelled = np.flatnonzero(y.any(axis=1))
    split = make_split(y, name, random_state=3)
    assert (split.sizes["train"], split.sizes["query"], split.sizes["val"]) == sizes
    assert split.sizes["database"] == len(labelled) - sum(sizes)
    assert split.is_disjoint()
    union = np.concatenate([split.train, split.query, split.val, split.database])
    np.testing.assert_array_equal(np.sort(union), labelled)  # unlabeled rows left out


def test_total_scheme_keeps_unlabeled_on_request():
    y = np.zeros((20, 3), np.uint8)
    y[:10, 0] = 1
    split = make_split(y, TotalScheme(4, 2, 2, drop_unlabeled=False), random_state=0)
    assert_partition(split, 20)
    with pytest.raises(ValueError, match=r"only 10 are available \(items without any label"):
        make_split(y, TotalScheme(6, 3, 3), random_state=0)


def test_total_scheme_on_class_ids():
    split = make_split(class_ids(50, 4), TotalScheme(20, 10, 10), random_state=0)
    assert split.sizes == {"train": 20, "query": 10, "val": 10, "database": 160}


def test_dataset_input_same_as_labels():
    y = class_ids(30, 3)
    ds = Dataset(
        "toy", X=[str(i) for i in range(len(y))], y=y, kind="text", class_names=["a", "b", "c"]
    )
    a = make_split(ds, PerClassScheme(5, 2, 2), random_state=4)
    b = make_split(y, PerClassScheme(5, 2, 2), random_state=4)
    for fold in ("train", "query", "val", "database"):
        np.testing.assert_array_equal(getattr(a, fold), getattr(b, fold))


@pytest.mark.parametrize("scheme", [PerClassScheme(20, 5, 5), TotalScheme(40, 10, 10)])
def test_determinism_and_seed_dependence(scheme):
    y = class_ids(60, 4)
    a = make_split(y, scheme, random_state=11)
    b = make_split(y, scheme, random_state=11)
    c = make_split(y, scheme, random_state=12)
    for fold in ("train", "query", "val", "database"):
        np.testing.assert_array_equal(getattr(a, fold), getattr(b, fold))
    assert not np.array_equal(a.train, c.train)
    assert not np.array_equal(a.query, c.query)
    g = make_split(y, scheme, random_state=np.random.default_rng(11))
    np.testing.assert_array_equal(g.train, a.train)
    assert g.random_state is None and a.random_state == 11


def test_unseeded_split_records_its_seed():
    y = class_ids(30, 3)
    a = make_split(y, PerClassScheme(5, 2, 2))
    assert isinstance(a.random_state, int)
    again = make_split(y, PerClassScheme(5, 2, 2), random_state=a.random_state)
    np.testing.assert_array_equal(a.train, again.train)


def test_database_includes_train():
    y = class_ids(30, 3)
    split = make_split(y, PerClassScheme(5, 2, 2, database_includes_train=True), random_state=0)
    np.testing.assert_array_equal(np.intersect1d(split.database, split.train), split.train)
    assert len(split.database) == 3 * (30 - 4)
    assert split.overlaps()[("train", "database")] == 15
    assert not split.is_disjoint()
    assert len(np.intersect1d(split.query, split.database)) == 0


def test_max_database_caps_a_subset_of_the_full_database():
    y = class_ids(100, 5)
    full = make_split(y, PerClassScheme(10, 5, 5), random_state=2)
    capped = make_split(y, PerClassScheme(10, 5, 5), random_state=2, max_database=50)
    assert len(full.database) == 400 and len(capped.database) == 50
    assert np.isin(capped.database, full.database).all()
    np.testing.assert_array_equal(capped.train, full.train)
    assert capped.is_disjoint()
    same = make_split(y, PerClassScheme(10, 5, 5), random_state=2, max_database=10_000)
    np.testing.assert_array_equal(same.database, full.database)


def test_list_scheme_from_explicit_lists():
    y = np.arange(10) % 2
    lists = {"train": np.array([0, 1]), "test": np.array([9, 8, 7, 6, 5]), "database": np.arange(5)}
    split = make_split(y, ListScheme(), lists=lists)
    np.testing.assert_array_equal(split.query, [5, 7, 9])
    np.testing.assert_array_equal(split.val, [6, 8])
    contiguous = make_split(y, ListScheme(test_halves="contiguous"), lists=lists)
    np.testing.assert_array_equal(contiguous.query, [7, 8, 9])
    np.testing.assert_array_equal(contiguous.val, [5, 6])
    capped = make_split(y, "imagenet100", random_state=0, lists=lists, max_database=3)
    assert len(capped.database) == 3 and capped.random_state == 0


def test_named_schemes():
    assert SCHEMES["cifar10"] == PerClassScheme(500, 100, 100)
    assert get_scheme("NUS_WIDE") == TotalScheme(10_500, 2_100, 2_100)
    assert get_scheme("ms-coco") == TotalScheme(10_000, 5_000, 5_000)
    assert isinstance(get_scheme("imagenet-100"), ListScheme)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((multi_hot(50), "cifar10"), {}, ValueError, "per-class scheme needs class ids"),
        ((class_ids(50), "cifar10"), {}, ValueError, "class 0 has 50 items.*= 700 per class"),
        ((class_ids(5, 2), TotalScheme(8, 2, 2)), {}, ValueError, "draws 8 \\+ 2 \\+ 2 = 12"),
        ((class_ids(5), "cifar-100"), {}, ValueError, "unknown split scheme 'cifar-100'"),
        ((class_ids(5), "imagenet100"), {}, ValueError, "needs the lists"),
        (
            (class_ids(5), ListScheme(test_halves="odd")),
            {"lists": {"train": [0], "test": [1], "database": [2]}},
            ValueError,
            "test_halves",
        ),
        (
            (class_ids(5), ListScheme()),
            {"lists": {"train": [0], "test": [1], "database": [999]}},
            ValueError,
            "indices outside",
        ),
        ((class_ids(5), PerClassScheme(-1, 1, 1)), {}, ValueError, "scheme.train must be"),
        ((class_ids(5), "cifar10"), {"max_database": 0}, ValueError, "max_database must be"),
        ((class_ids(5), "cifar10"), {"random_state": 1.5}, TypeError, "random_state must be"),
        ((class_ids(5), "cifar10"), {"random_state": -1}, ValueError, "random_state must be"),
        ((class_ids(5), {"train": 1}), {}, TypeError, "scheme must be a name"),
        ((np.zeros(10, np.float32), "cifar10"), {}, TypeError, "integer labels"),
        ((np.zeros(0, int), "cifar10"), {}, ValueError, "non-empty"),
    ],
)
def test_make_split_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_split(*args, **kwargs)


@pytest.mark.parametrize(
    "scheme",
    [
        PerClassScheme(5, 2, 2, database_includes_train=True),
        TotalScheme(10, 3, 3),
        ListScheme(test_halves="contiguous"),
        StratifiedScheme(10, 3, 3, min_per_class=1),
    ],
)
def test_index_file_round_trip(tmp_path, scheme):
    y = class_ids(30, 3)
    lists = {"train": np.arange(5), "test": np.arange(80, 90), "database": np.arange(60)}
    split = make_split(y, scheme, random_state=5, lists=lists)
    path = tmp_path / "split.npz"
    save_split(split, path)
    loaded = load_split(path, y)
    for fold in ("train", "query", "val", "database"):
        np.testing.assert_array_equal(getattr(loaded, fold), getattr(split, fold))
    assert loaded.scheme == scheme and loaded.random_state == split.random_state
    assert loaded.n_samples == 90 and loaded.labels_sha256 == split.labels_sha256
    assert "train=" in repr(loaded)
    assert Split.load(path).sizes == split.sizes  # no labels given: no check


def test_index_file_mismatch_errors(tmp_path):
    y = class_ids(30, 3)
    path = tmp_path / "split.npz"
    make_split(y, PerClassScheme(5, 2, 2), random_state=0).save(path)
    with pytest.raises(
        ValueError, match="made for a data set of 90 items, but the one given has 89"
    ):
        load_split(path, y[:-1])
    with pytest.raises(ValueError, match="made for other labels"):
        load_split(path, y[::-1])


def test_damaged_index_files(tmp_path):
    y = class_ids(30, 3)
    path = tmp_path / "split.npz"
    make_split(y, PerClassScheme(5, 2, 2), random_state=0).save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(FileFormatError, match="truncated or corrupted"):
        load_split(path)
    np.savez(tmp_path / "plain.npz", train=np.arange(3))
    with pytest.raises(FileFormatError, match="not an h2q file"):
        load_split(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        load_split(tmp_path / "absent.npz")


@pytest.mark.parametrize(
    ("folds", "match"),
    [
        ({"train": np.array([0, 12])}, "indices outside 0..9"),
        ({"train": np.array([1, 1])}, "more than once"),
        ({"train": np.array([[1]])}, "1-D integer array"),
        ({"train": np.array([0.5])}, "1-D integer array"),
    ],
)
def test_split_validates_indices(folds, match):
    args = {name: np.array([], np.int64) for name in ("train", "query", "val", "database")}
    args.update(folds)
    with pytest.raises(ValueError, match=match):
        Split(**args, n_samples=10, labels_sha256="0" * 64, scheme=TotalScheme(1, 1, 1))
