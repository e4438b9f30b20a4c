"""The output policy every ``h2q`` command applies, checked before any work starts.

- An output is never one of the command's inputs: not the same path, and not the same file
  reached through a symbolic or hard link. ``--force`` does not change this.
- An output file that already exists is refused unless the command got ``--force``; with it,
  the new file replaces the old one atomically once it is complete (see :mod:`h2q._io`).
- A run folder (``h2q train``, ``h2q reproduce``) that already holds files is refused unless
  the command got ``--force`` (or ``--resume``, to continue the run in it).
- The folder an output goes into must exist (a run folder's parent must exist).

New commands call :func:`check_outputs` (files) or :func:`check_run_folder` (folders) with
their parsed paths, and :func:`add_force_option` on their parser.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._errors import UsageError

PathLike = str | os.PathLike

#: The ``--force`` help text, shared so that every command documents the same policy.
FORCE_HELP = (
    "replace output files that already exist (without it an existing output is refused; an "
    "output that is one of the inputs is always refused)"
)


def add_force_option(parser: Any, help: str = FORCE_HELP) -> None:
    """Add ``--force`` (store_true) to a sub-command's parser."""
    parser.add_argument("--force", action="store_true", help=help)


def check_outputs(
    inputs: Iterable[PathLike | None],
    outputs: Mapping[str, PathLike | None],
    *,
    force: bool,
) -> dict[str, Path]:
    """Check that each output may be written; return the outputs as paths.

    Parameters
    ----------
    inputs : iterable of path or None
        Every file the command reads (None entries are skipped).
    outputs : mapping of str to path or None
        Each output file, keyed by the option that names it in messages (e.g. ``"--out"``);
        None entries are skipped.
    force : bool
        Whether an existing output may be replaced.

    Raises
    ------
    UsageError
        When an output is an input (also through a link), a folder, named twice, or exists
        and ``force`` is false.
    FileNotFoundError
        When an output's folder does not exist.
    """
    existing_inputs = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    checked: dict[str, Path] = {}
    seen: dict[str, str] = {}
    for label, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        if path.is_dir():
            raise UsageError(f"{label} {path} is a folder; pass a file name.")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(
                f"cannot write {path}: folder {parent} does not exist. Create it first."
            )
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"{seen[key]} and {label} name the same file {path}; pass two paths.")
        seen[key] = label
        if path.exists():
            for source in existing_inputs:
                if os.path.samefile(path, source):
                    same_name = os.path.abspath(path) == os.path.abspath(source)
                    how = "" if same_name else " (through a link)"
                    raise UsageError(
                        f"{label} {path} is the input file {source}{how}; writing it would "
                        "destroy the input. Choose another output name."
                    )
            if not force:
                raise UsageError(
                    f"{label} {path} already exists. Pass --force to replace it, or choose "
                    "another name."
                )
        checked[label] = path
    return checked


def check_run_folder(
    path: PathLike, *, force: bool, resume: bool = False, label: str = "--out"
) -> Path:
    """Check a run folder before a run starts; return it as a path.

    A missing folder is fine when its parent exists; an empty folder is fine; a folder with
    files needs ``force`` (replace the run) or ``resume`` (continue it). ``resume`` on a
    missing folder is an error.

    Raises
    ------
    UsageError
        When ``path`` is a file, holds files without ``force``/``resume``, or is missing with
        ``resume``.
    FileNotFoundError
        When the parent folder does not exist.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{label} {path} is a file, not a folder; pass a folder.")
    if not path.exists():
        if resume:
            raise UsageError(
                f"--resume: {label} {path} does not exist; there is nothing to resume."
            )
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(
                f"cannot create {path}: folder {parent} does not exist. Create it first."
            )
        return path
    if not (force or resume) and any(path.iterdir()):
        raise UsageError(
            f"{label} {path} already holds files. Pass --resume to continue the run in it, "
            "--force to replace it, or choose a new folder."
        )
    return path
