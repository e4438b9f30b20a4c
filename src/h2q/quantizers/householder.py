"""H²Q: the Householder quantizer of Schwengber et al. (arXiv 2311.04207), stage 2."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validation import check_optional_int, check_real
from ..rotation import HouseholderRotation, reflections_rotation
from . import _solvers
from .base import BaseQuantizer
from .objectives import get_objective

_PAPER_EPOCHS = 300


class HouseholderQuantizer(BaseQuantizer):
    """Learn an orthogonal ``U``, a product of Householder reflections, so that ``sign(U z)``
    loses as little as possible; hash with ``sign(U z)``.

    Unsupervised: it needs only embeddings. Rows are centred (if ``center=True``), rescaled to
    norm ``sqrt(n_bits)`` and the reflection vectors start at the identity (``U = -I``), as
    in the paper.

    Parameters
    ----------
    n_bits : int, optional
        Code length. Defaults to the embedding width. Smaller values need
        ``projection="pca"``.
    loss : {"l2", "l1", "min_entry", "bit_var"}
        The stage-2 loss (see :mod:`h2q.quantizers.objectives`); ``"l2"`` is the paper's
        default.
    solver : {"gd", "paper"}
        ``"gd"`` (default, ours): heavy-ball momentum (0.95) on random batches of 8 rows per
        bit (512 to 2,048) with learning rate 0.5 (0.2 from 256 bits), keeping the iterate
        with the lowest validation loss, checked every 5 iterations (without ``X_val``: the
        loss on up to 2,048 fixed training rows).
        When that loss stalls (no relative gain of 1e-4 over two checks; four from 256 bits)
        the learning rate drops to 0.3 times; the run stops at the third stall. So wider
        codes run longer, with fixed settings for every data set and width: nothing to tune.
        ``"paper"``: the reference loop, mini-batch SGD with learning rate 0.1 (0.01 for
        ``bit_var``), batch 128, 300 epochs, keeping the epoch with the lowest validation
        loss.
    n_reflections : int, optional
        Number of reflections m (default ``n_bits``: every rotation is reachable).
    center : bool
        Subtract the training mean before rescaling (ours; the paper does not centre).
        Default False, by measurement: on stage-1 embeddings trained for hashing (the paper's
        protocol) the zero threshold is what training aimed at, and centring lowered mAP@1000
        by 0.8-1.2 points at 16, 32 and 64 bits for sign, ITQ and H²Q alike, although it
        lowered the quantization loss (``benchmarks/results/stage2.md``). Turn it on (or use
        ``projection="pca"``, which always centres) for embeddings of general-purpose models,
        which are far from zero-mean (MiniLM's mean is about a third of its spread per
        coordinate): on MiniLM WordNet embeddings at 384 bits centring raised recall@10 of the
        float neighbours by 0.6 (H²Q) and 1.2 (ITQ) points and recall@100 by 0.4-0.6
        (``benchmarks/results/bench_text.md``). The vectors alone do not tell the two kinds
        apart, so the choice is the caller's.
    projection : {None, "pca"}
        PCA to ``n_bits`` dimensions before the rotation, for embeddings wider than the code
        (ours, not the paper's).
    rescale : bool
        Rescale rows to norm ``sqrt(n_bits)`` (the paper's setting).
    max_iter : int, optional
        Most iterations of ``"gd"`` (default 3,000; the stall rule stops far earlier) or
        epochs of ``"paper"`` (default 300).
    learning_rate : float, optional
        Defaults to 0.5 for ``"gd"`` (0.2 from 256 bits) and to the paper's value for the
        loss (0.1, or 0.01 for ``bit_var``) for ``"paper"``.
    batch_size : int, optional
        Rows per step: for ``"gd"`` 8 per bit, at least 512 and at most 2,048; the paper's 128
        for ``"paper"``.
    random_state : int or None
        Seeds the batches (None: a fresh random seed).
    device : str or torch.device, optional
        Where to fit; defaults to the input's device (CPU for numpy input). ``"cuda"``
        without CUDA is a ``ValueError``.
    n_threads : int, optional
        Threads for fit, transform and encode (torch, BLAS and numba pools together, see
        :func:`h2q._threads.thread_limit`). None: ``$H2Q_NUM_THREADS`` when set, else one
        thread for small fits (see :func:`h2q.quantizers.base.auto_threads`) and the
        libraries' default otherwise (always for transform and encode).

    Notes
    -----
    Inputs may be numpy ``float32``/``float64`` or torch tensors; torch ``float16`` and
    ``bfloat16`` are computed in ``float32``.

    Attributes
    ----------
    rotation_ : ndarray of shape (n_bits, n_bits)
        The learned ``U``; ``transform(X) = rescale(X) @ rotation_.T``.
    vectors_ : ndarray of shape (n_reflections, n_bits)
        Its Householder vectors.
    loss_curve_ : list of float
        Training loss per iteration (gd: of that iteration's batch; iteration 0 is the
        start) or per epoch (paper: mean batch loss).
    validation_curve_ : list of float
        Validation loss at each check: every ``validation_every_`` iterations (gd: 5, plus
        the last) or every epoch (paper). Empty without ``X_val``.
    validation_every_ : int
    best_iteration_ : int
        The iteration (epoch) kept.
    n_iter_ : int
        Iterations (epochs) run.
    n_features_in_, n_bits_ : int
    mean_, components_ : ndarray or None
        PCA mean and directions when ``projection="pca"``.
    """

    _fitted_arrays = ("vectors_", "loss_curve_", "validation_curve_")
    _fitted_scalars = ("best_iteration_", "n_iter_", "validation_every_")

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        loss: str = "l2",
        solver: str = "gd",
        n_reflections: int | None = None,
        center: bool = False,
        projection: str | None = None,
        rescale: bool = True,
        max_iter: int | None = None,
        learning_rate: float | None = None,
        batch_size: int | None = None,
        random_state: int | None = 0,
        device: str | None = None,
        n_threads: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.loss = loss
        self.solver = solver
        self.n_reflections = n_reflections
        self.center = center
        self.projection = projection
        self.rescale = rescale
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        X_val: Any = None,
        callback: _solvers.Callback | None = None,
    ) -> HouseholderQuantizer:
        """Fit the rotation; see :meth:`BaseQuantizer.fit`.

        Parameters
        ----------
        callback : callable, optional
            ``callback(iteration, train_loss, validation_loss)`` after each iteration
            (gd) or epoch (paper); return True to stop. Drives progress bars.
        """
        return super().fit(X, y, X_val=X_val, callback=callback)

    def _check_params(self) -> None:
        super()._check_params()
        self._objective = get_objective(self.loss)
        if self.solver not in _solvers.SOLVERS:
            raise ValueError(
                f"solver must be one of {tuple(_solvers.SOLVERS)}, got {self.solver!r}."
            )
        check_optional_int(self.n_reflections, "n_reflections")
        check_optional_int(self.max_iter, "max_iter")
        check_optional_int(self.batch_size, "batch_size")
        check_real(self.learning_rate, "learning_rate")

    def _fit_rotation(self, Z, Z_val, callback=None) -> None:
        k = Z.shape[1]
        module = HouseholderRotation(k, self.n_reflections, dtype=Z.dtype, device=Z.device)
        start = module.vectors.detach()
        generator = torch.Generator().manual_seed(self._seed())
        if self.solver == "gd":
            result = _solvers.gd(
                Z,
                Z_val,
                self._objective,
                start,
                generator=generator,
                max_iter=self.planned_iterations(),
                learning_rate=self.learning_rate,
                batch_size=self.batch_size,
                callback=callback,
            )
        else:
            result = _solvers.sgd(
                Z,
                Z_val,
                self._objective,
                start,
                epochs=self.planned_iterations(),
                learning_rate=self.learning_rate or self._objective.paper_learning_rate,
                batch_size=int(self.batch_size or 128),
                generator=generator,
                callback=callback,
            )
        with torch.no_grad():
            self.rotation_ = reflections_rotation(result.vectors).cpu().numpy()
        self.vectors_ = result.vectors.cpu().numpy()
        self.loss_curve_ = result.loss_curve
        self.validation_curve_ = result.validation_curve
        self.validation_every_ = result.check_every
        self.best_iteration_ = result.best_iteration
        self.n_iter_ = result.n_iter

    def planned_iterations(self) -> int:
        """Iterations (``"gd"``: at most; its stall rule usually stops far earlier) or epochs
        (``"paper"``) that ``fit`` runs unless stopped."""
        if self.max_iter is not None:
            return int(self.max_iter)
        return _solvers.GD_MAX_ITERATIONS if self.solver == "gd" else _PAPER_EPOCHS

    def rotation_module(self) -> nn.Sequential:
        """The fitted map as a torch module: ``module(x) == transform(x)`` on raw embeddings.

        ``module[0]`` centres, projects and rescales (fixed buffers, see
        :meth:`BaseQuantizer.preprocess_module`); ``module[1]`` is the
        :class:`~h2q.rotation.HouseholderRotation`, whose vectors can be fine-tuned inside a
        model.
        """
        self._check_fitted()
        vectors = torch.from_numpy(self.vectors_)
        rotation = HouseholderRotation(self.n_bits_, len(vectors), dtype=vectors.dtype)
        with torch.no_grad():
            rotation.vectors.copy_(vectors)
        return nn.Sequential(self.preprocess_module(), rotation)
