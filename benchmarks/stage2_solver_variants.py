"""Sweeps behind the default stage-2 solver's constants (scratch measurements, not a benchmark).

A re-implementation of the default solver ``gd`` with every knob exposed: the schedule
(cosine over a fixed horizon, or the stall rule: learning rate times ``decay`` after
``patience`` checks without a relative gain of 1e-4, stop after ``max_decays`` drops), the
batch size, and the start (identity, a random rotation, or ITQ's rotation from the
identity converted to Householder vectors). Each variant runs once per seed on one thread and
reports process CPU time, the best validation L2 loss, the iteration of the best iterate and
the iterations run, next to ITQ (50 iterations from a random rotation). Sets: the stage-2
benchmark's Fashion-MNIST embeddings (16/32/64 bits, cached by bench_stage2.py) and its wide
MiniLM set (benchmarks/out/wordnet-minilm.npz, PCA to 128/256/384 bits). Output as run for
the current constants: benchmarks/results/stage2_solver_variants.txt.

    python benchmarks/stage2_solver_variants.py narrow
    python benchmarks/stage2_solver_variants.py wide
    python benchmarks/stage2_solver_variants.py synthetic   # where ITQ can end lower
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from h2q.embeddings import load_embeddings
from h2q.quantizers._solvers import _loss_and_grad, _sample
from h2q.quantizers.itq import itq_iterations
from h2q.quantizers.objectives import get_objective
from h2q.rotation import reflections_rotation

OUT = Path(__file__).resolve().parent / "out"
L2 = get_objective("l2")

NARROW = {
    "cosine200-identity": dict(schedule="cosine", horizon=200, batch=1024),
    "cosine200-itq-start": dict(schedule="cosine", horizon=200, batch=1024, start="itq"),
    "cosine100-bs256": dict(schedule="cosine", horizon=100, batch=256),
    "stall-p4-d3-bs1024": dict(patience=4, max_decays=3, batch=1024),
    "stall-p4-d3-bs1024-itq-start": dict(patience=4, max_decays=3, batch=1024, start="itq"),
    "stall-p2-d3-bs1024": dict(patience=2, max_decays=3, batch=1024),
    "stall-p2-d3-bs256": dict(patience=2, max_decays=3, batch=256),
    "stall-p2-d2-bs512 (default)": dict(patience=2, max_decays=2, batch=512),
}
SYNTHETIC = {
    "stall-p2-d2 (default)": dict(),
    "stall-p4-d6": dict(patience=4, max_decays=6),
    "stall-p2-d2-lr1.0": dict(lr0=1.0),
}
WIDE = {
    "stall-p2-lr0.5 (default below 256 bits)": dict(),
    "stall-p4-lr0.5": dict(patience=4),
    "stall-p4-lr0.2 (default from 256 bits)": dict(patience=4, lr0=0.2),
    "stall-p4-lr0.3": dict(patience=4, lr0=0.3),
    "stall-p3-lr0.2": dict(patience=3, lr0=0.2),
    "stall-p2-lr0.2": dict(lr0=0.2),
    "stall-p2-lr0.1": dict(lr0=0.1),
    "stall-p2-bs1024": dict(batch=1024),
    "stall-p2-random-start": dict(start="random"),
    "constant-lr0.5-600": dict(patience=10**9, cap=600),
    "constant-lr0.2-400": dict(patience=10**9, cap=400, lr0=0.2),
}


def vectors_from_rotation(U: torch.Tensor) -> torch.Tensor:
    """Householder vectors (k, k) whose product is ``D U`` for a diagonal ``D`` of +-1 (row
    sign flips, which change no stage-2 loss): stable Householder QR of ``U^T``."""
    k = U.shape[0]
    A = U.T.to(torch.float64).clone()
    vectors = []
    for j in range(k):
        x = A[j:, j]
        alpha = -math.copysign(float(torch.linalg.vector_norm(x)), float(x[0]))
        v = torch.zeros(k, dtype=torch.float64)
        v[j:] = x
        v[j] -= alpha
        A -= (2.0 / float(v @ v)) * torch.outer(v, v @ A)
        vectors.append(v)
    return torch.stack(vectors[::-1]).to(U.dtype)


def gd_variant(
    Z,
    Z_val,
    k,
    seed,
    *,
    schedule="stall",
    horizon=200,
    batch=512,
    start="identity",
    patience=2,
    max_decays=2,
    decay=0.3,
    lr0=0.5,
    momentum=0.95,
    check=5,
    cap=3000,
):
    gen = torch.Generator().manual_seed(seed)
    n = Z.shape[0]

    def monitored(x):
        return float(L2.value(Z_val @ reflections_rotation(x).T))

    x = torch.eye(k, dtype=Z.dtype)
    if start == "random":  # a seeded Haar rotation, as Householder vectors
        gauss = torch.randn(k, k, generator=torch.Generator().manual_seed(100 + seed))
        x = vectors_from_rotation(torch.linalg.qr(gauss.double()).Q.to(Z.dtype))
    if start == "itq":
        rows = Z if n <= 2048 else Z[torch.randperm(n, generator=gen)[:2048]]
        R, _ = itq_iterations(rows, torch.eye(k, dtype=Z.dtype), 10)
        candidate = vectors_from_rotation(R.T)
        if monitored(candidate) < monitored(x):
            x = candidate
    best, best_it, velocity, lr = monitored(x), 0, torch.zeros_like(x), lr0
    reference, stalls, decays, it = best, 0, 0, 0
    while it < cap:
        it += 1
        rows = Z if n <= batch else Z[_sample(n, batch, gen, Z)]
        _, g, _ = _loss_and_grad(x, rows, L2)
        if schedule == "cosine":
            lr = 0.5 * lr0 * (1 + math.cos(math.pi * (it - 1) / horizon))
        velocity.mul_(momentum).add_(g)
        x = x - lr * velocity
        if schedule == "cosine" and it >= horizon:
            value = monitored(x)
            best, best_it = (value, it) if value < best else (best, best_it)
            break
        if it % check:
            continue
        value = monitored(x)
        if value < best:
            best, best_it = value, it
        if value < reference * (1 - 1e-4):
            reference, stalls = value, 0
            continue
        stalls += 1
        if schedule == "stall" and stalls >= patience:
            stalls = 0
            if decays >= max_decays:
                break
            decays, lr = decays + 1, lr * decay
    return best, best_it, it


def itq_reference(Z, Z_val, k):
    gauss = torch.randn(k, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t0 = time.process_time()
    R, _ = itq_iterations(Z, torch.linalg.qr(gauss).Q.to(Z.dtype), 50)
    return time.process_time() - t0, float(L2.value(Z_val @ R))


def rescaled(P, k):
    return P / P.norm(dim=1, keepdim=True) * k**0.5


def narrow_sets():
    for k in (16, 32, 64):
        emb = load_embeddings(OUT / f"fmnist-dpsh-{k}" / "embeddings.npz")
        yield (
            k,
            rescaled(torch.from_numpy(emb.train), k),
            rescaled(torch.from_numpy(emb.val), k),
        )


def wide_sets():
    """bench_stage2.py's wide set: 6,000 / 1,000 rows of the WordNet MiniLM train fold."""
    X = load_embeddings(OUT / "wordnet-minilm.npz").train.astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(X))
    Xt, Xv = torch.from_numpy(X[perm[:6000]]), torch.from_numpy(X[perm[6000:7000]])
    mean = Xt.mean(0)
    _, vecs = torch.linalg.eigh(((Xt - mean).T @ (Xt - mean)).double())
    for k in (128, 256, 384):
        C = vecs[:, -k:].flip(1).T.float()
        yield k, rescaled((Xt - mean) @ C.T, k), rescaled((Xv - mean) @ C.T, k)


