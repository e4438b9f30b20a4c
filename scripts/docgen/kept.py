"""Keep a grid's small outputs in the repository, where the documentation is made from them.

:func:`keep_outputs` copies the tables, statistics, verdict, plots, ``report.md`` and
``summary.json`` of an ``h2q reproduce`` results folder (no checkpoints, embeddings or cells)
into its kept folder (``docs/results/default``, ``docs/results/wordnet``), replacing the old
copy only once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from h2q.experiments.records import write_json

#: Written by :func:`keep_outputs` when given the commit the grid was computed with.
PROVENANCE_FILE = "provenance.json"

#: The small outputs of a grid that are kept (besides ``plots/*.png``).
KEPT_FILES = (
    "report.md",
    "summary.json",
    "grid.json",
    "calls.json",
    "table.md",
    "table.csv",
    "improvements.md",
    "improvements.csv",
    "gains.csv",
    "verdict.md",
    "paper_comparison.md",
    "quantization_loss.md",
    "quantization_loss.csv",
    "lambda_selection.md",
    "lambda_selection.csv",
    "stage1.md",
    "stage1.csv",
    "cells.csv",
)
#: Files the results pages are generated from.
_NEEDED = ("summary.json", "table.md", "improvements.md", "verdict.md", "paper_comparison.md")


def check_results(folder: Path) -> None:
    missing = [name for name in _NEEDED if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{folder} does not hold a finished grid's outputs (missing {', '.join(missing)}). "
            "Run `h2q reproduce --out <folder>` with this version of h2q first."
        )


def keep_outputs(
    results_dir: str | os.PathLike,
    kept_dir: str | os.PathLike,
    *,
    commit: str | None = None,
    stage2_commit: str | None = None,
) -> list[Path]:
    """Copy the small outputs of a grid into ``kept_dir``, replacing its old content.

    The new copy is built aside and swapped in once complete, so an interrupted call leaves
    the old kept folder as it was.

    Parameters
    ----------
    results_dir : path-like
        A folder written by ``h2q reproduce`` (``--out``).
    kept_dir : path-like
        The kept copy (e.g. ``docs/results/default``).
    commit : str, optional
        The h2q commit the grid was computed with, recorded in :data:`PROVENANCE_FILE`.
    stage2_commit : str, optional
        With ``commit``: the commit the stage-2 cells were redone with
        (``h2q reproduce --redo-stage2``), when it differs from the stage-1 runs'.

    Returns
    -------
    list of Path
        The files now in ``kept_dir``.

    Raises
    ------
    ValueError
        When ``results_dir`` is not a finished grid's folder, or the two folders overlap.
    """
    src, dst = Path(results_dir).resolve(), Path(kept_dir).resolve()
    check_results(src)
    for value in (commit, stage2_commit):
        if value is not None and (not isinstance(value, str) or not _is_commit(value)):
            raise ValueError(f"commit must be a git commit id (7 to 40 hex digits), got {value!r}.")
    if stage2_commit is not None and commit is None:
        raise ValueError("stage2_commit needs commit (the stage-1 runs' commit) too.")
    if src == dst or src in dst.parents or dst in src.parents:
        raise ValueError(
            f"the kept folder {dst} and the results folder {src} overlap; keep the outputs in "
            "a folder of their own (e.g. docs/results/default)."
        )
    names = [n for n in KEPT_FILES if (src / n).is_file()]
    plots = (
        sorted(p.name for p in (src / "plots").glob("*.png")) if (src / "plots").is_dir() else []
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    old = dst.with_name(f".{dst.name}.old")
    try:
        (tmp / "plots").mkdir()
        for name in names:
            shutil.copyfile(src / name, tmp / name)
        for name in plots:
            shutil.copyfile(src / "plots" / name, tmp / "plots" / name)
        if commit is not None:
            extra = {} if stage2_commit is None else {"stage2_commit": stage2_commit}
            write_json(tmp / PROVENANCE_FILE, {"commit": commit, **extra})
            names.append(PROVENANCE_FILE)
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if old.exists() and not dst.exists():
            old.rename(dst)  # an earlier call stopped between its two renames
        if old.exists():
            shutil.rmtree(old)
        if dst.exists():
            dst.rename(old)
        try:
            tmp.rename(dst)
        except BaseException:
            if old.exists() and not dst.exists():
                old.rename(dst)  # put the old copy back
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    if old.exists():
        shutil.rmtree(old)
    return [dst / n for n in names] + [dst / "plots" / n for n in plots]


def _is_commit(text: str) -> bool:
    return 7 <= len(text) <= 40 and all(c in "0123456789abcdef" for c in text.lower())
