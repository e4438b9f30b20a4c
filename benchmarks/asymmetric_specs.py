"""Which systems the asymmetric-scoring benchmark runs on each data set.

Groups (systems are compared within a group, at about the same bytes per item):
``"1 bit/dim"``, ``"2 bits/dim"``, ``"4 bits/dim"``, ``"64 bits (PCA)"``, ``"128 bits (PCA)"``.
The anchors (faiss) and h2q's Hamming ranking run everywhere; the :class:`h2q.AsymmetricIndex`
variants only when the h2q on the path has it (``options``: the keyword arguments it takes;
a variant needing one it lacks is left out).
"""

from __future__ import annotations

from asymmetric_systems import Spec

G1, G2, G4 = "1 bit/dim", "2 bits/dim", "4 bits/dim"
#: The anchor each target compares with, by group.
ANCHOR = {
    G1: "faiss RaBitQ qb4",
    G2: "faiss RaBitQ 2-bit qb8",
    G4: "faiss RaBitQ 4-bit qb8",
    "64 bits (PCA)": "faiss PCA64+RR+RaBitQ qb8",
    "128 bits (PCA)": "faiss PCA128+RR+RaBitQ qb8",
}
FASTSCAN = "faiss RaBitQFastScan qb8"
#: Asymmetric variants timed on the 10^6-item set besides the default.
SPEED_ASYM = ("h2q asym random c16 qb4", "h2q asym random c64 qb4")
#: The library's default design: every option at its default, on a random rotation.
DEFAULT = "h2q asym default"


def pca_group(bits: int) -> str:
    return f"{bits} bits (PCA)"


def faiss_specs(d: int, quick: bool) -> list[Spec]:
    """faiss RaBitQ anchors: 1 bit (qb 4 and 8), FastScan, multi-bit, PCA + RR + RaBitQ."""
    f = "faiss"
    out = [
        Spec("faiss RaBitQ qb4", f, G1, {"factory": "RR{d},RaBitQ", "qb": 4}),
        Spec("faiss RaBitQ qb8", f, G1, {"factory": "RR{d},RaBitQ", "qb": 8}),
        Spec(FASTSCAN, f, G1, {"factory": "RR{d},RaBitQfs", "qb": 8}),
        Spec("faiss RaBitQ 2-bit qb8", f, G2, {"factory": "RR{d},RaBitQ2", "qb": 8}),
        Spec("faiss RaBitQ 4-bit qb8", f, G4, {"factory": "RR{d},RaBitQ4", "qb": 8}),
    ]
    if not quick:
        out.insert(
            3, Spec("faiss RaBitQFastScan qb4", f, G1, {"factory": "RR{d},RaBitQfs", "qb": 4})
        )
        out.append(Spec("faiss RaBitQ 2-bit qb4", f, G2, {"factory": "RR{d},RaBitQ2", "qb": 4}))
        out.append(Spec("faiss RaBitQ 4-bit qb4", f, G4, {"factory": "RR{d},RaBitQ4", "qb": 4}))
    for b in (64, 128):
        if b < d:
            factory = f"PCA{b},RR{b},RaBitQ"
            out.append(
                Spec(f"faiss PCA{b}+RR+RaBitQ qb8", f, pca_group(b), {"factory": factory, "qb": 8})
            )
    return out


def hamming_specs(d: int, quick: bool) -> list[Spec]:
    """h2q Hamming ranking: H²Q and ITQ at full width, H²Q at 64 and 128 bits (PCA)."""
    out = [Spec("h2q H2Q Hamming", "hamming", G1, {"quantizer": "h2q", "bits": d})]
    if not quick:
        out.append(Spec("h2q ITQ Hamming", "hamming", G1, {"quantizer": "itq", "bits": d}))
    for b in (64, 128):
        if b < d:
            out.append(
                Spec(
                    f"h2q H2Q{b} Hamming", "hamming", pca_group(b), {"quantizer": "h2q", "bits": b}
                )
            )
    return out


def asym_specs(d: int, quick: bool, options: set[str]) -> list[Spec]:
    """:class:`h2q.AsymmetricIndex` variants, each kept only when ``options`` has its arguments.

    1 bit/dim: the default; random rotation x centroids (1, 4, 16, 64, 256) x query bits (4,
    8); ITQ and H²Q rotations at 1 and 64 centroids; randomised query rounding. 2 and 4
    bits/dim and PCA 64 / 128 (random and H²Q rotations): 1 and 64 centroids."""
    if not options:
        return []
    centroids = (1, 16) if quick else (1, 4, 16, 64, 256)
    few = (1, 16) if quick else (1, 64)
    query_bits = (4,) if quick else (4, 8)
    out = [Spec(DEFAULT, "asym", G1, {"rotation": "random"})]
    for c in centroids:
        for qb in query_bits:
            out.append(_asym(G1, "random", c, qb))
    for rot in ("itq", "h2q"):
        out += [_asym(G1, rot, c, 4) for c in few]
    for c in few:
        out.append(_asym(G1, "random", c, 4, query_rounding="random"))
    for bpd, group in ((2, G2), (4, G4)):
        out += [_asym(group, "random", c, qb, bits_per_dim=bpd) for c in few for qb in query_bits]
    for b in (64, 128):
        if b < d:
            out += [_asym(pca_group(b), rot, c, 8, pca=b) for rot in ("random", "h2q") for c in few]
    return [s for s in out if set(s.params) - {"rotation", "pca"} <= options]


def _asym(group: str, rotation: str, c: int, qb: int, **more: object) -> Spec:
    """One asymmetric variant, named after its settings."""
    extra = "".join(f" {k}={v}" for k, v in more.items())
    name = f"h2q asym {rotation} c{c} qb{qb}{extra}"
    params = {"rotation": rotation, "n_centroids": c, "query_bits": qb, **more}
    return Spec(name, "asym", group, params)


def specs_for(dataset: str, d: int, quick: bool, options: set[str]) -> list[Spec]:
    """The systems of one data set (the speed set: only the 1-bit anchors and h2q designs)."""
    specs = faiss_specs(d, quick) + hamming_specs(d, quick) + asym_specs(d, quick, options)
    if dataset == "speed":
        keep = {"faiss RaBitQ qb4", FASTSCAN, "h2q H2Q Hamming", DEFAULT, *SPEED_ASYM}
        specs = [s for s in specs if s.name in keep]
    return specs
