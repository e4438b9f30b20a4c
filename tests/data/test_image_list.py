"""NUS-WIDE / COCO / ImageNet-100 list files with tiny images written by PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from h2q.data import (
    DatasetNotFoundError,
    ListScheme,
    load_coco,
    load_dataset,
    load_image_list,
    load_imagenet100,
    load_nus_wide,
    make_split,
    read_image_list,
)
from h2q.exceptions import FileFormatError


def write_image(path: Path, colour=(200, 10, 10), size=(6, 4), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


def write_list(path: Path, rows):
    path.write_text("".join(f"{p} {' '.join(str(v) for v in lab)}\n" for p, lab in rows))


@pytest.fixture
def multilabel_folder(tmp_path):
    """5 images, 3 classes; train.txt is a subset of database.txt (the toolkits' layout)."""
    labels = {
        "img/a.jpg": [1, 0, 1],
        "img/b.jpg": [0, 1, 0],
        "img/c.jpg": [1, 1, 0],
        "img/d.jpg": [0, 0, 1],
        "img/e.jpg": [0, 0, 0],
    }
    for i, rel in enumerate(labels):
        write_image(tmp_path / rel, colour=(i * 40, 0, 0), fmt="JPEG")
    write_list(
        tmp_path / "database.txt", [(p, labels[p]) for p in ("img/a.jpg", "img/b.jpg", "img/c.jpg")]
    )
    write_list(tmp_path / "train.txt", [(p, labels[p]) for p in ("img/b.jpg", "img/a.jpg")])
    write_list(tmp_path / "test.txt", [(p, labels[p]) for p in ("img/d.jpg", "img/e.jpg")])
    return tmp_path


@pytest.mark.parametrize("loader", [load_nus_wide, load_coco])
def test_multilabel_lists_are_pooled(multilabel_folder, loader):
    ds = loader(multilabel_folder)
    assert ds.kind == "image_paths" and ds.is_multilabel
    assert len(ds) == 5  # a.jpg and b.jpg appear twice but are one item each
    assert ds.y.dtype == np.uint8 and ds.y.shape == (5, 3) and ds.class_names == ["0", "1", "2"]
    names = [Path(p).name for p in ds.X]
    assert names == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
    assert all(Path(p).is_absolute() for p in ds.X)
    np.testing.assert_array_equal(ds.lists["database"], [0, 1, 2])
    np.testing.assert_array_equal(ds.lists["train"], [1, 0])
    np.testing.assert_array_equal(ds.lists["test"], [3, 4])
    np.testing.assert_array_equal(ds.y[2], [1, 1, 0])
    pixels = ds.images([0, 3], size=8)
    assert pixels.shape == (2, 8, 8, 3) and pixels.dtype == np.uint8


def test_only_some_lists_present(multilabel_folder):
    (multilabel_folder / "train.txt").unlink()
    ds = load_dataset("ms-coco", multilabel_folder)
    assert sorted(ds.lists) == ["database", "test"] and len(ds) == 5


def test_class_index_lines(tmp_path):
    write_image(tmp_path / "x.png")
    (tmp_path / "test.txt").write_text("x.png 3\n\nx.png 3\n")
    paths, labels = read_image_list(tmp_path / "test.txt")
    assert paths == ["x.png", "x.png"] and labels.dtype == np.int64 and list(labels) == [3, 3]
    ds = load_image_list(tmp_path)
    assert len(ds) == 1 and ds.y.shape == (1,) and ds.n_classes == 4
    np.testing.assert_array_equal(ds.lists["test"], [0])  # listed twice, counted once


@pytest.fixture
def imagenet_folder(tmp_path):
    """HashNet layout: absolute paths from another machine, one-hot over 4 classes."""
    prefix = "/home/someone/dataset/imagenet/"

    def row(rel, c):
        return (prefix + rel, np.eye(4, dtype=int)[c])

    db = [row(f"image/n0{c}/n0{c}_{i}.JPEG", c) for c in range(4) for i in range(2)]
    test = [row(f"val_image/v{i}.JPEG", i % 4) for i in range(6)]
    for p, _ in db + test:
        write_image(tmp_path / "images" / p[len(prefix) :], fmt="JPEG")
    write_list(tmp_path / "database.txt", db)
    write_list(tmp_path / "train.txt", db[::2])
    write_list(tmp_path / "test.txt", test)
    return tmp_path, prefix


def test_imagenet100_hashnet_lists(imagenet_folder):
    root, prefix = imagenet_folder
    ds = load_imagenet100(root, image_root=root / "images", strip_prefix=prefix)
    assert not ds.is_multilabel and ds.y.dtype == np.int64
    assert len(ds) == 14 and ds.n_classes == 4
    np.testing.assert_array_equal(ds.y[:8], [0, 0, 1, 1, 2, 2, 3, 3])
    assert ds.X[0] == str(root / "images" / "image/n00/n00_0.JPEG")
    split = make_split(ds, "imagenet100", random_state=0)
    test = ds.lists["test"]
    np.testing.assert_array_equal(split.query, test[0::2])
    np.testing.assert_array_equal(split.val, test[1::2])
    np.testing.assert_array_equal(split.database, np.arange(8))
    np.testing.assert_array_equal(split.train, [0, 2, 4, 6])
    # HashNet's training images are database images: only train/database overlap
    overlaps = split.overlaps()
    assert overlaps[("train", "database")] == 4
    assert sum(v for k, v in overlaps.items() if k != ("train", "database")) == 0
    assert split.random_state is None
    halves = make_split(ds, ListScheme(test_halves="contiguous"))
    np.testing.assert_array_equal(halves.query, test[:3])
    np.testing.assert_array_equal(halves.val, test[3:])


def test_imagenet100_needs_all_three_lists(imagenet_folder):
    root, prefix = imagenet_folder
    (root / "database.txt").unlink()
    with pytest.raises(
        DatasetNotFoundError, match="lacks database.txt.*database.txt, train.txt, test.txt"
    ):
        load_imagenet100(root, image_root=root / "images", strip_prefix=prefix)


def test_missing_images_are_reported(imagenet_folder):
    root, _ = imagenet_folder
    with pytest.raises(
        DatasetNotFoundError, match="14 of 14 listed images are missing.*strip_prefix="
    ):
        load_imagenet100(root)
    ds = load_imagenet100(root, check_files=False)
    assert ds.X[0].startswith("/home/someone/")


def test_custom_list_file_names(tmp_path):
    write_image(tmp_path / "a.png")
    write_list(tmp_path / "query_list.txt", [("a.png", [0, 1])])
    ds = load_image_list(tmp_path, list_files={"test": "query_list.txt"}, name="mine")
    assert ds.name == "mine" and list(ds.lists) == ["test"]


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no folder given.*downloads nothing"):
        load_nus_wide()
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_coco(tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match="lacks database.txt, train.txt, test.txt"):
        load_coco(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a.jpg 0 1\nb.jpg 1\n", "line 2: 1 label entries, but earlier lines have 2"),
        ("a.jpg 0 x\n", "line 1: labels must be integers"),
        ("a.jpg 0 2\n", "line 1: a label vector holds only 0 and 1"),
        ("a.jpg\n", "line 1: expected 'image_path label ...'"),
        ("\n\n", "lists no images"),
        ("a.jpg -1\n", "class indices must be >= 0"),
    ],
)
def test_malformed_list_files(tmp_path, text, match):
    (tmp_path / "test.txt").write_text(text)
    with pytest.raises(FileFormatError, match=match):
        read_image_list(tmp_path / "test.txt")


def test_missing_list_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image-list file"):
        read_image_list(tmp_path / "test.txt")


def test_conflicting_labels_across_lists(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_list(tmp_path / "train.txt", [("a.jpg", [1, 0])])
    write_list(tmp_path / "database.txt", [("a.jpg", [0, 1])])
    with pytest.raises(FileFormatError, match="several lists with different labels"):
        load_nus_wide(tmp_path)


def test_lists_with_different_class_counts(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_list(tmp_path / "train.txt", [("a.jpg", [1, 0])])
    write_list(tmp_path / "test.txt", [("a.jpg", [1, 0, 0])])
    with pytest.raises(FileFormatError, match="same classes"):
        load_nus_wide(tmp_path)


def test_single_label_needs_one_hot(tmp_path):
    write_image(tmp_path / "a.jpg")
    for name in ("train.txt", "test.txt", "database.txt"):
        write_list(tmp_path / name, [("a.jpg", [1, 1, 0])])
    with pytest.raises(FileFormatError, match="must be one-hot"):
        load_imagenet100(tmp_path)
