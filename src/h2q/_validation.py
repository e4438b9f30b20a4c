"""Input checks shared by every public entry point: one function per check.

Each check names what was expected, what came in, and how to fix it. They never copy data that
is already valid. Array checks come in two kinds, named for what they return:

- :func:`check_embeddings`, :func:`check_labels`: arrays of stored data (numpy, or a tensor
  converted to numpy; ``check_embeddings`` keeps a valid tensor when ``allow_torch``);
- :func:`check_embeddings_tensor`, :func:`check_labels_tensor`: a batch inside a torch
  computation (a loss), kept on its device, never synchronised for a finiteness check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

ArrayLike = Any  # numpy array, torch tensor, or anything np.asarray accepts


T = TypeVar("T")


def read_as(convert: Callable[[Any], T], value: Any, what: str, fix: str) -> T:
    """``convert(value)``; its failure (ragged lists and the like) becomes a ``TypeError``
    reading ``"{what} ({error}). {fix}"``."""
    try:
        return convert(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{what} ({exc}). {fix}") from exc


def is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def check_embeddings(
    X: ArrayLike,
    name: str = "X",
    *,
    n_features: int | None = None,
    min_samples: int = 1,
    allow_torch: bool = True,
    check_finite: bool = True,
) -> np.ndarray | torch.Tensor:
    """Validate a 2-D float matrix of embeddings, shape (n_samples, n_features).

    Returns a numpy array (float32 or float64) or, when ``allow_torch`` and the input is a
    tensor, the tensor itself (floating dtype, any device). ``check_finite=False`` skips the
    pass over the values that rejects NaN and inf (for callers that detect them on the way).
    """
    if is_tensor(X):
        if not allow_torch:
            X = X.detach().cpu().numpy()
        else:
            _check_dtype_kind(X.dtype.is_floating_point, str(X.dtype), name)
            _check_shape(tuple(X.shape), name, min_samples)
            if check_finite and not bool(torch.isfinite(X).all()):
                raise ValueError(_non_finite_message(name, int((~torch.isfinite(X)).sum())))
            _check_width(X.shape[1], name, n_features)
            return X
    if not isinstance(X, np.ndarray):
        X = read_as(
            np.asarray,
            X,
            f"{name} could not be read as a 2-D array",
            "Pass a numpy array or a torch tensor of shape (n_samples, n_features).",
        )
    _check_dtype_kind(X.dtype.kind == "f", str(X.dtype), name)
    _check_shape(X.shape, name, min_samples)
    if check_finite:
        finite = np.isfinite(X)
        if not finite.all():
            raise ValueError(_non_finite_message(name, int(X.size - finite.sum())))
    _check_width(X.shape[1], name, n_features)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)  # float16 and longdouble: compute in float32
    return X


def check_same_width(X: ArrayLike, name: str, width: int, reference: str) -> np.ndarray:
    """:func:`check_embeddings` (numpy out) of a fold that must be as wide as ``reference``."""
    X = check_embeddings(X, name, allow_torch=False)
    if X.shape[1] != width:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {reference} has {width}. Pass every fold "
            "from the same embedding model."
        )
    return X


def _check_dtype_kind(is_float: bool, dtype: str, name: str) -> None:
    if not is_float:
        raise TypeError(
            f"{name} has dtype {dtype}, but floating-point embeddings are expected. Convert "
            f"with {name}.astype(np.float32) (or .float() for a tensor); integer codes or "
            "labels are not embeddings."
        )


def _check_shape(shape: tuple[int, ...], name: str, min_samples: int) -> None:
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, n_features), got {len(shape)}-D shape "
            f"{shape}. Reshape with {name}.reshape(len({name}), -1) or, for one sample, "
            f"{name}[None, :]."
        )
    if shape[0] < min_samples:
        raise ValueError(
            f"{name} has {shape[0]} samples, but at least {min_samples} are needed. Pass a "
            "non-empty array."
        )
    if shape[1] == 0:
        raise ValueError(f"{name} has 0 features (shape {shape}); pass non-empty embeddings.")


def _check_width(width: int, name: str, n_features: int | None) -> None:
    if n_features is not None and width != n_features:
        raise ValueError(
            f"{name} has {width} features, but this quantizer was fitted with {n_features}. "
            "Refit, or pass embeddings from the same model."
        )


def _non_finite_message(name: str, count: int) -> str:
    return (
        f"{name} contains {count} NaN or infinite value(s). Embeddings must be finite: check "
        "the model that produced them (a diverged training run gives NaN), or drop the bad "
        "rows before fitting."
    )


def check_nonzero_rows(X: np.ndarray | torch.Tensor, name: str = "X") -> None:
    """Raise when a row has zero norm: it cannot be rescaled to norm sqrt(k).

    Tested on the largest |entry| of each row, not on the norm, whose squares underflow to 0
    for rows near 1e-30 (and overflow for float32 rows above ~1e19).
    """
    peaks = X.abs().amax(dim=1) if is_tensor(X) else np.abs(X).max(axis=1)
    zero = (peaks == 0).nonzero()
    zero = zero[0] if isinstance(zero, tuple) else zero.flatten()
    if len(zero):
        raise_zero_rows([int(i) for i in zero], name)


def raise_zero_rows(rows: list[int], name: str = "X") -> None:
    """Raise the error for all-zero rows ``rows`` (indices) of ``name``."""
    listed = ", ".join(str(int(i)) for i in rows[:5])
    more = "" if len(rows) <= 5 else f" and {len(rows) - 5} more"
    raise ValueError(
        f"{name} has {len(rows)} all-zero row(s) (rows {listed}{more}); they cannot be "
        "rescaled to norm sqrt(n_bits) and have no sign. Drop them, or check the model "
        "that produced them."
    )


def check_positive_int(
    value: Any, name: str, *, minimum: int = 1, allow_none: bool = False
) -> int | None:
    """Return ``value`` as an ``int`` >= ``minimum`` (1 by default); raise ``ValueError``.

    The one integer-count check of the package (bools are refused; numpy integers accepted).
    With ``allow_none``, None is valid and returned as is.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        or_none = " or None" if allow_none else ""
        if minimum == 1:
            raise ValueError(
                f"{name} must be a positive integer{or_none}, got {value!r} ({name} must be an "
                "integer >= 1)."
            )
        raise ValueError(f"{name} must be an integer >= {minimum}{or_none}, got {value!r}.")
    return int(value)


