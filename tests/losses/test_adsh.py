"""ADSH: loss and gradient against a per-pair float64 loop; the discrete code update."""

from __future__ import annotations

import itertools

import pytest
import torch

from h2q.losses.adsh import adsh_loss, adsh_similarity, update_codes


def _problem(seed: int, m: int = 6, n: int = 11, c: int = 5, multi_hot: bool = False):
    g = torch.Generator().manual_seed(seed)
    if multi_hot:
        labels = (torch.rand(n, 4, generator=g) < 0.4).long()
    else:
        labels = torch.randint(0, 3, (n,), generator=g)
    query_index = torch.randperm(n, generator=g)[:m]
    u = torch.tanh(torch.randn(m, c, generator=g, dtype=torch.float64))
    codes = torch.where(torch.rand(n, c, generator=g) < 0.5, -1.0, 1.0).double()
    similarity = adsh_similarity(labels[query_index], labels).double()
    return u, codes, similarity, query_index, labels


def _reference(u, codes, labels, query_index, gamma):
    """J by a plain loop over pairs, in float64, straight from the paper's formula."""
    m, c = u.shape
    total = torch.zeros((), dtype=torch.float64)
    for i in range(m):
        qi = int(query_index[i])
        for j in range(len(codes)):
            if labels.ndim == 1:
                s = 1.0 if int(labels[qi]) == int(labels[j]) else -1.0
            else:
                s = 1.0 if bool((labels[qi] * labels[j]).sum() > 0) else -1.0
            dot = sum(u[i, b] * codes[j, b] for b in range(c))
            total = total + (dot - c * s) ** 2
        total = total + gamma * sum((codes[qi, b] - u[i, b]) ** 2 for b in range(c))
    return total


@pytest.mark.parametrize(("seed", "multi_hot"), [(0, False), (1, True), (2, False)])
def test_loss_and_gradient_match_a_per_pair_loop(seed, multi_hot):
    u, codes, similarity, query_index, labels = _problem(seed, multi_hot=multi_hot)
    u1 = u.clone().requires_grad_(True)
    u2 = u.clone().requires_grad_(True)
    fast = adsh_loss(u1, codes, similarity, query_index, gamma=200.0)
    slow = _reference(u2, codes, labels, query_index, 200.0)
    fast.backward()
    slow.backward()
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(u1.grad, u2.grad, rtol=1e-12, atol=1e-9)


def _objective(codes, u, similarity, query_index, gamma):
    return float(adsh_loss(u, codes, similarity, query_index, gamma))


@pytest.mark.parametrize("seed", range(5))
def test_code_update_never_increases_the_objective(seed):
    u, codes, similarity, query_index, _ = _problem(seed, m=8, n=30, c=6)
    before = _objective(codes, u, similarity, query_index, 200.0)
    for _ in range(3):
        codes = update_codes(codes, u, similarity, query_index, gamma=200.0)
        after = _objective(codes, u, similarity, query_index, 200.0)
        assert after <= before + 1e-9
        before = after
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_each_column_step_is_the_exact_minimiser():
    # With 3 bits and 4 database items, brute force over every value of one column.
    u, codes, similarity, query_index, _ = _problem(7, m=3, n=4, c=3)
    new = update_codes(codes, u, similarity, query_index, gamma=5.0)
    # After the full sweep the last column is optimal given the others.
    best = min(
        _objective(
            torch.cat([new[:, :2], torch.tensor(col, dtype=new.dtype)[:, None]], 1),
            u,
            similarity,
            query_index,
            5.0,
        )
        for col in itertools.product([-1.0, 1.0], repeat=4)
    )
    assert _objective(new, u, similarity, query_index, 5.0) == pytest.approx(best, abs=1e-9)


def test_update_refuses_repeated_query_positions():
    u, codes, similarity, _, _ = _problem(3, m=2, n=5, c=4)
    with pytest.raises(ValueError, match="repeats"):
        update_codes(codes, u, similarity, torch.tensor([1, 1]))


def test_shape_mismatch_is_named():
    u, codes, similarity, query_index, _ = _problem(4)
    with pytest.raises(ValueError, match="similarity"):
        adsh_loss(u, codes, similarity[:, :-1], query_index)
