"""Load what a server serves: from files, a stage-1 run folder, or a ``h2q reproduce`` folder.

- :func:`load_files`: one index from a quantizer (``h2q fit``) and encoded database
  (``h2q encode``), with labels and pictures when an embeddings file of a run is given;
- :func:`load_run`: a stage-1 run folder (``h2q train``): the sign of its embeddings
  (lambda = 0), ITQ and H²Q fitted at start on its train fold, side by side;
- :func:`load_results`: a results folder (``h2q reproduce``): the quantizers its cells kept for
  one lambda = 0 run (sign, ITQ, H²Q with each loss), side by side;
- :func:`load_folder`: either folder, told apart by its files.

Everything is read once; nothing is written.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..codes import check_codes
from ..embeddings import EmbeddingFolds, load_embeddings
from ..exceptions import FileFormatError
from .engine import Catalog, ServedIndex, build_index
from .items import ItemStore

__all__ = ["load_files", "load_folder", "load_results", "load_run", "served_rows"]

logger = logging.getLogger(__name__)


def served_rows() -> tuple[str, ...]:
    """The grid rows served for one stage-1 run (:func:`load_run`, the digits demo): the sign
    of its lambda = 0 embeddings, ITQ and H²Q (L2) on them."""
    from ..experiments.rows import BASELINE, H2Q_L2
    from ..quantizers import ITQ

    return (BASELINE, ITQ, H2Q_L2)


def _read_codes(path: Path) -> np.ndarray:
    """Packed codes from a ``.npy`` or the ``codes`` of a ``.npz`` of ``h2q encode``."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                codes = data["codes"]
        else:
            codes = data
    except KeyError:
        raise FileFormatError(
            f"{path} has no 'codes' array; pass the file `h2q encode --out` wrote."
        ) from None
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path} is not a .npy or .npz of codes ({exc}).") from None
    return check_codes(codes, str(path))


def _run_items(run_dir: Path, labels: np.ndarray | None, data_root: Any) -> ItemStore:
    """Labels, and the data set's items when the run folder names a loadable data set."""
    config_path, split_path = run_dir / "config.json", run_dir / "split.npz"
    if not (config_path.is_file() and split_path.is_file()):
        return ItemStore(labels=labels)
    from ..data import load_dataset, load_split

    config = json.loads(config_path.read_text())
    try:
        data = load_dataset(config["dataset"], root=data_root)
    except (OSError, ValueError, ImportError, KeyError) as exc:
        logger.warning("serving without pictures or texts: %s", " ".join(str(exc).split()))
        return ItemStore(labels=labels)
    split = load_split(split_path)
    if labels is not None and len(labels) != len(split.database):
        return ItemStore(labels=labels)
    return ItemStore(
        labels=labels if labels is not None else data.y[split.database],
        class_names=list(data.class_names),
        dataset=data,
        source_ids=np.asarray(split.database),
    )


def _database(embeddings: EmbeddingFolds, path: Path) -> np.ndarray:
    if embeddings.database is None:
        raise FileFormatError(
            f"{path} has no 'database' fold; pass the embeddings.npz of a stage-1 run."
        )
    return np.ascontiguousarray(embeddings.database, dtype=np.float32)


def load_files(
    quantizer: str | os.PathLike | None,
    database: str | os.PathLike | None,
    embeddings: str | os.PathLike | None = None,
    kind: str = "flat",
    data_root: Any = None,
) -> Catalog:
    """One index from the files of ``h2q fit`` and ``h2q encode`` (see the module notes).

    Parameters
    ----------
    quantizer : path-like, optional
        Fitted quantizer; without it, queries go by id or code only (not for asymmetric).
    database : path-like, optional
        Packed database codes (``.npy``, or ``.npz`` with ``codes``); when absent, the
        ``database`` fold of ``embeddings`` is encoded with the quantizer.
    embeddings : path-like, optional
        ``embeddings.npz`` of a stage-1 run: labels (``y_database``), float database vectors
        (asymmetric index), and pictures or texts when its folder holds the run's split.
    kind : {"flat", "mih", "asymmetric"}
    data_root : path-like, optional
        Data folder for :func:`h2q.data.load_dataset`.
    """
    from ..quantizers import load_quantizer

    q = None if quantizer is None else load_quantizer(quantizer)
    emb = None if embeddings is None else load_embeddings(embeddings)
    vectors = None if emb is None or emb.database is None else _database(emb, Path(embeddings))
    if database is not None:
        codes = _read_codes(Path(database))
    elif q is not None and vectors is not None:
        codes = q.encode(vectors)
    else:
        raise ValueError("pass --database CODES, or --quantizer with --embeddings to encode.")
    n_bits = int(q.n_bits_) if q is not None else 8 * codes.shape[1]
    if q is not None and codes.shape[1] != (n_bits + 7) // 8:
        raise ValueError(
            f"{database} holds {8 * codes.shape[1]}-bit codes, but the quantizer {quantizer} "
            f"makes {n_bits}-bit codes; pass the codes it encoded."
        )
    if kind == "asymmetric" and q is None:
        raise ValueError("--index asymmetric needs --quantizer.")
    labels = None if emb is None else emb.y_database
    if labels is not None and len(labels) != len(codes):
        raise ValueError(
            f"{embeddings} labels {len(labels)} database items, but {database} holds "
            f"{len(codes)} codes; pass files of the same database."
        )
    items = ItemStore(labels=labels)
    if embeddings is not None:
        items = _run_items(Path(embeddings).parent, labels, data_root)
    served = ServedIndex(
        name=Path(quantizer).stem if quantizer is not None else Path(database).stem,
        kind=kind,
        index=build_index(kind, q, codes, vectors, n_bits),
        n_bits=n_bits,
        codes=codes,
        quantizer=q,
        vectors=vectors,
        description=type(q).__name__ if q is not None else "codes",
    )
    return Catalog({served.name: served}, items, title=f"h2q search: {served.name}")


