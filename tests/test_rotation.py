import pytest
import torch

from h2q.rotation import HouseholderRotation, reflections_rotation


def explicit_product(V: torch.Tensor) -> torch.Tensor:
    """The obviously correct reference: multiply the reflections one by one."""
    k = V.shape[1]
    U = torch.eye(k, dtype=V.dtype)
    for v in V:
        U = U @ (torch.eye(k, dtype=V.dtype) - 2 * torch.outer(v, v) / (v @ v))
    return U


@pytest.mark.parametrize("k", [1, 2, 7, 16, 64])
@pytest.mark.parametrize("m_frac", [1.0, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_product_matches_explicit_reflections_float64(k, m_frac, seed):
    g = torch.Generator().manual_seed(seed)
    m = max(1, int(k * m_frac))
    V = torch.randn(m, k, generator=g, dtype=torch.float64) * torch.rand(m, 1, generator=g) * 10
    U = reflections_rotation(V)
    torch.testing.assert_close(U, explicit_product(V), atol=1e-12, rtol=0)


def test_identity_vectors_give_minus_identity():
    U = HouseholderRotation(8).matrix()
    torch.testing.assert_close(U, -torch.eye(8))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 5e-6), (torch.float64, 1e-13)])
def test_orthogonal_by_construction(dtype, tol):
    V = torch.randn(32, 32, dtype=dtype, generator=torch.Generator().manual_seed(3))
    U = reflections_rotation(V)
    err = (U.T @ U - torch.eye(32, dtype=dtype)).abs().max()
    assert err < tol


def test_orthogonal_after_10000_optimiser_steps():
    torch.manual_seed(0)
    k = 16
    rot = HouseholderRotation(k)
    opt = torch.optim.SGD(rot.parameters(), lr=0.5, momentum=0.9)
    Z = torch.randn(256, k)
    Z = Z / Z.norm(dim=1, keepdim=True) * k**0.5
    for step in range(10_000):
        zr = rot(Z[(step * 32) % 256 : (step * 32) % 256 + 32])
        loss = (zr - torch.sign(zr)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    U = rot.matrix().detach()
    assert not torch.equal(U, -torch.eye(k)), "the optimiser must have moved U"
    assert (U.T @ U - torch.eye(k)).abs().max() < 50 * torch.finfo(torch.float32).eps * k


def test_gradcheck_float64():
    V = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(reflections_rotation, (V,))


def test_analytic_backward_matches_autograd_of_explicit_product():
    g = torch.Generator().manual_seed(4)
    V = torch.randn(12, 12, dtype=torch.float64, generator=g, requires_grad=True)
    W = torch.randn(12, 12, dtype=torch.float64, generator=g)
    (a,) = torch.autograd.grad((reflections_rotation(V) * W).sum(), V)
    (b,) = torch.autograd.grad((explicit_product(V) * W).sum(), V)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_rotation_preserves_norms_and_distances():
    torch.manual_seed(1)
    rot = HouseholderRotation(16, dtype=torch.float64)
    with torch.no_grad():
        rot.vectors.normal_()
        x = torch.randn(50, 16, dtype=torch.float64)
        y = rot(x)
    assert not torch.allclose(y, x) and not torch.allclose(y, -x)
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1))
    dist = lambda a: (a[:, None, :] - a[None, :, :]).norm(dim=2)  # noqa: E731
    torch.testing.assert_close(dist(y), dist(x))
    torch.testing.assert_close(y @ y.T, x @ x.T)


def test_fewer_reflections_and_errors():
    rot = HouseholderRotation(10, n_reflections=3)
    assert rot.vectors.shape == (3, 10)
    with pytest.raises(ValueError, match="n_reflections must be between 1 and n_features=10"):
        HouseholderRotation(10, n_reflections=11)
    with pytest.raises(ValueError, match="input has 4 features, but this rotation acts on 10"):
        rot(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="vectors must have shape"):
        reflections_rotation(torch.zeros(3))


def test_module_follows_dtype_and_works_in_a_user_model():
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8).double(), HouseholderRotation(8, dtype=torch.float64)
    )
    out = model(torch.randn(3, 5, dtype=torch.float64))
    out.sum().backward()
    assert model[1].vectors.grad is not None and out.dtype == torch.float64


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    V = torch.randn(64, 64, dtype=torch.float64)
    torch.testing.assert_close(reflections_rotation(V.cuda()).cpu(), reflections_rotation(V))


def test_vjp_without_autograd_matches_autograd():
    from h2q.rotation import reflections_rotation_vjp

    g = torch.Generator().manual_seed(5)
    V = torch.randn(9, 12, dtype=torch.float64, generator=g) * 3
    G = torch.randn(12, 12, dtype=torch.float64, generator=g)
    U, vjp = reflections_rotation_vjp(V)
    torch.testing.assert_close(U, explicit_product(V), atol=1e-12, rtol=0)
    Vr = V.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((explicit_product(Vr) * G).sum(), Vr)
    torch.testing.assert_close(vjp(G), expected, atol=1e-10, rtol=0)