def synthetic_sets():
    """Clustered Gaussian embeddings (the test suite's generator), centred: small and rugged."""
    for n, k in ((600, 16), (3000, 8), (2000, 32)):
        centers = np.random.default_rng(1234 + k).standard_normal((6, k))
        sets = []
        for seed, size in ((0, n), (1, 200)):
            rng = np.random.default_rng(seed)
            X = torch.from_numpy(
                (centers[rng.integers(0, 6, size)] + 0.6 * rng.standard_normal((size, k))).astype(
                    np.float32
                )
            )
            sets.append(X)
        mean = sets[0].mean(0)
        yield k, rescaled(sets[0] - mean, k), rescaled(sets[1] - mean, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=("narrow", "wide", "synthetic"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants, sets = {
        "narrow": (NARROW, narrow_sets),
        "wide": (WIDE, wide_sets),
        "synthetic": (SYNTHETIC, synthetic_sets),
    }[args.which]
    for k, Z, Z_val in sets():
        t, loss = itq_reference(Z, Z_val, k)
        print(f"{k} bits | ITQ-50 | {t:.3f} s | val {loss:.5f}", flush=True)
        for name, kw in variants.items():
            kw = {"batch": min(2048, max(512, 8 * k)), **kw}  # the default's batch per width
            for seed in args.seeds:
                t0 = time.process_time()
                best, best_it, iters = gd_variant(Z, Z_val, k, seed, **kw)
                t = time.process_time() - t0
                print(
                    f"{k} bits | {name} seed {seed} | {t:.3f} s | val {best:.5f} | "
                    f"best iterate {best_it} of {iters}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
