"""The precision of an MLP's matrix products (h2q.models.precision)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from h2q.models import MLPBackbone
from h2q.models.precision import (
    PRECISIONS,
    PrecisionLinear,
    native_bfloat16,
    resolve_precision,
)


def _pair(precision: str, bias: bool = True) -> tuple[nn.Linear, PrecisionLinear]:
    torch.manual_seed(0)
    plain = nn.Linear(40, 24, bias=bias)
    layer = PrecisionLinear(40, 24, bias=bias, precision=precision)
    layer.load_state_dict(plain.state_dict())
    return plain, layer


def test_float32_is_nn_linear_bit_for_bit():
    plain, layer = _pair("float32")
    x = torch.randn(16, 40)
    assert torch.equal(layer(x), plain(x))


@pytest.mark.parametrize("bias", [True, False])
def test_bfloat16_products_come_back_float32_and_close(bias):
    plain, layer = _pair("bfloat16", bias)
    x = torch.randn(64, 40, requires_grad=True)
    out = layer(x)
    assert out.dtype == torch.float32
    reference = plain(x)
    assert not torch.equal(out, reference)  # really computed in bfloat16
    torch.testing.assert_close(out, reference, rtol=0.05, atol=0.05)
    out.square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.dtype == torch.float32
    assert layer.weight.dtype == torch.float32  # the weights stay float32
    reference.square().sum().backward()
    error = (layer.weight.grad - plain.weight.grad).norm() / plain.weight.grad.norm()
    assert 0 < error < 0.02


def test_state_dict_is_that_of_nn_linear():
    _, layer = _pair("bfloat16")
    plain = nn.Linear(40, 24)
    plain.load_state_dict(layer.state_dict())
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert "precision=bfloat16" in repr(layer)


def test_resolve_precision():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    assert resolve_precision("auto") == ("bfloat16" if native_bfloat16() else "float32")
    assert resolve_precision("auto", "cuda") == "float32"
    assert PRECISIONS == ("float32", "bfloat16", "auto")
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, auto"):
        resolve_precision("fp16")


def test_layer_refuses_auto_and_unknown_names():
    for name in ("auto", "float16"):
        with pytest.raises(ValueError, match="precision must be float32 or bfloat16"):
            PrecisionLinear(4, 2, precision=name)


def test_mlp_backbone_computes_its_hidden_layers_in_its_precision():
    net = MLPBackbone(30, hidden=(20, 10), precision="bfloat16")
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 2 and all(m.precision == "bfloat16" for m in linears)
    assert net.config()["precision"] == "bfloat16"
    assert net(torch.randn(8, 30)).dtype == torch.float32
    assert MLPBackbone(30).config()["precision"] == "float32"
