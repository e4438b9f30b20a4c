"""The estimator protocol shared by every quantizer.

A quantizer maps embeddings ``X`` of shape (n_samples, n_features) to ``n_bits``-bit codes:

1. optional PCA projection to ``n_bits`` dimensions (``projection="pca"``; not in the paper,
   which assumes ``n_features == n_bits``; this is what PCA-ITQ does for wider embeddings);
2. rescaling of each row to norm ``sqrt(n_bits)`` (``rescale=True``; the paper's stage 2);
3. an orthogonal rotation ``rotation_`` learned by ``fit`` (identity for :class:`SignQuantizer`);
4. ``bit = 1 where the rotated value >= 0``, packed as in :mod:`h2q.codes`.

``transform`` returns step 3's floats (numpy in, numpy out; torch in, torch out on the same
device); ``encode`` returns packed ``uint8`` codes.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import torch

from .. import _io
from .._validation import ArrayLike, check_embeddings, check_nonzero_rows, is_tensor
from ..codes import encode_sign
from ..exceptions import NotFittedError
from .objectives import get_objective

_FILE_VERSION = 1
_PROJECTIONS = (None, "pca")


class BaseQuantizer:
    """Common machinery: validation, projection, rescaling, transform, encode, persistence.

    Subclasses implement ``_fit_rotation(Z, Z_val)`` on preprocessed torch tensors and set
    ``rotation_`` (a numpy array of shape (n_bits, n_bits)) plus their own fitted attributes.
    """

    #: fitted array attributes saved by :meth:`save` (besides rotation_, mean_, components_)
    _fitted_arrays: tuple[str, ...] = ()
    #: fitted scalar attributes saved by :meth:`save`
    _fitted_scalars: tuple[str, ...] = ()

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X: ArrayLike, X_val: ArrayLike | None = None, **fit_kw: Any) -> BaseQuantizer:
        """Learn the projection (if any) and the rotation from embeddings ``X``.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features), float
            Training embeddings.
        X_val : array or tensor of shape (n_val, n_features), float, optional
            Validation embeddings; quantizers that select an iterate use their loss.

        Returns
        -------
        self
        """
        if self.projection not in _PROJECTIONS:
            raise ValueError(f"projection must be None or 'pca', got {self.projection!r}.")
        X = check_embeddings(X, "X")
        n_features = X.shape[1]
        n_bits = self._resolve_n_bits(n_features)
        if X_val is not None:
            X_val = check_embeddings(X_val, "X_val", n_features=n_features)
        device = torch.device(self._device_for(X))
        Xt = _as_tensor(X, device)
        self.n_features_in_ = n_features
        self.n_bits_ = n_bits
        if self.projection == "pca":
            if X.shape[0] < 2:
                raise ValueError("PCA needs at least 2 samples in X; pass more embeddings.")
            self.mean_, self.components_ = _fit_pca(Xt, n_bits)
        else:
            self.mean_ = self.components_ = None
        Z = self._preprocess(Xt, "X")
        Z_val = None if X_val is None else self._preprocess(_as_tensor(X_val, device), "X_val")
        self._fit_rotation(Z, Z_val, **fit_kw)
        return self

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

    def _preprocess(self, X: torch.Tensor, name: str) -> torch.Tensor:
        """Project (if PCA) and rescale rows to norm sqrt(n_bits) (if rescale)."""
        if self.components_ is not None:
            mean = torch.as_tensor(self.mean_, dtype=X.dtype, device=X.device)
            comps = torch.as_tensor(self.components_, dtype=X.dtype, device=X.device)
            X = (X - mean) @ comps.T
        if self.rescale:
            check_nonzero_rows(X, name)
            X = X * (self.n_bits_**0.5 / torch.linalg.vector_norm(X, dim=1, keepdim=True))
        return X

    def transform(self, X: ArrayLike) -> np.ndarray | torch.Tensor:
        """Rotated floats of shape (n_samples, n_bits); their signs are the codes.

        Numpy in, numpy out; torch in, torch out on the input's device and dtype.
        """
        self._check_fitted()
        X = check_embeddings(X, "X", n_features=self.n_features_in_)
        Xt = _as_tensor(X, X.device if is_tensor(X) else "cpu")
        R = torch.as_tensor(self.rotation_, dtype=Xt.dtype, device=Xt.device)
        out = self._preprocess(Xt, "X") @ R.T
        return out if is_tensor(X) else out.numpy()

    def encode(self, X: ArrayLike) -> np.ndarray:
        """Packed binary codes, ``uint8`` of shape (n_samples, ceil(n_bits / 8)).

        Bit j of a code is 1 where the j-th rotated value is >= 0, least significant bit first
        within a byte (faiss's layout). Rescaling changes no sign, so it is skipped here.
        """
        self._check_fitted()
        X = check_embeddings(X, "X", n_features=self.n_features_in_)
        if is_tensor(X):
            Xt = X
            R = torch.as_tensor(self.rotation_, dtype=X.dtype, device=X.device)
            if self.components_ is not None:
                mean = torch.as_tensor(self.mean_, dtype=X.dtype, device=X.device)
                comps = torch.as_tensor(self.components_, dtype=X.dtype, device=X.device)
                Xt = (Xt - mean) @ comps.T
            return encode_sign((Xt @ R.T).detach().cpu().numpy())
        R = self.rotation_.astype(X.dtype, copy=False)
        if self.components_ is not None:
            # project first: the projected matrix is narrower than X (n_bits < n_features)
            X = (X - self.mean_.astype(X.dtype)) @ self.components_.astype(X.dtype).T
        return encode_sign(X, rotation=R)

    def quantization_loss(self, X: ArrayLike, loss: str = "l2") -> float:
        """Mean stage-2 loss (see :mod:`h2q.quantizers.objectives`) of the transformed ``X``."""
        Zr = self.transform(X)
        Zr = Zr if is_tensor(Zr) else torch.from_numpy(Zr)
        return float(get_objective(loss).value(Zr))

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
        return cls._from_state(arrays, meta)

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> BaseQuantizer:
        obj = cls(**meta["params"])
        for name, value in meta["fitted"].items():
            setattr(obj, name, value)
        obj.mean_ = obj.components_ = None
        for name, value in arrays.items():
            setattr(obj, name, value)
        for name in cls._fitted_arrays:
            if name in arrays and arrays[name].ndim == 1 and name.endswith("curve_"):
                setattr(obj, name, arrays[name].tolist())
        return obj


def _as_tensor(X: np.ndarray | torch.Tensor, device: str | torch.device) -> torch.Tensor:
    if is_tensor(X):
        return X.detach().to(device)
    return torch.from_numpy(np.ascontiguousarray(X)).to(device)


def _fit_pca(X: torch.Tensor, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and the top principal directions (n_components, d), sign-normalised."""
    X64 = X.to(torch.float64)
    mean = X64.mean(dim=0)
    Xc = X64 - mean
    cov = Xc.T @ Xc / max(len(X) - 1, 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    comps = vecs[:, -n_components:].flip(1).T.contiguous()
    # deterministic sign: the largest-magnitude entry of each direction is positive
    idx = comps.abs().argmax(dim=1)
    signs = torch.sign(comps[torch.arange(n_components), idx])
    comps = comps * signs[:, None]
    dtype = np.float32 if X.dtype == torch.float32 else np.float64
    return mean.cpu().numpy().astype(dtype), comps.cpu().numpy().astype(dtype)


def load_quantizer(path: str | os.PathLike) -> BaseQuantizer:
    """Read any quantizer written by ``save``, whatever its class."""
    from . import QUANTIZERS

    kind = _io.read_kind(path)
    if kind not in QUANTIZERS:
        raise _io.FileFormatError(
            f"{path} holds a {kind}, not a quantizer; load it with the matching class."
        )
    return QUANTIZERS[kind].load(path)
