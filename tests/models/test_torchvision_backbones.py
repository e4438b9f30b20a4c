"""AlexNet / VGG16 at fc7: lazy torchvision import, weights from a file or the cache, no download.

torchvision is not installed in the development environment, so the architecture comes from a
fake ``torchvision.models`` module with the same layer layout (smaller convolutions); the real
module is used instead when it is importable.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from h2q.models import HashingModel, TorchvisionFC7, build_backbone
from h2q.models.torchvision_backbones import TORCHVISION_ARCHS, cached_weights_path


def _fake_alexnet(weights=None):
    assert weights is None, "h2q must never ask torchvision for (downloadable) weights"
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(3, 4, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2))
    net.avgpool = nn.AdaptiveAvgPool2d((2, 2))
    net.classifier = nn.Sequential(  # AlexNet's layout: dropout before fc6 and fc7
        nn.Dropout(),
        nn.Linear(16, 32),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(32, 4096),
        nn.ReLU(),
        nn.Linear(4096, 1000),
    )
    return net


def _fake_vgg16(weights=None):
    assert weights is None
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    net.avgpool = nn.AdaptiveAvgPool2d((2, 2))
    net.classifier = nn.Sequential(  # VGG's layout: dropout after fc6 and fc7
        nn.Linear(16, 32),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(32, 4096),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(4096, 1000),
    )
    return net


@pytest.fixture
def fake_torchvision(monkeypatch):
    torchvision = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    models.alexnet = _fake_alexnet
    models.vgg16 = _fake_vgg16
    torchvision.models = models
    monkeypatch.setitem(sys.modules, "torchvision", torchvision)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    return models


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


FAKES = {"alexnet": _fake_alexnet, "vgg16": _fake_vgg16}


def test_missing_torchvision_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(ImportError, match=r'pip install "h2q\[vision\]"'):
        build_backbone("alexnet")
    with pytest.raises(ImportError, match="torchvision"):
        TorchvisionFC7("vgg16", pretrained=False)


def test_importing_h2q_does_not_import_optional_backbone_packages():
    import subprocess

    code = (
        "import sys\n"
        "import h2q.models, h2q.training, h2q.features, h2q.cli.train\n"
        "bad = [m for m in ('torchvision', 'efficientnet_lite_pytorch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_fc7_cut_and_weights_file(arch, fake_torchvision, tmp_path, hub_dir):
    reference = FAKES[arch]()
    path = tmp_path / f"{arch}.pth"
    torch.save(reference.state_dict(), path)
    net = TorchvisionFC7(arch, weights_path=path).eval()
    assert net.name == arch and net.pretrained and net.feature_dim == 4096
    # everything before fc8, without a trailing dropout: the fc7 ReLU activations
    layers = list(net.classifier)
    assert isinstance(layers[-1], nn.ReLU)
    assert sum(isinstance(m, nn.Linear) for m in layers) == 2
    assert torch.equal(
        layers[-2].weight, reference.classifier[4 if arch == "alexnet" else 3].weight
    )
    images = torch.randint(0, 256, (2, 240, 320, 3), dtype=torch.uint8)
    x = net.preprocess(images)
    assert x.shape == (2, 3, 224, 224)
    with torch.no_grad():
        f = net(x)
    assert f.shape == (2, 4096) and (f >= 0).all()
    model = HashingModel(net, 32)
    assert model.backbone_is_pretrained()
    assert net.config()["weights"]["file"] == f"{arch}.pth"


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_weights_come_from_torchvisions_cache_and_are_never_downloaded(
    arch, fake_torchvision, hub_dir
):
    expected = cached_weights_path(arch)
    assert expected == hub_dir / "checkpoints" / TORCHVISION_ARCHS[arch][1]
    with pytest.raises(FileNotFoundError, match="h2q never downloads"):
        build_backbone(arch)
    expected.parent.mkdir(parents=True)
    reference = FAKES[arch]()
    torch.save(reference.state_dict(), expected)
    net = build_backbone(arch)
    assert torch.equal(net.features[0].weight, reference.features[0].weight)


def test_unpretrained_and_bad_arguments(fake_torchvision, tmp_path):
    net = TorchvisionFC7("alexnet", pretrained=False)
    assert not net.pretrained and net.weights_path is None
    with pytest.raises(ValueError, match="arch must be one of"):
        TorchvisionFC7("resnet18")
    with pytest.raises(ValueError, match="pretrained=False"):
        TorchvisionFC7("alexnet", weights_path=tmp_path / "w.pth", pretrained=False)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable alexnet state dict"):
        TorchvisionFC7("alexnet", weights_path=bad)


def test_preprocessing_matches_the_paper(fake_torchvision):
    net = TorchvisionFC7("vgg16", pretrained=False)
    grey = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    assert net.preprocess(grey).shape == (3, 3, 224, 224)
    # an image whose pixels equal the ImageNet mean normalises to 0
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    flat = mean.view(1, 1, 1, 3).expand(1, 300, 260, 3)
    assert torch.allclose(net.preprocess(flat), torch.zeros(1, 3, 224, 224), atol=1e-5)
    small = TorchvisionFC7("alexnet", pretrained=False, image_size=112)
    assert small.preprocess(grey).shape == (3, 3, 112, 112)
