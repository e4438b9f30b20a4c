"""``h2q embed``: sentence embeddings of a text data set (or a text file) as an embeddings file.

::

    h2q embed --dataset wordnet --out wordnet-minilm.npz            # all-MiniLM-L6-v2
    h2q embed --dataset wordnet --model ./my-model --out wordnet-my.npz --threads 1
    h2q embed --texts sentences.txt --out sentences.npz             # one text per line

With ``--dataset`` the file holds the four folds of the data set's split scheme (``train``,
``val``, ``query``, ``database`` with their labels ``y_<fold>``: the layout of
:mod:`h2q.embeddings`, which ``h2q fit`` and ``h2q evaluate`` read). With ``--texts`` it holds
one fold, ``train`` (unlabelled), in the file's order. The embeddings are computed in chunks
cached under ``--cache-dir``, so an interrupted run resumes and a repeated one is instant.
Needs the ``text`` extra (``pip install 'h2q[text]'``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write
from ._args import add_threads_option, positive_int
from ._paths import add_force_option, check_outputs

_FOLDS = ("train", "val", "query", "database")


def register(subparsers: Any) -> None:
    """Add ``embed`` to the ``h2q`` parser."""
    p = subparsers.add_parser(
        "embed",
        help="embed a text data set or file with a sentence encoder (all-MiniLM-L6-v2)",
        description="Embed texts with a local sentence-transformers model (default "
        "all-MiniLM-L6-v2 from the text extra) and write an embeddings .npz.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="text data set name (wordnet, wordnet-nouns)")
    source.add_argument(
        "--texts",
        help="UTF-8 text file, one text per line: lines end at \\n (or \\r\\n) only (no labels)",
    )
    p.add_argument("--out", required=True, help="output embeddings file (.npz)")
    p.add_argument("--root", default=None, help="data folder (default: the data set's own)")
    p.add_argument(
        "--model", default=None, help="local model directory (default: all-MiniLM-L6-v2)"
    )
    p.add_argument("--scheme", default=None, help="split scheme name (default: the data set's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    p.add_argument("--max-database", type=positive_int, default=None, help="cap the database")
    p.add_argument("--batch-size", type=positive_int, default=64, help="texts per batch (64)")
    p.add_argument(
        "--cache-dir", default=None, help="chunk cache folder (default ~/.cache/h2q/text)"
    )
    add_threads_option(p, None, "the sentence encoder uses torch's threads")
    p.add_argument("--split-out", default=None, help="also write the split (.npz)")
    p.add_argument(
        "--texts-out",
        default=None,
        help="also write the texts as JSON lines (fold, index, label, text), in the file's order",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_force_option(p)
    p.set_defaults(func=run)


def _check_outputs(args: argparse.Namespace) -> list[Path]:
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {args.out}.")
    if args.texts is not None and (args.split_out or args.scheme or args.max_database):
        raise ValueError("--scheme, --max-database and --split-out apply to --dataset only.")
    outputs = {"--out": args.out, "--split-out": args.split_out, "--texts-out": args.texts_out}
    checked = check_outputs([args.texts, args.model], outputs, force=args.force)
    return list(checked.values())


def _write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _embed_dataset(args: argparse.Namespace, cache: str | os.PathLike | None) -> str:
    from ..data import load_dataset, make_split
    from ..embeddings import save_embeddings
    from ..text import embed_dataset

    data = load_dataset(args.dataset, args.root)
    if data.kind != "text":
        raise ValueError(f"{data.name} holds {data.kind} items; h2q embed embeds text data sets.")
    split = make_split(
        data, args.scheme or data.name, random_state=args.seed, max_database=args.max_database
    )
    X = embed_dataset(
        data,
        args.model,
        cache_dir=cache,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        n_threads=args.threads,
    )
    arrays: dict[str, np.ndarray] = {}
    for fold in _FOLDS:
        idx = getattr(split, fold)
        arrays[fold], arrays[f"y_{fold}"] = X[idx], data.y[idx]
    if args.split_out:
        split.save(args.split_out)
    if args.texts_out:
        rows = [
            {"fold": f, "index": int(i), "label": data.class_names[data.y[i]], "text": data.X[i]}
            for f in _FOLDS
            for i in getattr(split, f)
        ]
        _write_jsonl(args.texts_out, rows)
    save_embeddings(args.out, **arrays)
    sizes = ", ".join(f"{f} {len(getattr(split, f)):,}" for f in _FOLDS)
    return f"{len(data):,} texts of {data.name}, {X.shape[1]}-d ({sizes})"


def _embed_file(args: argparse.Namespace, cache: str | os.PathLike | None) -> str:
    from ..embeddings import save_embeddings
    from ..text import default_text_cache_dir, embed_texts, read_lines

    texts = read_lines(args.texts)
    X = embed_texts(
        texts,
        args.model,
        batch_size=args.batch_size,
        cache_dir=cache if cache is not None else default_text_cache_dir(),
        progress=not args.no_progress,
        n_threads=args.threads,
    )
    if args.texts_out:
        _write_jsonl(
            args.texts_out, [{"fold": "train", "index": i, "text": t} for i, t in enumerate(texts)]
        )
    save_embeddings(args.out, train=X)
    return f"{len(texts):,} texts of {args.texts}, {X.shape[1]}-d (train {len(texts):,})"


def run(args: argparse.Namespace) -> int:
    """Run ``h2q embed`` with parsed arguments; print a one-line summary."""
    _check_outputs(args)
    if args.model is not None and not Path(args.model).is_dir():
        raise FileNotFoundError(
            f"no model directory {args.model}: pass a local sentence-transformers model folder."
        )
    cache = args.cache_dir
    done = _embed_dataset(args, cache) if args.dataset else _embed_file(args, cache)
    print(f"embedded {done}; wrote {args.out}")
    return 0
