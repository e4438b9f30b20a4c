"""Helpers shared by the stage-2 commands (``fit``, ``encode``, ``search``, ``evaluate``).

They live here, apart from the command modules, so that :mod:`h2q.cli.quantize` and
:mod:`h2q.cli._evaluate` both import them and neither imports the other.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._io import numpy_read_error
from .._validation import check_embeddings
from ..embeddings import FOLDS, load_embeddings
from ..exceptions import FileFormatError
from ..quantizers import H2Q, ITQ, QUANTIZERS, SIGN, BaseQuantizer
from ..quantizers import LOSSES as _REGISTRY_LOSSES
from ..quantizers import SOLVERS as _REGISTRY_SOLVERS
from ..quantizers import make_quantizer as registry_make_quantizer
from ._errors import UsageError, user_input

#: Method names of the CLI (the quantizer registry's), in the order of the evaluation table.
METHODS = tuple(QUANTIZERS)
#: Stage-2 loss and solver names (the quantizer registry's), for ``--loss`` and ``--solver``.
LOSSES = tuple(_REGISTRY_LOSSES)
SOLVERS = tuple(_REGISTRY_SOLVERS)


def make_quantizer(
    method: str,
    n_bits: int | None,
    *,
    pca: bool = False,
    center: bool = False,
    seed: int = 0,
    loss: str | None = None,
    solver: str | None = None,
    max_iter: int | None = None,
) -> BaseQuantizer:
    """The quantizer behind a CLI method name (a key of :data:`METHODS`), built by the
    quantizer registry; options left out keep the class's defaults."""
    if method != H2Q and (loss is not None or solver is not None):
        option = "--loss" if loss is not None else "--solver"
        raise ValueError(f"{option} applies only to --method {H2Q}, not to --method {method}.")
    if max_iter is not None and max_iter < 1:
        raise ValueError(f"--max-iter must be a positive integer, got {max_iter}.")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if method == SIGN and max_iter is not None:
        raise ValueError(f"--max-iter applies to --method {H2Q} or {ITQ}, not to {SIGN}.")
    options = {"projection": "pca" if pca else None, "center": center}
    if method != SIGN:
        options["random_state"] = seed
    given = {"loss": loss, "solver": solver, "max_iter": max_iter}
    options.update({name: value for name, value in given.items() if value is not None})
    return registry_make_quantizer(method, n_bits, **options)


def check_bits(bits: int | None, width: int, source: str, *, pca: bool) -> None:
    """Validate ``--bits`` against the embedding width (PCA needed when narrower)."""
    if bits is None:
        return
    if bits < 1:
        raise ValueError(f"--bits must be a positive integer, got {bits}.")
    if bits > width:
        raise ValueError(
            f"--bits {bits} is larger than the embedding width {width} of {source}: a "
            f"rotation cannot make more bits than dimensions. Use --bits <= {width}, or train "
            f"the embedding model with {bits} outputs."
        )
    if bits < width and not pca:
        raise ValueError(
            f"--bits {bits} is smaller than the embedding width {width} of {source}. Add --pca "
            f"to project to {bits} dimensions first, or train the embedding model with {bits} "
            "outputs (the paper's setting)."
        )


def embeddings(X: Any, what: str) -> np.ndarray:
    """``check_embeddings`` for a matrix read from a file: a bad dtype is a user error."""
    with user_input():
        return check_embeddings(X, what, allow_torch=False)


