"""h2q: deep hashing with Householder quantization (H²Q, arXiv 2311.04207).

The public API, by stage of the pipeline:

- stage 2 (any embeddings, numpy or torch): :class:`HouseholderQuantizer` (H²Q),
  :class:`ITQQuantizer`, :class:`SignQuantizer`, :func:`load_quantizer`, and the torch module
  :class:`HouseholderRotation`;
- codes and search: :func:`binarize`, :func:`pack_bits`, :func:`unpack_bits`,
  :func:`encode_sign`, :func:`hamming_distances`, :class:`HammingIndex`,
  :class:`MultiIndexHammingIndex`, :class:`AsymmetricIndex` (float queries against codes),
  :func:`rank_database` (more in :mod:`h2q.search`);
- metrics: :func:`mean_average_precision` and friends (:mod:`h2q.evaluation.metrics`), the
  side-by-side :func:`evaluate_quantizers` (:mod:`h2q.evaluation`) of a set of embeddings
  (:class:`EmbeddingFolds`, :func:`load_embeddings`);
- stage 1: the losses in :mod:`h2q.losses`, models in :mod:`h2q.models`, the training loop
  and :func:`run_training` in :mod:`h2q.training`; data sets and splits in :mod:`h2q.data`;
  the experiment grid in :mod:`h2q.experiments`.

Importing h2q loads numpy and torch and nothing else; optional pieces (faiss, matplotlib,
pretrained backbones) load when first used.
"""

from ._version import __version__
from .codes import binarize, encode_sign, hamming_distances, pack_bits, unpack_bits
from .embeddings import EmbeddingFolds, load_embeddings, save_embeddings
from .evaluation import evaluate_quantizers
from .evaluation.metrics import (
    average_precision,
    map_within_radius,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    recall_at_k,
    variant_name,
    within_radius_metrics,
)
from .exceptions import FileFormatError, NotFittedError
from .labels import share_label
from .quantizers import (
    BaseQuantizer,
    HouseholderQuantizer,
    ITQQuantizer,
    SignQuantizer,
    load_quantizer,
)
from .rotation import HouseholderRotation, reflections_rotation
from .search import (
    AsymmetricIndex,
    HammingIndex,
    MultiIndexHammingIndex,
    iter_rank_database,
    rank_database,
)

__all__ = [
    "AsymmetricIndex",
    "BaseQuantizer",
    "EmbeddingFolds",
    "FileFormatError",
    "HammingIndex",
    "HouseholderQuantizer",
    "HouseholderRotation",
    "ITQQuantizer",
    "MultiIndexHammingIndex",
    "NotFittedError",
    "SignQuantizer",
    "__version__",
    "average_precision",
    "binarize",
    "encode_sign",
    "evaluate_quantizers",
    "hamming_distances",
    "reflections_rotation",
    "iter_rank_database",
    "load_embeddings",
    "load_quantizer",
    "map_within_radius",
    "mean_average_precision",
    "pack_bits",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "rank_database",
    "recall_at_k",
    "save_embeddings",
    "share_label",
    "unpack_bits",
    "variant_name",
    "within_radius_metrics",
]
