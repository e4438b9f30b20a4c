"""What identifies a grid's results on disk, pinned to the values results folders hold.

A results folder is resumed only when its stage-1 settings (``grid.json``'s identity, every
run's config) and each cell's settings hash match the grid's. These values were computed by
the code that wrote ``docs/results/default`` and users' folders; the structure of
:class:`GridConfig` may change, these change only when a preset's settings do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from h2q.experiments.config import GridConfig, get_config
from h2q.experiments.grid import _cell_settings, _grid_identity, check_grid
from h2q.experiments.records import Cell, Stage1Run
from h2q.experiments.runner import stage1_config
from h2q.training import LoopSettings, TrainConfig

KEPT = Path(__file__).resolve().parents[2] / "docs" / "results" / "default"

DEFAULT_STAGE1 = {
    "dataset": "fashion-mnist",
    "backbone": "efficientnet-lite0",
    "frozen": True,
    "image_size": 64,
    "hidden": [512],
    "max_database": 10_000,
    "epochs": 20,
    "patience": 6,
    "eval_every": 3,
    "batch_size": 128,
    "lr_head": 1e-3,
    "lr_backbone": 1e-5,
    "weight_decay": 5e-4,
    "val_k": None,
    "precision": "auto",
}
QUICK_STAGE1 = {
    "dataset": "digits",
    "backbone": "mlp",
    "frozen": False,
    "image_size": None,
    "hidden": [64],
    "max_database": None,
    "epochs": 4,
    "patience": None,
    "eval_every": 2,
    "batch_size": 128,
    "lr_head": 3e-3,
    "lr_backbone": 1e-5,
    "weight_decay": 5e-4,
    "val_k": None,
}


def test_stage1_settings_are_pinned():
    assert get_config("default").stage1_settings() == DEFAULT_STAGE1
    assert list(get_config("default").stage1_settings()) == list(DEFAULT_STAGE1)  # messages
    assert get_config("quick").stage1_settings() == QUICK_STAGE1
    full = get_config("full").stage1_settings()
    assert full == {
        **DEFAULT_STAGE1,
        "image_size": 224,
        "max_database": None,
        "epochs": 100,
        "patience": 20,
        "eval_every": 1,
    }
    options = {"adsh": {"iterations": 2, "decay_at": (1,)}}
    with_options = get_config("quick", method_options=options).stage1_settings()
    assert with_options == {
        **QUICK_STAGE1,
        "method_options": {"adsh": {"iterations": 2, "decay_at": [1]}},
    }


@pytest.mark.parametrize(
    ("method", "row", "expected"),
    [
        ("dpsh", "lambda0", "dd0e5886e28f5479"),
        ("hyp2", "h2q-l2", "dd0e5886e28f5479"),
        ("dch", "hswd", "dd0e5886e28f5479"),
        ("dpsh", "penalty", "900ce75c28f3c0ae"),
        ("dch", "penalty", "c5d2f1c28f34932d"),
        ("hyp2", "penalty", "9e256a7ee5c2c779"),
    ],
)
def test_cell_settings_hash_of_the_default_preset_is_pinned(method, row, expected):
    assert _cell_settings(get_config("default"), Cell(method, row, 16, 0)) == expected


def test_the_kept_results_folder_matches_the_default_preset():
    kept = json.loads((KEPT / "grid.json").read_text(encoding="utf-8"))
    config = get_config("default")
    assert _grid_identity(config) == kept["identity"]
    assert config.to_dict() == kept["config"]
    check_grid(config, KEPT)  # raises when the settings differ


def test_the_kept_wordnet_folder_matches_the_wordnet_grid():
    kept = json.loads((KEPT.parent / "wordnet" / "grid.json").read_text(encoding="utf-8"))
    config = get_config("default", dataset="wordnet")
    assert config.stage1_settings() == kept["identity"]["stage1"]
    check_grid(config, KEPT.parent / "wordnet")  # raises when the settings differ
    auto = get_config("default", dataset="wordnet", precision="auto")
    assert auto.stage1_settings()["precision"] == "auto"


def test_flat_settings_reach_the_template():
    config = get_config("quick", epochs=7, lr_head=1e-2, max_database=50)
    assert config.train.loop.epochs == 7 and config.train.loop.lr_head == 1e-2
    assert config.train.max_database == 50
    assert config.replace(seeds=(1,), patience=3).train.loop.patience == 3
    assert config.to_dict()["epochs"] == 7 and config.to_dict()["seeds"] == [0]
    with pytest.raises(TypeError, match=r"unknown settings \['n_bits'\]"):
        config.replace(n_bits=8)  # set per run, not a grid setting


def test_stage1_config_is_the_template_with_the_run_filled_in():
    config = get_config("quick", method_options={"dpsh": {"margin": 1}})
    run = Stage1Run("dpsh", "penalty", 0.1, 16, 3)
    expected = TrainConfig(
        dataset="digits",
        method="dpsh",
        n_bits=16,
        strategy="penalty",
        lam=0.1,
        backbone="mlp",
        hidden=(64,),
        loop=LoopSettings(epochs=4, patience=None, eval_every=2, lr_head=3e-3, seed=3),
        loss_kwargs={"margin": 1},
    )
    assert stage1_config(config, run, "digits") == expected
    # every shared setting of the run is the grid's
    identity = stage1_config(config, run, "digits").to_dict()
    assert {k: identity[k] for k in QUICK_STAGE1} == QUICK_STAGE1


def test_the_template_must_be_a_train_config():
    with pytest.raises(TypeError, match="train must be an h2q.training.TrainConfig"):
        GridConfig(train={"dataset": "digits"})
    with pytest.raises(ValueError, match="set them per method in method_options"):
        GridConfig(train=TrainConfig("digits", loss_kwargs={"pair_weight": 0.75}))


def test_a_scheme_weights_or_precision_of_the_template_join_the_identity_when_set():
    config = get_config("quick").replace(scheme="digits")
    assert config.train.scheme == "digits"
    assert config.stage1_settings() == {**QUICK_STAGE1, "scheme": "digits"}
    assert config.to_dict()["scheme"] == "digits"
    assert "scheme" not in get_config("quick").to_dict()
    assert "precision" not in get_config("quick").stage1_settings()  # float32, the default
    bf16 = get_config("quick", precision="bfloat16")
    assert bf16.stage1_settings() == {**QUICK_STAGE1, "precision": "bfloat16"}
