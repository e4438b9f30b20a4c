"""Evaluation: retrieval metrics and the side-by-side scoring of quantizers.

- :mod:`h2q.evaluation.metrics`: pure functions of a ranking (or a Hamming search) and
  labels: mAP@k and its named variants, precision@k, mAP and precision within a Hamming
  radius, precision-recall by radius, recall of the exact float neighbours. Every convention
  (k, denominator, what an empty query scores) is an explicit argument.
- :mod:`h2q.evaluation.supervised`: :func:`evaluate_quantizers`, the paper's protocol on
  labelled embeddings: fit each quantizer, rank the database for every query and score the
  ranking; the result renders as Markdown or CSV and plots as a precision-recall figure.
- :mod:`h2q.evaluation.unsupervised`: :func:`~h2q.evaluation.unsupervised.evaluate_recall`,
  recall of the exact float neighbours on unlabelled embeddings, against a set of baseline
  quantizers.

This package re-exports the public names of :mod:`h2q.evaluation.supervised`; the metrics are
also exported from :mod:`h2q` itself.
"""

from .supervised import (
    EvaluationResult,
    MethodResult,
    ProgressCallback,
    evaluate_quantizers,
    plot_precision_recall,
    render_csv,
    render_markdown,
)

__all__ = [
    "EvaluationResult",
    "MethodResult",
    "ProgressCallback",
    "evaluate_quantizers",
    "plot_precision_recall",
    "render_csv",
    "render_markdown",
]
