"""The estimator protocol shared by every quantizer.

A quantizer maps embeddings ``X`` of shape (n_samples, n_features) to ``n_bits``-bit codes:

1. optional centring: subtract the training mean ``mean_`` (``center=True``, or always with
   PCA);
2. optional PCA projection to ``n_bits`` dimensions (``projection="pca"``; not in the paper,
   which assumes ``n_features == n_bits``; this is what PCA-ITQ does for wider embeddings);
3. rescaling of each row to norm ``sqrt(n_bits)`` (``rescale=True``; the paper's stage 2);
4. an orthogonal rotation ``rotation_`` learned by ``fit`` (identity for :class:`SignQuantizer`);
5. ``bit = 1 where the rotated value >= 0``, packed as in :mod:`h2q.codes`.

``transform`` returns step 4's floats (numpy in, numpy out; torch in, torch out on the same
device); ``encode`` returns packed ``uint8`` codes. Both go through one routine, so
``encode(X)`` is exactly the packed ``transform(X) >= 0``. Rows are divided by their largest
|entry| before any norm, so every finite non-zero row works, whatever its magnitude. torch
``float16``/``bfloat16`` inputs are computed in ``float32``.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import _io
from .._threads import check_n_threads, resolve_n_threads, thread_limit
from .._validation import (
    ArrayLike,
    check_bool,
    check_device,
    check_embeddings,
    check_random_state,
    is_tensor,
    raise_zero_rows,
)
from ..codes import encode_sign
from ..exceptions import NotFittedError
from ._apply import FittedState, encode_rows, transform_rows
from .objectives import get_objective

_FILE_VERSION = 1
_PROJECTIONS = (None, "pca")
#: Rows per chunk of transform/encode: about 16 MiB of float32 work per chunk (as encode_sign).
_CHUNK_BYTES = 1 << 24
#: Multiply-adds of one pass over the data (n_samples * n_features * n_bits) below which the
#: quantizer runs on one thread when ``n_threads=None`` and ``H2Q_NUM_THREADS`` is unset.
#: Measured (python benchmarks/bench_threads_stage2.py -> benchmarks/results/threads_stage2.md)
#: on 2 cores shared with other jobs (load average 15-19): one thread won at every size tried,
#: H²Q fits 7.5-60x and ITQ fits 9-12x faster than two threads, from 5,000 x 16 (1.3e6) up to
#: 6,000 x 384 (8.9e8), and one 384 x 384 SVD 19x (0.18 s vs 3.4 s). Two threads paid off
#: nowhere there; above this bound (untested here) the libraries' default is left, for big
#: problems on machines with idle cores.
SMALL_PROBLEM_MACS = 1 << 30


def auto_threads(n_samples: int, n_features: int, n_bits: int) -> int | None:
    """Thread count for ``n_threads=None``: one thread for small problems, else the default.

    Stage 2 works on matrices of n_bits x n_bits (the rotation, its SVD or WY product) and on
    batches of rows; below about 1e9 multiply-adds per pass over the data, extra threads pay
    their wake-up cost on every small BLAS call and lose badly as soon as another job uses the
    cores (the issue measured 0.04 s on one thread against 0.3-29 s on two for the digits
    embeddings, and 0.15 s against 5.5 s for one 384 x 384 SVD; see ``SMALL_PROBLEM_MACS``
    and ``benchmarks/results/threads_stage2.md`` for the measurement behind the bound).
    """
    if n_samples * n_features * max(n_bits, 1) < SMALL_PROBLEM_MACS:
        return 1
    return None


class BaseQuantizer:
    """Common machinery: validation, centring, projection, rescaling, transform, encode,
    persistence, and the scikit-learn parameter protocol.

    Subclasses implement ``_fit_rotation(Z, Z_val)`` on preprocessed torch tensors and set
    ``rotation_`` (a numpy array of shape (n_bits, n_bits)) plus their own fitted attributes,
    and may extend ``_check_params``.
    """

    #: fitted array attributes saved by :meth:`save` (besides rotation_, mean_, components_)
    _fitted_arrays: tuple[str, ...] = ()
    #: fitted scalar attributes saved by :meth:`save`
    _fitted_scalars: tuple[str, ...] = ()
    #: values of parameters added after the file format's first release, for older files
    _legacy_params: dict[str, Any] = {"center": False, "n_threads": None}

    # -- parameters (scikit-learn protocol) ----------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as a dict (``deep`` is accepted for scikit-learn; a
        quantizer holds no nested estimators)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseQuantizer:
        """Set constructor arguments by name; returns ``self``. Takes effect at the next fit."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{name!r} is not a parameter of {type(self).__name__}; valid parameters "
                    f"are {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "rotation_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's description of this estimator (an unsupervised transformer);
        called only by scikit-learn, so importing it here adds no dependency."""
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
        )

    def _check_params(self) -> None:
        """Validate the constructor arguments (called by ``fit``, before any work)."""
        if self.projection not in _PROJECTIONS:
            raise ValueError(f"projection must be None or 'pca', got {self.projection!r}.")
        check_bool(self.rescale, "rescale")
        check_bool(self.center, "center")
        check_n_threads(self.n_threads)
        check_device(getattr(self, "device", None))

    # -- fitting ------------------------------------------------------------------------
    def fit(
        self, X: ArrayLike, y: Any = None, *, X_val: ArrayLike | None = None, **fit_kw: Any
    ) -> BaseQuantizer:
        """Learn the centre, the projection (if any) and the rotation from embeddings ``X``.

        When the fit fails (bad input or parameters, an interrupt), the fitted state of a
        previous fit is kept unchanged.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features), float
            Training embeddings (torch ``float16``/``bfloat16`` are computed in ``float32``).
        y : ignored
            Accepted for scikit-learn pipelines; the quantizers are unsupervised.
        X_val : array or tensor of shape (n_val, n_features), float, optional
            Validation embeddings; quantizers that select an iterate use their loss.

        Returns
        -------
        self
        """
        _reject_positional_validation(X, y)
        previous = {k: v for k, v in vars(self).items() if _is_fitted_name(k)}
        for name in previous:
            delattr(self, name)
        try:
            self._check_params()
            X = _as_compute(check_embeddings(X, "X"))
            n_bits = self._resolve_n_bits(X.shape[1])
            if X_val is not None:
                X_val = _as_compute(check_embeddings(X_val, "X_val", n_features=X.shape[1]))
            with thread_limit(self._thread_count(X.shape[0], X.shape[1], n_bits)):
                self._fit(X, X_val, n_bits, **fit_kw)
        except BaseException:
            for name in [k for k in vars(self) if _is_fitted_name(k)]:
                delattr(self, name)
            vars(self).update(previous)
            raise
        return self

    def _fit(self, X: Any, X_val: Any, n_bits: int, **fit_kw: Any) -> None:
        device = torch.device(self._device_for(X))
        Xt = _as_tensor(X, device)
        self.n_features_in_ = X.shape[1]
        self.n_bits_ = n_bits
        self.mean_ = self.components_ = None
        if self.projection == "pca":
            if X.shape[0] < 2:
                raise ValueError("PCA needs at least 2 samples in X; pass more embeddings.")
            self.mean_, self.components_ = _fit_pca(Xt, n_bits)
        elif self.center:
            self.mean_ = _mean(Xt)
        Z = self._preprocess(Xt, "X")
        Z_val = None if X_val is None else self._preprocess(_as_tensor(X_val, device), "X_val")
        self._fit_rotation(Z, Z_val, **fit_kw)

    def fit_transform(self, X: ArrayLike, y: Any = None, **fit_params: Any) -> Any:
        """``fit(X, **fit_params).transform(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def _thread_count(self, n_samples: int, n_features: int, n_bits: int) -> int | None:
        n = resolve_n_threads(self.n_threads)
        return n if n is not None else auto_threads(n_samples, n_features, n_bits)

    def _transform_threads(self, n_samples: int, n_features: int) -> Any:
        """The thread limit of transform/encode: ``n_threads`` or ``H2Q_NUM_THREADS`` when set,
        else none. Note: unlike a fit (many small products, see :func:`auto_threads`), they
        make one large product per chunk, as numpy's own ``X @ R.T`` does with the BLAS
        library's default threads (benchmarks/bench_encode.py compares them), and setting a
        limit costs milliseconds (threadpoolctl scans the loaded libraries)."""
        n = resolve_n_threads(self.n_threads)
        return nullcontext() if n is None else thread_limit(n)

    def _seed(self) -> int:
        """The integer seed of this fit (a fresh random one for ``random_state=None``)."""
        return check_random_state(self.random_state)

    def _device_for(self, X: Any) -> str | torch.device:
        device = getattr(self, "device", None)
        if device is not None:
            return device
        return X.device if is_tensor(X) else "cpu"

    def _resolve_n_bits(self, n_features: int) -> int:
        n_bits = self.n_bits
        if n_bits is None:
            return n_features
        if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer or None, got {n_bits!r}.")
        if n_bits > n_features:
            raise ValueError(
                f"n_bits={n_bits} is larger than the embedding width {n_features}: a rotation "
                f"cannot make more bits than dimensions. Use n_bits <= {n_features}, or train "
                f"the embedding model with {n_bits} outputs."
            )
        if n_bits < n_features and self.projection is None:
            raise ValueError(
                f"n_bits={n_bits} is smaller than the embedding width {n_features}. Pass "
                f"projection='pca' to project to {n_bits} dimensions first, or train the "
                f"embedding model with {n_bits} outputs (the paper's setting)."
            )
        return int(n_bits)

    def _fit_rotation(self, Z: torch.Tensor, Z_val: torch.Tensor | None, **kw: Any) -> None:
        raise NotImplementedError

    # -- using a fitted quantizer --------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "rotation_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(X) first, or load a "
                f"fitted one with {type(self).__name__}.load(path)."
            )

    def _project(self, X: torch.Tensor) -> torch.Tensor:
        """Centre and project (steps 1-2) a compute-dtype tensor."""
        if self.mean_ is not None:
            X = X - torch.as_tensor(self.mean_, dtype=X.dtype, device=X.device)
        if self.components_ is not None:
            X = X @ torch.as_tensor(self.components_, dtype=X.dtype, device=X.device).T
        return X

    def _preprocess(self, X: torch.Tensor, name: str) -> torch.Tensor:
        """Steps 1-3: centre, project, and rescale rows to norm sqrt(n_bits) (if rescale)."""
        X = self._project(X)
        if not self.rescale:
            return X
        Xs = _peak_scaled(X, name if self.mean_ is None else f"{name} minus the training mean")
        return Xs * (self.n_bits_**0.5 / torch.linalg.vector_norm(Xs, dim=1, keepdim=True))

    def _checked_input(self, X: ArrayLike) -> Any:
        """``X`` validated (finiteness is checked on the way, see :mod:`._apply`)."""
        self._check_fitted()
        on_cpu = not is_tensor(X) or X.device.type == "cpu"
        return _as_compute(
            check_embeddings(X, "X", n_features=self.n_features_in_, check_finite=not on_cpu)
        )

    def _cpu_state(self, dtype: Any) -> FittedState:
        return FittedState(self.rotation_, self.mean_, self.components_, self.rescale, dtype)

    def _zero_row_name(self) -> str:
        return "X" if self.mean_ is None else "X minus the training mean"

    def _rotated_chunks(self, X: Any) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(start, stop, rotated floats) per chunk of rows of a tensor on an accelerator."""
        Xt = X.detach()
        R = torch.as_tensor(self.rotation_, dtype=Xt.dtype, device=Xt.device)
        n, width = Xt.shape
        rows = max(64, _CHUNK_BYTES // (4 * max(width, self.n_bits_)))
        with self._transform_threads(n, width), torch.no_grad():
            for start in range(0, n, rows):
                stop = min(n, start + rows)
                P = self._project(Xt[start:stop])
                if not self.rescale:
                    yield start, stop, P @ R.T
                    continue
                # rotate the peak-scaled rows, then rescale: a positive factor per row keeps
                # the signs of the product that encode packs
                Ps = _peak_scaled(P, self._zero_row_name())
                scale = self.n_bits_**0.5 / torch.linalg.vector_norm(Ps, dim=1, keepdim=True)
                yield start, stop, (Ps @ R.T) * scale

    def transform(self, X: ArrayLike) -> np.ndarray | torch.Tensor:
        """Rotated floats of shape (n_samples, n_bits); their signs are the codes.

        Numpy in, numpy out; torch in, torch out on the input's device (``float16`` and
        ``bfloat16`` tensors give ``float32``).
        """
        X = self._checked_input(X)
        if is_tensor(X) and X.device.type != "cpu":
            parts = [Y for _, _, Y in self._rotated_chunks(X)]
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        rows = X.detach().numpy() if is_tensor(X) else X
        with self._transform_threads(*rows.shape):
            Y = transform_rows(rows, self._cpu_state(rows.dtype), self._zero_row_name())
        return torch.from_numpy(Y) if is_tensor(X) else Y

    def encode(self, X: ArrayLike) -> np.ndarray:
        """Packed binary codes, ``uint8`` of shape (n_samples, ceil(n_bits / 8)).

        Bit j of a code is 1 where the j-th value of ``transform(X)`` is >= 0, least
        significant bit first within a byte (faiss's layout). Memory stays bounded: rows are
        processed in chunks. On the CPU the rows are rotated and their signs packed without
        rescaling (a positive factor per row changes no sign), as fast as numpy's
        ``packbits((X @ R.T) >= 0)``.
        """
        X = self._checked_input(X)
        if is_tensor(X) and X.device.type != "cpu":
            out = np.empty((len(X), (self.n_bits_ + 7) // 8), dtype=np.uint8)
            for start, stop, Y in self._rotated_chunks(X):
                out[start:stop] = encode_sign(Y.cpu().numpy())
            return out
        rows = X.detach().numpy() if is_tensor(X) else X
        with self._transform_threads(*rows.shape):
            return encode_rows(rows, self._cpu_state(rows.dtype), self._zero_row_name())

    def quantization_loss(self, X: ArrayLike, loss: str = "l2") -> float:
        """Mean stage-2 loss (see :mod:`h2q.quantizers.objectives`) of the transformed ``X``."""
        Zr = self.transform(X)
        Zr = Zr if is_tensor(Zr) else torch.from_numpy(Zr)
        return float(get_objective(loss).value(Zr))

    def preprocess_module(self) -> nn.Module:
        """Steps 1-3 (centre, project, rescale) as a torch module with fixed buffers."""
        self._check_fitted()
        return Preprocess(self.mean_, self.components_, self.n_bits_ if self.rescale else None)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted quantizer to one ``.npz`` file, atomically (see :mod:`h2q._io`)."""
        self._check_fitted()
        arrays = {"rotation_": self.rotation_}
        for name in ("mean_", "components_", *self._fitted_arrays):
            value = getattr(self, name, None)
            if value is not None:
                arrays[name] = np.asarray(value)
        meta = {
            "params": self.get_params(),
            "fitted": {
                n: getattr(self, n) for n in ("n_features_in_", "n_bits_", *self._fitted_scalars)
            },
        }
        _io.save_state(path, type(self).__name__, _FILE_VERSION, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BaseQuantizer:
        """Read a quantizer written by :meth:`save`."""
        arrays, meta = _io.load_state(path, cls.__name__, _FILE_VERSION)
        if "center_" in arrays:  # written before centring moved ahead of the rescaling
            raise _io.FileFormatError(
                f"{path} holds an ITQQuantizer(center=True) from an older release, whose "
                "centring this release no longer applies. Refit and save it again."
            )
        return cls._from_state(arrays, meta)

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> BaseQuantizer:
        valid = cls._param_names()
        params = {k: v for k, v in cls._legacy_params.items() if k in valid}
        params.update(meta["params"])
        obj = cls(**params)
        for name, value in meta["fitted"].items():
            setattr(obj, name, value)
        obj.mean_ = obj.components_ = None
        for name, value in arrays.items():
            setattr(obj, name, value)
        for name in cls._fitted_arrays:
            if name in arrays and arrays[name].ndim == 1 and name.endswith("curve_"):
                setattr(obj, name, arrays[name].tolist())
        return obj


class Preprocess(nn.Module):
    """Centre, project and rescale rows, as a fitted quantizer does before its rotation.

    Parameters
    ----------
    mean : ndarray of shape (n_features,) or None
    components : ndarray of shape (n_bits, n_features) or None
    n_bits : int or None
        Rows are rescaled to norm ``sqrt(n_bits)``; None leaves them as they are.
    """

    def __init__(self, mean: Any, components: Any, n_bits: int | None) -> None:
        super().__init__()
        self.register_buffer("mean", None if mean is None else torch.as_tensor(mean))
        self.register_buffer(
            "components", None if components is None else torch.as_tensor(components)
        )
        self.n_bits = n_bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map raw embeddings (n, n_features) to the rotation's input (n, n_bits)."""
        if self.mean is not None:
            x = x - self.mean.to(x.dtype)
        if self.components is not None:
            x = x @ self.components.to(x.dtype).T
        if self.n_bits is None:
            return x
        xs = _peak_scaled(x, "x")
        return xs * (self.n_bits**0.5 / torch.linalg.vector_norm(xs, dim=1, keepdim=True))


def _is_fitted_name(name: str) -> bool:
    return name.endswith("_") and not name.startswith("_")


def _reject_positional_validation(X: Any, y: Any) -> None:
    """``fit(X, X_val)`` was the old signature; a float matrix as wide as X passed as ``y``
    is validation data given positionally: say so instead of silently ignoring it."""
    shape = getattr(y, "shape", None)
    kind = getattr(getattr(y, "dtype", None), "kind", None)
    if is_tensor(y):
        kind = "f" if y.is_floating_point() else "i"
    x_shape = getattr(X, "shape", None) or np.shape(X)
    if shape is not None and len(shape) == 2 and kind == "f" and shape[1:] == tuple(x_shape)[1:]:
        raise TypeError(
            "fit(X, y) takes no labels: the second positional argument looks like validation "
            "embeddings. Pass them by keyword: fit(X, X_val=X_val)."
        )


def _as_compute(X: Any) -> Any:
    """torch float16/bfloat16 -> float32 (their matrix products and norms are unsafe)."""
    if is_tensor(X) and X.dtype not in (torch.float32, torch.float64):
        return X.float()
    return X


def _as_tensor(X: np.ndarray | torch.Tensor, device: str | torch.device) -> torch.Tensor:
    if is_tensor(X):
        return X.detach().to(device)
    X = np.ascontiguousarray(X)
    if X.flags.writeable:
        return torch.from_numpy(X).to(device)
    # A read-only array (Arrow batches in Spark, np.load(mmap_mode="r")) is shared, not copied:
    # the quantizers never write into their input, so torch's warning about it does not apply.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(X).to(device)


def _peak_scaled(X: torch.Tensor, name: str) -> torch.Tensor:
    """Rows divided by their largest |entry| (so that entry becomes 1).

    Positive scaling keeps every sign, and the row norms of the result are safe from overflow
    (float32 rows with norm above ~1.8e19) and underflow (rows near 1e-30). Raises on an
    all-zero row, which has no direction.
    """
    peak = X.abs().amax(dim=1, keepdim=True)
    zero = peak[:, 0] == 0
    if bool(zero.any()):
        raise_zero_rows(zero.nonzero().flatten().tolist(), name)
    return X / peak


def _mean(X: torch.Tensor) -> np.ndarray:
    """Column mean, summed in float64 (no overflow or drift for large or long inputs)."""
    mean = X.to(torch.float64).mean(dim=0)
    return mean.cpu().numpy().astype(_numpy_dtype(X.dtype))


def _numpy_dtype(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32


def _fit_pca(X: torch.Tensor, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and the top principal directions (n_components, d), sign-normalised."""
    X64 = X.to(torch.float64)
    mean = X64.mean(dim=0)
    Xc = X64 - mean
    # scale first: the covariance of rows near 1e30 (or 1e-30) stays finite (non-zero)
    scale = Xc.abs().max().clamp_min(torch.finfo(torch.float64).tiny)
    Xc = Xc / scale
    cov = Xc.T @ Xc / max(len(X) - 1, 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    comps = vecs[:, -n_components:].flip(1).T.contiguous()
    # deterministic sign: the largest-magnitude entry of each direction is positive
    idx = comps.abs().argmax(dim=1)
    signs = torch.sign(comps[torch.arange(n_components), idx])
    comps = comps * signs[:, None]
    dtype = _numpy_dtype(X.dtype)
    return mean.cpu().numpy().astype(dtype), comps.cpu().numpy().astype(dtype)
