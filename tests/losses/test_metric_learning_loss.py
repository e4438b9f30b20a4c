"""pytorch-metric-learning losses as stage-1 objectives through MetricLearningLoss."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from h2q.losses import HashingObjective, MetricLearningLoss, make_loss
from h2q.losses import metric_learning as ml_module

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

N_BITS, N_CLASSES = 8, 3


def batch(seed: int = 0, n: int = 12):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, N_BITS, generator=g)
    y = torch.arange(n) % N_CLASSES
    return u, y


@pytest.mark.parametrize(
    "make",
    [
        lambda: pml_losses.ContrastiveLoss(),
        lambda: pml_losses.MultiSimilarityLoss(),
        lambda: pml_losses.ProxyAnchorLoss(num_classes=N_CLASSES, embedding_size=N_BITS),
    ],
    ids=["contrastive", "multi_similarity", "proxy_anchor"],
)
def test_wrapped_loss_equals_the_library_loss(make):
    torch.manual_seed(0)
    inner = make()
    wrapped = MetricLearningLoss(inner, n_bits=N_BITS)
    u, y = batch()
    assert torch.equal(wrapped(u, y), inner(u, y))
    one_hot = torch.nn.functional.one_hot(y, N_CLASSES)
    assert torch.equal(wrapped(u, one_hot), inner(u, y))


@pytest.mark.parametrize("name", ["ContrastiveLoss", "MultiSimilarityLoss", "ProxyAnchorLoss"])
def test_training_steps_reduce_the_loss(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, N_BITS)
    objective = HashingObjective(make_loss(f"pml:{name}", N_BITS, N_CLASSES))
    opt = torch.optim.Adam([*model.parameters(), *objective.parameters()], lr=0.05)
    x = torch.randn(24, 5)
    y = torch.arange(24) % N_CLASSES
    first = objective(model(x), y).item()
    for _ in range(30):
        opt.zero_grad()
        loss = objective(model(x), y)
        loss.backward()
        opt.step()
    assert objective(model(x), y).item() < first


def test_proxy_anchor_parameters_reach_the_optimiser():
    objective = HashingObjective(make_loss("pml:ProxyAnchorLoss", N_BITS, N_CLASSES))
    proxies = objective.similarity_loss.loss.proxies
    assert proxies.shape == (N_CLASSES, N_BITS)
    assert any(p is proxies for p in objective.parameters())
    opt = torch.optim.SGD(objective.parameters(), lr=1.0)
    before = proxies.detach().clone()
    u, y = batch()
    objective(u, y).backward()
    opt.step()
    assert not torch.equal(before, proxies.detach())


def test_name_fills_constructor_arguments_and_kwargs_pass_through():
    loss = MetricLearningLoss("ProxyAnchorLoss", n_bits=N_BITS, n_classes=N_CLASSES, margin=0.2)
    assert loss.loss.num_classes == N_CLASSES and loss.loss.margin == 0.2
    contrastive = MetricLearningLoss("ContrastiveLoss", pos_margin=0.1)
    assert contrastive.loss.pos_margin == 0.1
    assert not contrastive.has_penalty


def test_multi_hot_labels():
    u, _ = batch()
    y = torch.zeros(12, N_CLASSES, dtype=torch.long)
    y[torch.arange(12), torch.arange(12) % N_CLASSES] = 1
    y[0, 2] = 1  # sample 0 has labels {0, 2}
    strict = MetricLearningLoss("ContrastiveLoss")
    with pytest.raises(ValueError, match="1 sample\\(s\\) have several labels"):
        strict(u, y)
    lenient = MetricLearningLoss("ContrastiveLoss", multi_hot="first")
    with pytest.warns(UserWarning, match="reduced to their first label"):
        got = lenient(u, y)
    assert torch.equal(got, strict.loss(u, torch.arange(12) % N_CLASSES))
    y[1] = 0
    with pytest.raises(ValueError, match="1 multi-hot row\\(s\\) have no label"):
        lenient(u, y)


def test_errors():
    with pytest.raises(ValueError, match="has no loss named 'NoSuchLoss'"):
        MetricLearningLoss("NoSuchLoss")
    with pytest.raises(ValueError, match="ProxyAnchorLoss needs num_classes"):
        MetricLearningLoss("ProxyAnchorLoss", n_bits=N_BITS)
    with pytest.raises(TypeError, match="were given for a loss instance"):
        MetricLearningLoss(pml_losses.ContrastiveLoss(), pos_margin=0.1)
    with pytest.raises(TypeError, match="must be a pytorch-metric-learning loss"):
        MetricLearningLoss(42)
    with pytest.raises(ValueError, match="multi_hot must be"):
        MetricLearningLoss("ContrastiveLoss", multi_hot="all")
    with pytest.raises(TypeError, match="class ids must be integers"):
        MetricLearningLoss("ContrastiveLoss")(torch.randn(4, N_BITS), torch.zeros(4))
    with pytest.raises(ValueError, match="built with n_bits=8"):
        MetricLearningLoss("ContrastiveLoss", n_bits=8)(torch.randn(4, 6), torch.zeros(4).long())


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_metric_learning", None)
    with pytest.raises(ImportError, match=r'pip install "h2q\[metric-learning\]"'):
        ml_module.build_metric_learning_loss("ContrastiveLoss")


def test_importing_h2q_losses_does_not_import_the_extra():
    code = "import sys, h2q.losses; print('pytorch_metric_learning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
