"""Every stage-1 loss against a slow per-pair Python reference, plus gradcheck and errors.

The references below use plain Python floats and the math module, one pair at a time, and
compute "share a label" with Python sets, independently of h2q.labels.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from h2q.losses import (
    CELLoss,
    DCHLoss,
    DHNLoss,
    DPSHLoss,
    DSHLoss,
    HashNetLoss,
    HyP2Loss,
    WGLHHLoss,
)
from h2q.losses._common import _BEST_KNOWN_DISTANCE, code_table_margin

N_CLASSES = 4

# --------------------------------------------------------------------------------------------
# slow references
# --------------------------------------------------------------------------------------------


def label_sets(y: torch.Tensor) -> list[set[int]]:
    if y.ndim == 1:
        return [{int(c)} for c in y.tolist()]
    return [{c for c, v in enumerate(row) if v} for row in y.tolist()]


def shares(sets: list[set[int]], i: int, j: int) -> float:
    return 1.0 if sets[i] & sets[j] else 0.0


def pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(n) if i != j]


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def cos(a: list[float], b: list[float]) -> float:
    return dot(a, b) / math.sqrt(dot(a, a) * dot(b, b))


def softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sign(x: float) -> float:
    return (x > 0) - (x < 0)


def balance_weights(u, y, similar_fraction=None):
    sets = label_sets(y)
    ps = pairs(len(u))
    n_pos = sum(shares(sets, i, j) for i, j in ps)
    n_neg = len(ps) - n_pos
    if similar_fraction is None:
        w_pos = len(ps) / n_pos if n_pos else 0.0
        w_neg = len(ps) / n_neg if n_neg else 0.0
    else:
        w_pos, w_neg = 1 / similar_fraction, 1 / (1 - similar_fraction)
    return lambda i, j: w_pos if shares(sets, i, j) else w_neg


def pair_mean(u, y, ell, weight=None):
    u = u.tolist()
    sets = label_sets(y)
    ps = pairs(len(u))
    total = 0.0
    for i, j in ps:
        w = 1.0 if weight is None else weight(i, j)
        total += w * ell(u[i], u[j], shares(sets, i, j))
    return total / len(ps)


def ref_dpsh(u, y, scale=0.5):
    def ell(a, b, s):
        theta = scale * dot(a, b)
        return softplus(theta) - s * theta

    return pair_mean(u, y, ell)


def ref_hashnet(u, y, similar_fraction=None):
    alpha = 10.0 / u.shape[1]

    def ell(a, b, s):
        theta = alpha * dot(a, b)
        return softplus(theta) - s * theta

    return pair_mean(u, y, ell, balance_weights(u, y, similar_fraction))


def ref_dch(u, y, gamma=10.0, eps=1e-6, similar_fraction=None):
    k = u.shape[1]

    def ell(a, b, s):
        d = k / 2 * (1 - cos(a, b))
        if s:
            return math.log(1 + d / gamma)
        return math.log(1 + gamma / (d + eps))

    return pair_mean(u, y, ell, balance_weights(u, y, similar_fraction))


def ref_wglhh(u, y, alpha=0.1, similar_fraction=None):
    k = u.shape[1]

    def ell(a, b, s):
        c = cos(a, b)
        p = math.exp(-alpha * (k / 2 * (1 - c)) ** 2)
        # the divergence written with 0 log 0 = 0, straight from its definition
        div = p * math.log(2 * p / (p + s)) + (s * math.log(2 * s / (s + p)) if s else 0.0)
        attention = math.exp(abs((1 + c) / 2 - s))
        return attention * div

    return pair_mean(u, y, ell, balance_weights(u, y, similar_fraction))


def ref_cel(u, y, margin):
    def ell(a, b, s):
        c = cos(a, b)
        return s * (1 - c) + (1 - s) * max(0.0, c - margin)

    return pair_mean(u, y, ell)


def ref_dsh(u, y, margin=None):
    m = 2 * u.shape[1] if margin is None else margin

    def ell(a, b, s):
        dist = sum((x - z) ** 2 for x, z in zip(a, b, strict=True))
        return 0.5 * s * dist + 0.5 * (1 - s) * max(0.0, m - dist)

    return pair_mean(u, y, ell)


def ref_hyp2(u, y, proxies, margin, pair_weight):
    u_l, p_l = u.tolist(), proxies.tolist()
    sets = label_sets(y)
    pos, neg = [], []
    for i, a in enumerate(u_l):
        for c, p in enumerate(p_l):
            (pos if c in sets[i] else neg).append(cos(a, p))
    proxy = sum(1 - v for v in pos) / max(len(pos), 1)
    proxy += sum(max(0.0, v - margin) for v in neg) / max(len(neg), 1)
    dis = [
        max(0.0, cos(u_l[i], u_l[j]) - margin) for i, j in pairs(len(u_l)) if not shares(sets, i, j)
    ]
    return proxy + pair_weight * (sum(dis) / len(dis) if dis else 0.0)


def per_sample_mean(u, term):
    return sum(term(row) for row in u.tolist()) / len(u)


def ref_l2_penalty(u):
    return per_sample_mean(u, lambda row: sum((x - sign(x)) ** 2 for x in row))


def ref_dhn_penalty(u):
    return per_sample_mean(u, lambda row: sum(math.log(math.cosh(abs(x) - 1)) for x in row))


def ref_dch_penalty(u, gamma=10.0):
    k = u.shape[1]

    def term(row):
        c = sum(abs(x) for x in row) / (math.sqrt(sum(x * x for x in row)) * math.sqrt(k))
        return math.log(1 + k / 2 * (1 - c) / gamma)

    return per_sample_mean(u, term)


def ref_dsh_penalty(u):
    return per_sample_mean(u, lambda row: sum(abs(abs(x) - 1) for x in row))


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


def make_batch(seed: int, kind: str, n: int = 7, k: int = 6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, k, generator=g, dtype=dtype) * 1.5
    if kind == "ids":
        y = torch.randint(0, N_CLASSES, (n,), generator=g)
    else:
        y = (torch.rand(n, N_CLASSES, generator=g) < 0.35).long()
    return u, y


CEL_MARGIN = 0.2

# name -> (loss factory, similarity reference, penalty reference or None)
CASES = {
    "dpsh": (lambda: DPSHLoss(), ref_dpsh, ref_l2_penalty),
    "dpsh_scale1": (lambda: DPSHLoss(scale=1.0), lambda u, y: ref_dpsh(u, y, 1.0), None),
    "dhn": (lambda: DHNLoss(), ref_dpsh, ref_dhn_penalty),
    "dch": (lambda: DCHLoss(), ref_dch, ref_dch_penalty),
    "dch_fraction": (
        lambda: DCHLoss(similar_fraction=0.3, gamma=4.0),
        lambda u, y: ref_dch(u, y, gamma=4.0, similar_fraction=0.3),
        lambda u: ref_dch_penalty(u, gamma=4.0),
    ),
    "wglhh": (lambda: WGLHHLoss(), ref_wglhh, ref_l2_penalty),
    "wglhh_fraction": (
        lambda: WGLHHLoss(similar_fraction=0.2, alpha=0.05),
        lambda u, y: ref_wglhh(u, y, alpha=0.05, similar_fraction=0.2),
        None,
    ),
    "hashnet": (lambda: HashNetLoss(), ref_hashnet, None),
    "hashnet_fraction": (
        lambda: HashNetLoss(similar_fraction=0.1),
        lambda u, y: ref_hashnet(u, y, similar_fraction=0.1),
        None,
    ),
    "cel": (lambda: CELLoss(margin=CEL_MARGIN), lambda u, y: ref_cel(u, y, CEL_MARGIN), None),
    "dsh": (lambda: DSHLoss(), ref_dsh, ref_dsh_penalty),
    "dsh_margin": (lambda: DSHLoss(margin=5.0), lambda u, y: ref_dsh(u, y, 5.0), None),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["ids", "multi_hot"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_per_pair_reference(name, kind, seed):
    factory, ref, _ = CASES[name]
    u, y = make_batch(seed, kind)
    got = factory()(u, y)
    assert got.dtype == torch.float64 and got.ndim == 0
    assert got.item() == pytest.approx(ref(u, y), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(n for n in CASES if CASES[n][2] is not None))
def test_penalty_matches_reference(name, seed):
    factory, _, ref_penalty = CASES[name]
    u, _ = make_batch(seed, "ids")
    assert factory().penalty(u).item() == pytest.approx(ref_penalty(u), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", ["ids", "multi_hot"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name, kind):
    factory, _, has_penalty = CASES[name]
    loss = factory()
    u, y = make_batch(3, kind, n=5, k=4)
    u.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, y), (u,))
    if has_penalty is not None:
        assert torch.autograd.gradcheck(loss.penalty, (u,))


@pytest.mark.parametrize("name", ["dpsh", "dch", "wglhh", "hashnet", "cel", "dsh"])
def test_float32_follows_input_and_backprops(name):
    u, y = make_batch(0, "ids", dtype=torch.float32)
    u.requires_grad_(True)
    out = CASES[name][0]()(u, y)
    out.backward()
    assert out.dtype == torch.float32
    assert torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0


def test_labels_as_multi_hot_one_hot_equal_class_ids():
    u, y = make_batch(5, "ids")
    one_hot = torch.nn.functional.one_hot(y, N_CLASSES)
    for name in ("dpsh", "dch", "wglhh", "hashnet", "cel", "dsh"):
        loss = CASES[name][0]()
        assert torch.allclose(loss(u, y), loss(u, one_hot), rtol=0, atol=1e-12)


def test_class_balance_with_a_single_class_of_pairs():
    # all samples dissimilar: the weights reduce to 1 and DCH is the plain mean
    u, _ = make_batch(2, "ids", n=4)
    y = torch.arange(4)
    assert DCHLoss()(u, y).item() == pytest.approx(ref_dch(u, y), rel=1e-9)
    y_same = torch.zeros(4, dtype=torch.long)
    assert HashNetLoss()(u, y_same).item() == pytest.approx(ref_hashnet(u, y_same), rel=1e-9)


def test_dch_dissimilar_parallel_outputs_stay_finite():
    u = torch.tensor([[1.0, 2.0, -1.0], [2.0, 4.0, -2.0]], dtype=torch.float64)
    out = DCHLoss()(u, torch.tensor([0, 1]))
    assert torch.isfinite(out)


def test_wglhh_is_zero_for_coinciding_similar_pair_and_positive_otherwise():
    u = torch.tensor([[1.0, -1.0, 1.0, 1.0], [2.0, -2.0, 2.0, 2.0]], dtype=torch.float64)
    assert WGLHHLoss()(u, torch.tensor([0, 0])).item() == pytest.approx(0.0, abs=1e-12)
    assert WGLHHLoss()(u, torch.tensor([0, 1])).item() > 0


def test_dhn_shares_dpsh_similarity_but_not_its_penalty():
    u, y = make_batch(4, "multi_hot")
    assert torch.equal(DHNLoss()(u, y), DPSHLoss()(u, y))
    assert not torch.allclose(DHNLoss().penalty(u), DPSHLoss().penalty(u))


# --------------------------------------------------------------------------------------------
# HyP²
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["ids", "multi_hot"])
@pytest.mark.parametrize("pair_weight", [1.25, 0.75])
def test_hyp2_matches_reference(kind, seed, pair_weight):
    u, y = make_batch(seed, kind)
    loss = HyP2Loss(6, N_CLASSES, pair_weight=pair_weight, margin=0.1, random_state=seed).double()
    got = loss(u, y)
    want = ref_hyp2(u, y, loss.proxies.detach(), 0.1, pair_weight)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", ["ids", "multi_hot"])
def test_hyp2_gradcheck_embeddings_and_proxies(kind):
    u, y = make_batch(7, kind, n=5, k=4)
    loss = HyP2Loss(4, N_CLASSES, margin=-0.1, random_state=0).double()
    proxies = loss.proxies.detach().clone().requires_grad_(True)
    u.requires_grad_(True)

    def f(x, p):
        return functional_call(loss, {"proxies": p}, (x, y))

    assert torch.autograd.gradcheck(f, (u, proxies))


def test_hyp2_proxies_are_registered_and_trained():
    loss = HyP2Loss(8, 3, random_state=0)
    assert [name for name, _ in loss.named_parameters()] == ["proxies"]
    assert loss.proxies.shape == (3, 8)
    opt = torch.optim.SGD(loss.parameters(), lr=0.5)
    before = loss.proxies.detach().clone()
    u = torch.randn(6, 8)
    loss(u, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    opt.step()
    assert not torch.equal(before, loss.proxies.detach())


def test_hyp2_initialisation_is_seeded():
    a = HyP2Loss(16, 10, random_state=3).proxies
    b = HyP2Loss(16, 10, random_state=3).proxies
    c = HyP2Loss(16, 10, random_state=4).proxies
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hyp2_default_margin_is_the_code_table_margin():
    assert HyP2Loss(16, 80).margin == 0.25
    assert HyP2Loss(64, 10).margin == -1 / 32


def test_hyp2_errors():
    loss = HyP2Loss(8, 3)
    with pytest.raises(ValueError, match="built with n_bits=8"):
        loss(torch.randn(4, 16), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="multi-hot labels have 5 classes"):
        loss(torch.randn(4, 8), torch.ones(4, 5))
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 3\)"):
        loss(torch.randn(4, 8), torch.tensor([0, 1, 3, 0]))
    with pytest.raises(TypeError, match="class ids must be integers"):
        loss(torch.randn(4, 8), torch.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        HyP2Loss(8, 1)
    with pytest.raises(ValueError, match="pair_weight must be non-negative"):
        HyP2Loss(8, 3, pair_weight=-1.0)


# --------------------------------------------------------------------------------------------
# CEL margin / code table
# --------------------------------------------------------------------------------------------


def griesmer_length(m: int, d: int) -> int:
    return sum(math.ceil(d / 2**i) for i in range(m))


def test_code_table_rows_are_consistent():
    for n, row in _BEST_KNOWN_DISTANCE.items():
        assert row[0] == n  # repetition code
        assert row[1] == (2 * n) // 3  # optimal two-dimensional codes
        assert all(a >= b for a, b in zip(row, row[1:], strict=False))  # more words, less room
        for m, d in enumerate(row, start=1):
            assert griesmer_length(m, d) <= n, (n, m, d)  # no entry beats the Griesmer bound


@pytest.mark.parametrize(
    ("n_bits", "n_classes", "margin"),
    [
        (16, 10, 0.0),  # CIFAR-10, 16 bits
        (64, 10, -1 / 32),  # CIFAR-10, 64 bits: the [64, 4, 33] code
        (32, 21, 0.0),  # NUS-WIDE
        (16, 80, 0.25),  # MS-COCO (and ImageNet-100: 7 information bits as well)
        (32, 100, 0.125),
        (48, 80, 1 / 12),
        (64, 100, 0.0),  # the [64, 7, 32] Reed-Muller code
        (24, 4096, 1 / 3),  # the Golay code
        (16, 2, -1.0),
    ],
)
def test_code_table_margin_paper_settings(n_bits, n_classes, margin):
    assert code_table_margin(n_bits, n_classes) == pytest.approx(margin, abs=1e-15)
    assert CELLoss(n_bits, n_classes).margin == pytest.approx(margin, abs=1e-15)


def test_code_table_margin_errors():
    with pytest.raises(ValueError, match="no code-table margin for n_bits=20"):
        code_table_margin(20, 10)
    with pytest.raises(ValueError, match="no code-table margin for n_bits=8 and n_classes=1000"):
        code_table_margin(8, 1000)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        code_table_margin(16, 1)
    with pytest.raises(ValueError, match="needs n_bits and n_classes"):
        CELLoss(16)
    with pytest.raises(ValueError, match=r"margin must be a cosine in \[-1, 1\)"):
        CELLoss(margin=1.5)
    assert CELLoss(20, 10, margin=0.1).margin == 0.1  # explicit margin: no table needed


# --------------------------------------------------------------------------------------------
# input errors shared by every loss
# --------------------------------------------------------------------------------------------

ALL_LOSSES = [
    DPSHLoss,
    DHNLoss,
    DCHLoss,
    WGLHHLoss,
    HashNetLoss,
    lambda n_bits=None: CELLoss(n_bits, margin=0.0),
    DSHLoss,
    lambda n_bits=None: HyP2Loss(n_bits or 6, N_CLASSES, margin=0.0),
]


@pytest.mark.parametrize("make", ALL_LOSSES)
def test_input_errors(make):
    loss = make()
    u, y = make_batch(0, "ids", dtype=torch.float32)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        loss(u.tolist(), y)
    with pytest.raises(TypeError, match="floating-point tensor is expected"):
        loss(u.long(), y)
    with pytest.raises(ValueError, match="must be 2-D with shape"):
        loss(u[0], y)
    with pytest.raises(ValueError, match="must be 2-D with shape"):
        loss(u[None], y)
    with pytest.raises(ValueError, match="labels have 6 entries but the embeddings have 7"):
        loss(u, y[:6])
    with pytest.raises(ValueError, match="labels must be class ids of shape"):
        loss(u, y[:, None, None])
    with pytest.raises(ValueError, match="built with n_bits=6"):
        make(n_bits=6)(torch.randn(7, 5), y)


@pytest.mark.parametrize("make", ALL_LOSSES[:-1])
def test_pair_losses_need_two_samples(make):
    with pytest.raises(ValueError, match="needs at least 2"):
        make()(torch.randn(1, 6), torch.tensor([0]))


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match="similar_fraction must lie strictly between 0 and 1"):
        DCHLoss(similar_fraction=1.0)
    with pytest.raises(ValueError, match="gamma must be positive"):
        DCHLoss(gamma=0.0)
    with pytest.raises(ValueError, match="alpha must be positive"):
        WGLHHLoss(alpha=-1.0)
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        DPSHLoss(n_bits=0)
    with pytest.raises(ValueError, match="margin must be positive"):
        DSHLoss(margin=0.0)