def load_matrix(
    path: str | os.PathLike, fold: str | None, what: str, *, fold_option: str | None = None
) -> np.ndarray:
    """A float matrix from a ``.npy`` file, or fold ``fold`` of an embeddings ``.npz``.

    With a ``.npz`` and no ``fold``, the file must hold exactly one fold. ``fold_option``
    names the command's option that picks a fold (``"--fold"``), or None when the command
    has none: the error then asks for a one-matrix file instead.
    """
    path = Path(path)
    if path.suffix == ".npy":
        if fold is not None:
            raise ValueError(
                f"--fold {fold} applies to an embeddings .npz, but {path} is a .npy matrix; "
                "drop --fold."
            )
        data = load_embeddings(path)
        key = "train"
    else:
        data = load_embeddings(path)
        present = [f for f in FOLDS if data.get(f) is not None]
        if fold is None:
            if len(present) != 1 and fold_option is not None:
                raise ValueError(
                    f"{path} holds the folds {present}; choose one with {fold_option} "
                    f"({'|'.join(FOLDS)})."
                )
            if len(present) != 1:
                raise ValueError(
                    f"{what} {path} holds the folds {present}, but one matrix is expected here; "
                    "pass a .npy of the fold you want (numpy.save('x.npy', numpy.load(path)"
                    "[fold])) or an .npz with one fold."
                )
            fold = present[0]
        if fold not in FOLDS or data.get(fold) is None:
            raise ValueError(
                f"{path} has no fold {fold!r} (it holds {sorted(data.keys())}); pass "
                f"{fold_option or '--fold'} with one of {present}."
            )
        key = fold
    return embeddings(data.get(key), f"{what} ({path.name}:{key})")


def load_codes(path: str | os.PathLike, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Packed codes, and the features stored beside them when there are any.

    ``path`` is a ``.npy`` of packed ``uint8`` codes of shape (n, n_bytes), or a ``.npz``
    written by ``h2q encode`` with ``codes`` and, optionally, ``features`` of shape
    (n, n_features).
    """
    path = Path(path)
    hint = "Pass a file written by `h2q encode`."
    if not path.is_file():
        raise FileNotFoundError(f"no such codes file: {path}. {hint}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                arrays = {name: loaded[name] for name in loaded.files}
        else:
            arrays = {"codes": loaded}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        message = numpy_read_error(path, exc, f"{path} is not a readable numpy file")
        raise FileFormatError(f"{message} {hint}") from exc
    if "codes" not in arrays:
        raise ValueError(f"{what} {path} holds {sorted(arrays)} but no 'codes'. {hint}")
    codes, features = arrays["codes"], arrays.get("features")
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8 or codes.ndim != 2:
        shape = getattr(codes, "shape", "?")
        dtype = getattr(codes, "dtype", type(codes).__name__)
        raise ValueError(
            f"{what} {path} holds {dtype} of shape {shape}, but packed binary codes (uint8, "
            "shape (n, n_bits / 8)) are expected. Encode embeddings first with `h2q encode`."
        )
    if len(codes) == 0 or codes.shape[1] == 0:
        raise ValueError(f"{what} {path} is empty (shape {codes.shape}).")
    if features is not None:
        features = embeddings(features, f"{what} features ({path.name}:features)")
        if len(features) != len(codes):
            raise ValueError(
                f"{what} {path} holds {len(codes)} codes but {len(features)} feature rows; "
                "re-create it with `h2q encode`."
            )
    return codes, features


def check_k_fits(k: int, ntotal: int) -> None:
    """Refuse a ``k`` larger than the searched collection: the one rule of every CLI search.

    The library's indexes pad such rows with id -1 and distance ``np.iinfo(np.int32).max``
    (faiss's rule); a command never hands the user padding they did not ask for.

    Raises
    ------
    UsageError
        ``k=<k> exceeds the <n> items in the index; pass -k <= <n>.``
    """
    if k > ntotal:
        raise UsageError(f"k={k} exceeds the {ntotal} items in the index; pass -k <= {ntotal}.")


def fit_progress_bar(method: str, quantizer: BaseQuantizer, disable: bool) -> Any:
    """A tqdm bar driven by the quantizer's fit callback (None when it has no callback)."""
    import inspect

    from tqdm.auto import tqdm

    if disable or "callback" not in inspect.signature(quantizer.fit).parameters:
        return None
    planned = getattr(quantizer, "planned_iterations", None)
    return tqdm(
        total=planned() if callable(planned) else None,
        desc=f"fit {method}",
        unit="it",
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), when known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(n_bytes: int, what: str, fix: str) -> None:
    """Refuse, before the work starts, an allocation larger than the available memory."""
    available = available_memory()
    if available is not None and n_bytes > available:
        raise UsageError(
            f"{what} needs {n_bytes / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB "
            f"of memory available. {fix}"
        )