def _serve_quantizers(
    quantizers: dict[str, Any], X_db: np.ndarray, kind: str, items: ItemStore
) -> dict[str, ServedIndex]:
    from ..experiments.rows import ROW_BY_KEY

    out = {}
    for name, q in quantizers.items():
        codes = q.encode(X_db)
        out[name] = ServedIndex(
            name=name,
            kind=kind,
            index=build_index(kind, q, codes, X_db, int(q.n_bits_)),
            n_bits=int(q.n_bits_),
            codes=codes,
            quantizer=q,
            vectors=X_db,
            description=ROW_BY_KEY[name].description if name in ROW_BY_KEY else name,
        )
    return out


def load_run(run_dir: str | os.PathLike, kind: str = "flat", data_root: Any = None) -> Catalog:
    """A stage-1 run folder: sign, ITQ and H²Q (L2) fitted on its train fold at start."""
    from ..experiments.rows import ROW_BY_KEY

    run = Path(run_dir)
    emb = load_embeddings(run / "embeddings.npz", required=("train", "database"))
    X_train = np.asarray(emb.train, dtype=np.float32)
    n_bits = X_train.shape[1]
    quantizers = {row: ROW_BY_KEY[row].make_quantizer(n_bits=n_bits) for row in served_rows()}
    for q in quantizers.values():
        q.fit(X_train)
    items = _run_items(run, emb.y_database, data_root)
    X_db = _database(emb, run / "embeddings.npz")
    indexes = _serve_quantizers(quantizers, X_db, kind, items)
    return Catalog(indexes, items, title=f"h2q search: {run.name} ({n_bits} bits)")


def _pick_run(grid: dict[str, Any], method: str | None, bits: int | None, seed: int | None):
    config = grid["config"]
    method = method or config["methods"][0]
    bits = bits if bits is not None else max(config["bits"])
    seed = seed if seed is not None else config["seeds"][0]
    return method, bits, seed


def load_results(
    results_dir: str | os.PathLike,
    method: str | None = None,
    bits: int | None = None,
    seed: int | None = None,
    kind: str = "flat",
    data_root: Any = None,
) -> Catalog:
    """A ``h2q reproduce`` folder: the kept quantizers of one lambda = 0 run, side by side.

    ``method``, ``bits`` and ``seed`` pick the run (default: the grid's first method, its
    largest code length, its first seed).
    """
    from ..experiments.records import Stage1Run, safe_name
    from ..experiments.rows import rows_reading
    from ..losses import LAMBDA0
    from ..quantizers import load_quantizer

    root = Path(results_dir)
    grid = json.loads((root / "grid.json").read_text())
    method, bits, seed = _pick_run(grid, method, bits, seed)
    run_dir = root / "runs" / Stage1Run(method, LAMBDA0, None, bits, seed).relpath
    if not (run_dir / "embeddings.npz").is_file():
        raise FileNotFoundError(
            f"{root} has no finished lambda = 0 run for {method}, {bits} bits, seed {seed} "
            f"({run_dir} has no embeddings.npz); pick another with --method/--bits/--seed."
        )
    cells = root / "cells" / safe_name(method)
    quantizers = {}
    for row in rows_reading(LAMBDA0):
        path = cells / row / f"b{bits}-s{seed}.quantizer.npz"
        if path.is_file():
            quantizers[row] = load_quantizer(path)
    if not quantizers:
        raise FileNotFoundError(
            f"{cells} holds no kept quantizer for {bits} bits, seed {seed}; finish the grid "
            "with `h2q reproduce` (it keeps one per cell)."
        )
    emb = load_embeddings(run_dir / "embeddings.npz", required=("database",))
    items = _run_items(run_dir, emb.y_database, data_root)
    indexes = _serve_quantizers(quantizers, _database(emb, run_dir), kind, items)
    title = f"h2q search: {grid['config'].get('dataset', '')} {method}, {bits} bits"
    return Catalog(indexes, items, title=title)


def load_folder(path: str | os.PathLike, **options: Any) -> Catalog:
    """:func:`load_results` for a folder with ``grid.json``, :func:`load_run` for a run."""
    folder = Path(path)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; pass a run or results folder.")
    if (folder / "grid.json").is_file():
        return load_results(folder, **options)
    if (folder / "embeddings.npz").is_file():
        extra = {
            k: v for k, v in options.items() if v is not None and k in ("method", "bits", "seed")
        }
        if extra:
            raise ValueError(
                f"--{next(iter(extra))} picks a run of a results folder; {folder} is one run."
            )
        return load_run(
            folder, kind=options.get("kind", "flat"), data_root=options.get("data_root")
        )
    raise FileNotFoundError(
        f"{folder} holds neither grid.json (a `h2q reproduce` folder) nor embeddings.npz (a "
        "`h2q train` run); pass one of those."
    )
