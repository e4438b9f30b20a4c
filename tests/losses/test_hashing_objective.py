"""Quantization strategies (lambda0 / penalty / hswd), HSWD, HashNet's schedule, make_loss."""

from __future__ import annotations

import math

import pytest
import torch

from h2q.losses import (
    LOSSES,
    CELLoss,
    DCHLoss,
    DHNLoss,
    DPSHLoss,
    DSHLoss,
    HashingObjective,
    HashNetLoss,
    HSWDPenalty,
    HyP2Loss,
    MetricLearningLoss,
    WGLHHLoss,
    make_loss,
)

N_BITS, N_CLASSES = 16, 10


def batch(seed: int = 0, n: int = 12, k: int = N_BITS, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


def all_losses():
    return [make_loss(name, N_BITS, N_CLASSES).double() for name in sorted(LOSSES)]


# --------------------------------------------------------------------------------------------
# lambda = 0
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", all_losses(), ids=sorted(LOSSES))
def test_lambda0_is_the_raw_similarity_term_only(loss, monkeypatch):
    u, y = batch()

    def no_penalty(*args, **kwargs):
        raise AssertionError("lambda0 must not evaluate a penalty")

    monkeypatch.setattr(loss, "penalty", no_penalty)
    monkeypatch.setattr(loss, "activation", no_penalty)
    objective = HashingObjective(loss)
    terms = objective.terms(u, y)
    assert set(terms) == {"similarity", "total"}
    assert torch.equal(objective(u, y), loss(u, y))
    assert not objective.uses_tanh
    assert objective.output_transform(u) is u


def dpsh_raw(u: torch.Tensor, y: torch.Tensor) -> float:
    """DPSH's formula on the raw outputs, one pair at a time."""
    rows, labels = u.tolist(), y.tolist()
    total, n = 0.0, len(rows)
    for i in range(n):
        for j in range(n):
            if i != j:
                theta = 0.5 * sum(a * b for a, b in zip(rows[i], rows[j], strict=True))
                s = float(labels[i] == labels[j])
                total += max(theta, 0) + math.log1p(math.exp(-abs(theta))) - s * theta
    return total / (n * (n - 1))


@pytest.mark.parametrize("scale", [1.0, 3.0, 10.0])
def test_lambda0_sees_outputs_beyond_one_unsquashed(scale):
    u, y = batch(1, n=6, k=4)
    u = u * scale
    assert u.abs().max() > 1
    lambda0 = HashingObjective(DPSHLoss())(u, y)
    assert lambda0.item() == pytest.approx(dpsh_raw(u, y), rel=1e-9)
    squashed = HashingObjective(DPSHLoss(), "penalty", lam=0.0)(u, y)
    assert squashed.item() == pytest.approx(dpsh_raw(torch.tanh(u), y), rel=1e-9)
    assert abs(lambda0.item() - squashed.item()) > 1e-3


def test_lambda0_distance_loss_scales_with_outputs():
    # DSH on raw outputs: for similar pairs the term is quadratic in the scale
    u, _ = batch(2, n=5, k=4)
    y = torch.zeros(5, dtype=torch.long)
    objective = HashingObjective(DSHLoss())
    assert objective(3 * u, y).item() == pytest.approx(9 * objective(u, y).item(), rel=1e-12)


# --------------------------------------------------------------------------------------------
# +lambda
# --------------------------------------------------------------------------------------------

PENALISED = [DPSHLoss, DHNLoss, DCHLoss, WGLHHLoss, DSHLoss, lambda: CELLoss(margin=0.0)]


@pytest.mark.parametrize("make", PENALISED)
@pytest.mark.parametrize("lam", [0.1, 1e-3])
def test_penalty_strategy_on_activation(make, lam):
    loss = make()
    u, y = batch(3)
    objective = HashingObjective(loss, "penalty", lam=lam)
    h = torch.tanh(u)
    want = loss(h, y) + lam * loss.penalty(h)
    assert torch.allclose(objective(u, y), want, rtol=1e-12, atol=0)
    assert set(objective.terms(u, y)) == {"similarity", "penalty", "total"}
    assert objective.uses_tanh
    assert torch.equal(objective.output_transform(u), h)


@pytest.mark.parametrize("make", PENALISED)
def test_penalty_strategy_on_raw_outputs(make):
    loss = make()
    u, y = batch(4)
    objective = HashingObjective(loss, "penalty", lam=0.5, penalty_on="raw")
    want = loss(torch.tanh(u), y) + 0.5 * loss.penalty(u)
    assert torch.allclose(objective(u, y), want, rtol=1e-12, atol=0)


def test_penalty_is_exactly_absent_with_lam_zero():
    loss = DPSHLoss()
    u, y = batch(5)
    terms = HashingObjective(loss, "penalty", lam=0.0).terms(u, y)
    assert set(terms) == {"similarity", "total"}
    assert torch.equal(terms["total"], loss(torch.tanh(u), y))


def test_objective_registers_hyp2_proxies():
    loss = HyP2Loss(N_BITS, N_CLASSES, random_state=0)
    for strategy, lam in [("lambda0", None), ("penalty", 0.01), ("hswd", None)]:
        objective = HashingObjective(loss, strategy, lam=lam)
        assert any(p is loss.proxies for p in objective.parameters())


# --------------------------------------------------------------------------------------------
# HashNet continuation
# --------------------------------------------------------------------------------------------


def test_hashnet_beta_schedule():
    loss = HashNetLoss()
    assert loss.beta == 1.0
    for _ in range(199):
        loss.step()
    assert loss.beta == 1.0
    loss.step()
    assert loss.beta == pytest.approx(math.sqrt(2))
    loss.set_iteration(599)
    assert loss.beta == pytest.approx(math.sqrt(3))
    loss.set_iteration(600)
    assert loss.beta == pytest.approx(2.0)


def test_hashnet_objective_uses_continuation_and_hooks():
    loss = HashNetLoss().double()
    objective = HashingObjective(loss, "penalty")
    u, y = batch(6)
    objective.set_iteration(800)  # beta = sqrt(5)
    beta = math.sqrt(5)
    assert torch.allclose(objective(u, y), loss(torch.tanh(beta * u), y), rtol=1e-12, atol=0)
    assert torch.allclose(objective.output_transform(u), torch.tanh(beta * u))
    objective.step()
    assert loss.iteration == 801
    # lambda0: raw outputs, whatever the schedule says
    assert torch.equal(HashingObjective(loss)(u, y), loss(u, y))


def test_hashnet_iteration_survives_state_dict():
    loss = HashNetLoss()
    loss.set_iteration(1234)
    other = HashNetLoss()
    other.load_state_dict(loss.state_dict())
    assert other.iteration == 1234 and other.beta == loss.beta


# --------------------------------------------------------------------------------------------
# +HSWD
# --------------------------------------------------------------------------------------------


def hswd_reference(u: torch.Tensor, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    target = (2 * torch.randint(0, 2, u.shape, generator=g) - 1).tolist()
    rows = u.tolist()
    n, k = len(rows), len(rows[0])
    total = 0.0
    for j in range(k):
        a = sorted(r[j] for r in rows)
        b = sorted(t[j] for t in target)
        total += sum((x - z) ** 2 for x, z in zip(a, b, strict=True))
    return total / (n * k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hswd_matches_reference(seed):
    u, _ = batch(seed, n=9, k=5)
    assert HSWDPenalty(random_state=seed)(u).item() == pytest.approx(
        hswd_reference(u, seed), rel=1e-12
    )


def test_hswd_ignores_row_order_and_is_zero_on_its_own_sample():
    u, _ = batch(0, n=10, k=4)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(HSWDPenalty(7)(u), HSWDPenalty(7)(u[perm]))
    g = torch.Generator().manual_seed(7)
    sample = (2 * torch.randint(0, 2, (10, 4), generator=g) - 1).double()
    assert HSWDPenalty(7)(sample[perm]).item() == 0.0


def test_hswd_gradcheck():
    u, _ = batch(8, n=6, k=3)
    u.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: HSWDPenalty(3)(x), (u,))


def test_hswd_draws_fresh_samples_and_accepts_a_generator():
    u, _ = batch(9)
    penalty = HSWDPenalty(0)
    assert not torch.equal(penalty(u), penalty(u))  # a new ±1 sample each call
    g = torch.Generator().manual_seed(0)
    assert torch.equal(HSWDPenalty(g)(u), HSWDPenalty(0)(u))
    assert torch.isfinite(HSWDPenalty()(u))
    with pytest.raises(TypeError, match="random_state must be an int"):
        HSWDPenalty(random_state="seed")


def test_hswd_strategy():
    loss = DCHLoss()
    u, y = batch(10)
    objective = HashingObjective(loss, "hswd", random_state=4)
    terms = objective.terms(u, y)
    assert set(terms) == {"similarity", "hswd", "total"}
    want = loss(u, y) + 0.1 * HSWDPenalty(4)(u)
    assert torch.allclose(terms["total"], want, rtol=1e-12, atol=0)
    assert not objective.uses_tanh and objective.output_transform(u) is u


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_objective_errors():
    with pytest.raises(TypeError, match="similarity_loss must be an nn.Module"):
        HashingObjective(lambda u, y: u.sum())
    with pytest.raises(ValueError, match="strategy must be one of"):
        HashingObjective(DPSHLoss(), "tanh")
    with pytest.raises(ValueError, match="strategy='penalty' needs lam >= 0"):
        HashingObjective(DPSHLoss(), "penalty")
    with pytest.raises(ValueError, match="strategy='penalty' needs lam >= 0"):
        HashingObjective(DPSHLoss(), "penalty", lam=-1.0)
    with pytest.raises(ValueError, match="strategy='lambda0' uses no lambda-weighted penalty"):
        HashingObjective(DPSHLoss(), lam=0.1)
    with pytest.raises(ValueError, match="strategy='hswd' uses no lambda-weighted penalty"):
        HashingObjective(DPSHLoss(), "hswd", lam=0.1)
    with pytest.raises(ValueError, match="HashNetLoss has no quantization penalty"):
        HashingObjective(HashNetLoss(), "penalty", lam=0.1)
    with pytest.raises(ValueError, match="penalty_on must be"):
        HashingObjective(DPSHLoss(), "penalty", lam=0.1, penalty_on="both")
    with pytest.raises(ValueError, match="hswd_weight must be non-negative"):
        HashingObjective(DPSHLoss(), "hswd", hswd_weight=-0.1)
    with pytest.raises(ValueError, match="iteration must be a non-negative int"):
        HashNetLoss().set_iteration(-1)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def test_make_loss_builds_every_registered_loss():
    u, y = batch(11, dtype=torch.float32)
    for name, cls in LOSSES.items():
        loss = make_loss(name.upper(), N_BITS, N_CLASSES)
        assert type(loss) is cls and loss.n_bits == N_BITS
        assert torch.isfinite(loss(u, y))
        assert torch.isfinite(HashingObjective(loss, "hswd", random_state=0)(u, y))


def test_make_loss_forwards_hyperparameters_and_prefix():
    assert make_loss("hyp2", 32, 21, pair_weight=0.75).pair_weight == 0.75
    assert make_loss("dch", 32, gamma=5.0).gamma == 5.0
    assert isinstance(make_loss("pml:ContrastiveLoss", 32), MetricLearningLoss)


def test_make_loss_errors():
    with pytest.raises(ValueError, match="unknown loss 'dpshh'"):
        make_loss("dpshh", 16)
    with pytest.raises(ValueError, match="loss 'cel' needs n_classes"):
        make_loss("cel", 16)
    with pytest.raises(TypeError, match="name must be a string"):
        make_loss(DPSHLoss, 16)
