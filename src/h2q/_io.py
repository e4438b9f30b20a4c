"""Atomic, versioned files.

Every file h2q writes goes to a temporary file in the destination folder first and is then
renamed over the destination, so a crash or a bad input never leaves a half-written file and
never destroys the previous one. A temporary file left by a killed process (its name holds
the writer's pid) is removed by the next save to the same destination. Fitted objects are
stored as a ``.npz`` archive (zip with a CRC-32 per member, no pickle) holding their arrays
and one JSON header that names the kind of object and the format version.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .exceptions import FileFormatError

FORMAT_NAME = "h2q"
_HEADER_KEY = "__h2q_header__"


#: ``.NAME.<pid>.<8 random chars>.tmp``: the temporary file of a save of NAME by process pid.
_TEMP = re.compile(r"(\d+)\.[a-z0-9_]{8}")
#: ``.NAME.<8 random chars>.tmp``: the same, written by h2q <= 0.1 (no pid in the name).
_LEGACY_TEMP = re.compile(r"[a-z0-9_]{8}")
#: A legacy temporary file untouched for this long is taken to be a dead writer's.
_LEGACY_GRACE_S = 3600.0


def _remove_stale_temps(directory: Path, name: str) -> None:
    """Delete temporary files that killed saves of ``directory / name`` left behind.

    A temporary file names the process that writes it; it is removed only when that process
    no longer exists (a live one, this process included, may still be writing it). Files from
    older releases carry no pid and are removed once untouched for an hour. Best effort:
    a file that vanishes or cannot be removed meanwhile is left to the next save.
    """
    prefix, suffix = f".{name}.", ".tmp"
    try:
        entries = [e for e in os.listdir(directory) if e.startswith(prefix) and e.endswith(suffix)]
    except OSError:
        return
    for entry in entries:
        middle = entry[len(prefix) : -len(suffix)]
        match = _TEMP.fullmatch(middle)
        target = directory / entry
        with contextlib.suppress(OSError):
            if match is not None:
                if not _process_exists(int(match.group(1))):
                    target.unlink()
            elif _LEGACY_TEMP.fullmatch(middle):
                if time.time() - target.stat().st_mtime > _LEGACY_GRACE_S:
                    target.unlink()


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, ValueError):
        return False
    return True


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"cannot write {path}: folder {directory} does not exist. Create it first."
        )
    _remove_stale_temps(directory, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode())  # mkstemp makes 0600; give the usual umask mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(handle)`` on a temporary file and rename it over ``path`` when it returns."""
    with atomic_open(path) as handle:
        write(handle)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` done atomically (no pickle)."""
    atomic_write(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))


def save_state(
    path: str | os.PathLike,
    kind: str,
    version: int,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
) -> None:
    """Write a fitted object's arrays and JSON-serialisable settings to one ``.npz`` file."""
    header = {"format": FORMAT_NAME, "kind": kind, "version": version, "meta": meta}
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload[_HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of an h2q ``.npz`` file, with clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise FileFormatError(
            f"{path} is a single numpy array (.npy), not an h2q file; pass a file written by "
            "an h2q object's save() (`h2q fit` writes quantizers, `h2q index build` indexes)."
        )
    try:
        # numpy reads array members without checking their CRC-32; testzip does.
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"member {bad} fails its CRC-32 check")
        with np.load(path, allow_pickle=False) as archive:
            if _HEADER_KEY not in archive.files:
                raise FileFormatError(
                    f"{path} is not an h2q file (no h2q header). Pass a file written by an h2q "
                    "object's save()."
                )
            header = json.loads(archive[_HEADER_KEY].tobytes().decode("utf-8"))
            arrays = {name: archive[name] for name in archive.files if name != _HEADER_KEY}
    except FileFormatError:
        raise
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        UnicodeError,
        NotImplementedError,  # a corrupted compression-method field
    ) as exc:
        raise FileFormatError(
            f"{path} is truncated or corrupted and cannot be read ({type(exc).__name__}: "
            f"{exc}). Re-create it by fitting and saving again."
        ) from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{path} is not an h2q file (unknown header).")
    return header, arrays


def numpy_read_error(path: str | os.PathLike, exc: BaseException, fallback: str) -> str:
    """The message for a numpy file ``np.load(..., allow_pickle=False)`` could not read.

    An ``.npy`` array of Python objects (``dtype=object``) gets its own message; anything
    else gets ``fallback`` with the reason in brackets.
    """
    if "Object arrays" in str(exc):  # numpy: "Object arrays cannot be loaded when ..."
        return (
            f"{path} holds an array of Python objects (dtype object), which h2q never loads; "
            "save a numeric array instead (e.g. numpy.save(path, numpy.asarray(x, "
            "dtype=numpy.float32)))."
        )
    return f"{fallback} ({exc})."


def load_torch(
    path: str | os.PathLike,
    what: str,
    *,
    missing: str,
    fix: str = "",
    error: type[Exception] = ValueError,
) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``: tensors and plain values
    only, so loading runs no code.

    A missing file raises ``FileNotFoundError(missing)``; an unreadable one ``error`` with the
    message ``"{path} is not a readable {what} ({reason}).{fix}"``.
    """
    import torch

    if not Path(path).is_file():
        raise FileNotFoundError(missing)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise error(f"{path} is not a readable {what} ({type(exc).__name__}: {exc}).{fix}") from exc


def read_kind(path: str | os.PathLike) -> str:
    """The kind of object (class name) stored in an h2q file."""
    return str(_read(path)[0].get("kind"))


def load_state(
    path: str | os.PathLike, kind: str, version: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_state`, checking its kind and version.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    FileFormatError
        When the file is truncated, corrupted, not an h2q file, of another kind, or of a
        format version this release cannot read.
    """
    header, arrays = _read(path)
    if header.get("kind") != kind:
        raise FileFormatError(
            f"{path} holds a {header.get('kind')}, not a {kind}. Load it with "
            f"{header.get('kind')}.load()."
        )
    if header.get("version") != version:
        raise FileFormatError(
            f"{path} uses {kind} file format version {header.get('version')}, but this release "
            f"of h2q reads version {version}. Refit and save with this release."
        )
    meta = header.get("meta")
    if not isinstance(meta, dict):
        raise FileFormatError(f"{path} has no settings in its h2q header; re-create it.")
    return _Checked(arrays, path, "array"), _Checked(meta, path, "setting")


class MissingEntryError(FileFormatError, KeyError):
    """A file lacks an entry its kind needs (a :class:`FileFormatError`, and a ``KeyError``
    for code that looks entries up with a fallback)."""

    __str__ = FileFormatError.__str__  # KeyError would quote the message


class _Checked(dict):
    """A dict read from a file: a missing entry is a :class:`MissingEntryError` naming it."""

    def __init__(self, items: dict[str, Any], path: str | os.PathLike, what: str) -> None:
        super().__init__(items)
        self._path, self._what = path, what

    def __missing__(self, key: str) -> Any:
        raise MissingEntryError(
            f"{self._path} lacks the {self._what} {key!r} that this kind of file holds: it was "
            "written by another tool or edited. Re-create it by fitting and saving again."
        )
