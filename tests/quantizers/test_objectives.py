import pytest
import torch

from h2q.quantizers.objectives import OBJECTIVES, get_objective


@pytest.mark.parametrize("name", list(OBJECTIVES))
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_gradient_matches_autograd(name, seed):
    obj = get_objective(name)
    zr = torch.randn(40, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2
    zr.requires_grad_(True)
    (auto,) = torch.autograd.grad(obj.value(zr), zr)
    value, grad = obj.value_and_grad(zr.detach().clone())
    torch.testing.assert_close(value, obj.value(zr).detach())
    torch.testing.assert_close(grad, auto)


def test_loss_values_against_per_entry_reference():
    zr = torch.tensor([[0.5, -2.0], [1.0, -0.25]], dtype=torch.float64)
    entries = [0.5, -2.0, 1.0, -0.25]
    sgn = [1, -1, 1, -1]
    l2 = sum((z - s) ** 2 for z, s in zip(entries, sgn, strict=True)) / 4
    l1 = sum(abs(z - s) for z, s in zip(entries, sgn, strict=True)) / 4
    sig = [1 / (1 + torch.exp(torch.tensor(-z, dtype=torch.float64))) for z in entries]
    bv = sum(s * (1 - s) for s in sig) / 4
    me = (
        torch.logsumexp(torch.tensor([-0.25, -4.0]), 0)
        + torch.logsumexp(torch.tensor([-1.0, -0.0625]), 0)
    ) / 2
    assert float(get_objective("l2").value(zr)) == pytest.approx(l2)
    assert float(get_objective("l1").value(zr)) == pytest.approx(l1)
    assert float(get_objective("bit_var").value(zr)) == pytest.approx(float(bv))
    assert float(get_objective("min_entry").value(zr)) == pytest.approx(float(me), rel=1e-6)


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'l3'; choose one of 'l2', 'l1'"):
        get_objective("l3")
