"""openclipart-like folder tree of PNGs, and the RGB image reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from h2q.data import DatasetNotFoundError, load_dataset, load_image, load_openclipart
from h2q.exceptions import FileFormatError
from h2q.labels import share_label


def write_png(path: Path, mode="RGBA", size=(4, 2), colour=(255, 0, 0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


@pytest.fixture
def tree(tmp_path):
    write_png(tmp_path / "animals" / "cat.png")
    write_png(tmp_path / "animals" / "birds" / "owl.png")
    write_png(tmp_path / "animals" / "birds" / "small" / "wren.png")  # deeper than two levels
    write_png(tmp_path / "food" / "fruit" / "apple.PNG", mode="RGB", colour=(0, 200, 0))
    write_png(tmp_path / "food" / "bread.png", mode="RGB", colour=(9, 9, 9))
    write_png(tmp_path / "stray.png")  # directly in root: no category, ignored
    (tmp_path / "food" / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_labels(tree):
    ds = load_openclipart(tree)
    assert ds.kind == "image_paths" and ds.is_multilabel and ds.y.dtype == np.uint8
    rel = [str(Path(p).relative_to(tree)) for p in ds.X]
    assert rel == [
        "animals/birds/owl.png",
        "animals/birds/small/wren.png",
        "animals/cat.png",
        "food/bread.png",
        "food/fruit/apple.PNG",
    ]
    assert ds.class_names == ["animals", "food", "animals/birds", "food/fruit"]
    np.testing.assert_array_equal(
        ds.y,
        [[1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 1]],
    )
    relevant = share_label(ds.y, ds.y)
    assert relevant[0, 2] and not relevant[0, 3]  # same top folder / different top folders


def test_lazy_images_are_rgb_on_white(tree):
    ds = load_dataset("openclipart", tree)
    pixels = ds.images([2, 3], size=6)
    assert pixels.shape == (2, 6, 6, 3) and pixels.dtype == np.uint8
    assert (pixels[0] == 255).all()  # fully transparent red -> white
    # a 4x2 image letterboxed into 6x6: 6x3 content centred, white margins above and below
    assert (pixels[1, 2:4] == 9).all() and (pixels[1, 0] == 255).all()


def test_images_of_different_sizes_need_a_size(tmp_path):
    write_png(tmp_path / "a" / "x.png", size=(3, 3))
    write_png(tmp_path / "a" / "y.png", size=(5, 2))
    ds = load_openclipart(tmp_path)
    with pytest.raises(ValueError, match="different sizes.*pass size="):
        ds.images([0, 1])
    assert ds.images([0, 1], size=(2, 4)).shape == (2, 2, 4, 3)


def test_load_image_alpha_and_palette(tmp_path):
    half = np.zeros((2, 2, 4), np.uint8)
    half[0] = (0, 0, 255, 255)  # opaque blue row
    half[1] = (0, 0, 255, 0)  # transparent row
    Image.fromarray(half, "RGBA").save(tmp_path / "half.png")
    rgb = load_image(tmp_path / "half.png")
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 255])
    np.testing.assert_array_equal(rgb[1, 0], [255, 255, 255])
    pal = Image.new("P", (2, 2), 0)
    pal.putpalette([10, 20, 30] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    np.testing.assert_array_equal(load_image(tmp_path / "pal.png")[0, 0], [255, 255, 255])
    grey = Image.new("L", (3, 1), 77)
    grey.save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").shape == (1, 3, 3)


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image file"):
        load_image(tmp_path / "absent.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(FileFormatError, match="not a readable image"):
        load_image(tmp_path / "bad.png")
    write_png(tmp_path / "ok.png")
    with pytest.raises(ValueError, match="size must be positive"):
        load_image(tmp_path / "ok.png", size=0)


def test_missing_tree_names_install_command(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match="apt-get install -y --no-install-recommends openclipart-png"
    ):
        load_openclipart(tmp_path / "absent")
    write_png(tmp_path / "stray.png")
    with pytest.raises(DatasetNotFoundError, match="holds no <category>"):
        load_openclipart(tmp_path)