def check_labels(y: ArrayLike, n_samples: int, name: str = "y") -> np.ndarray:
    """Validate labels: class ids of shape (n,) or multi-hot of shape (n, n_classes)."""
    if is_tensor(y):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be class ids of shape (n_samples,) or multi-hot labels of shape "
            f"(n_samples, n_classes), got shape {y.shape}."
        )
    if len(y) != n_samples:
        raise ValueError(
            f"{name} has {len(y)} entries but there are {n_samples} samples; pass one label "
            "(row) per sample, in the same order."
        )
    if y.dtype.kind not in "biu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(
                f"{name} has dtype {y.dtype}; labels must be integer class ids or 0/1 "
                "multi-hot rows."
            )
    return y


def check_embeddings_tensor(
    embeddings: Any, *, n_bits: int | None = None, min_samples: int = 1
) -> torch.Tensor:
    """Validate a batch of network outputs: a floating tensor of shape (n_samples, n_bits).

    Finiteness is not checked: that would force a device synchronisation on every step. A
    non-finite input gives a non-finite loss.
    """
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(
            f"embeddings must be a torch.Tensor of shape (n_samples, n_bits), got "
            f"{type(embeddings).__name__}. Convert with torch.as_tensor(X, dtype=torch.float32)."
        )
    if not embeddings.is_floating_point():
        raise TypeError(
            f"embeddings have dtype {embeddings.dtype}, but a floating-point tensor is expected. "
            "Pass the raw network outputs (use .float() on integer data)."
        )
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be 2-D with shape (n_samples, n_bits), got shape "
            f"{tuple(embeddings.shape)}. Flatten the network output with "
            "embeddings.reshape(len(embeddings), -1)."
        )
    n, k = embeddings.shape
    if k == 0:
        raise ValueError(f"embeddings have 0 bits (shape {(n, k)}); pass non-empty outputs.")
    if n < min_samples:
        raise ValueError(
            f"embeddings have {n} sample(s), but this loss needs at least {min_samples} (a "
            "pair loss needs two samples to form a pair). Use a larger batch."
        )
    if n_bits is not None and k != n_bits:
        raise ValueError(
            f"embeddings have {k} bits, but this loss was built with n_bits={n_bits}. Build the "
            "loss with the width of the hash layer, or pass outputs from the matching model."
        )
    return embeddings


def check_labels_tensor(labels: Any, n_samples: int, device: torch.device) -> torch.Tensor:
    """Validate labels: class ids (n,) or multi-hot rows (n, n_classes); move to ``device``."""
    if not isinstance(labels, torch.Tensor):
        labels = read_as(
            torch.as_tensor,
            labels,
            "labels could not be read as a tensor",
            "Pass class ids of shape (n_samples,) or multi-hot rows of shape "
            "(n_samples, n_classes).",
        )
    if labels.ndim not in (1, 2):
        raise ValueError(
            f"labels must be class ids of shape (n_samples,) or multi-hot rows of shape "
            f"(n_samples, n_classes), got shape {tuple(labels.shape)}."
        )
    if labels.shape[0] != n_samples:
        raise ValueError(
            f"labels have {labels.shape[0]} entries but the embeddings have {n_samples} "
            "samples; pass one label (row) per sample, in the same order."
        )
    if labels.is_complex():
        raise TypeError(f"labels have dtype {labels.dtype}; use integer ids or 0/1 rows.")
    return labels.to(device)


def check_bool(value: Any, name: str) -> bool:
    """Validate a True/False option."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_real(
    value: Any, name: str, *, positive: bool = True, allow_none: bool = True
) -> float | None:
    """Validate a finite real number (> 0 when ``positive``), or None when allowed."""
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if ok and np.isfinite(value) and (value > 0 or not positive):
        return float(value)
    need = "a finite number > 0" if positive else "a finite number"
    none = " or None" if allow_none else ""
    raise ValueError(f"{name} must be {need}{none}, got {value!r}.")


def check_optional_int(value: Any, name: str, *, minimum: int = 1) -> int | None:
    """Validate None or an integer >= ``minimum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be None or an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_random_state(random_state: Any) -> int:
    """An integer seed from ``random_state``: an integer >= 0 as is; None draws a fresh one."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if (
        isinstance(random_state, bool)
        or not isinstance(random_state, (int, np.integer))
        or random_state < 0
    ):
        raise ValueError(
            f"random_state must be None or an integer >= 0, got {random_state!r}. Pass e.g. "
            "random_state=0 for repeatable results."
        )
    return int(random_state)


def check_device(device: Any) -> torch.device | None:
    """Validate a torch device name (None: follow the input); CUDA must be available."""
    if device is None:
        return None
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda[:i]'.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        # the wording of h2q.training.resolve_device, which the CLI reports
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available here.")
    return resolved


# --------------------------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------------------------
