"""Opening a Milvus database: checked URIs, and a Milvus Lite server that starts quietly."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient

__all__ = ["SERVER_SCHEMES", "check_uri", "connect"]

#: URI schemes of a Milvus server (anything else is a Milvus Lite file).
SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")

#: Milvus Lite's server logs with glog: errors only, into the database's folder (not /tmp).
_GLOG_DEFAULTS = {"GLOG_minloglevel": "2"}


@contextlib.contextmanager
def _quiet_lite(folder: str) -> Iterator[None]:
    """Keep Milvus Lite's start quiet: no pkg_resources warning, no glog files in /tmp.

    The server process copies the environment when it starts, so the ``GLOG_*`` variables
    are set only around the client's creation (and left alone when the user set them).
    """
    wanted = {**_GLOG_DEFAULTS, "GLOG_log_dir": folder}
    saved = {key: os.environ.get(key) for key in wanted}
    for key, value in wanted.items():
        os.environ.setdefault(key, value)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def connect(uri: str | os.PathLike, token: str = "") -> MilvusClient:
    """A ``MilvusClient`` for a checked URI; a Milvus Lite file starts quietly (see
    :func:`_quiet_lite`). The caller closes it."""
    uri = check_uri(uri)
    if uri.startswith(SERVER_SCHEMES):
        return MilvusClient(uri, token=token)
    with _quiet_lite(str(Path(uri).parent)):
        return MilvusClient(uri, token=token)


def check_uri(uri: Any) -> str:
    """A Milvus URI: ``http(s)://...`` as is, or a local ``.db`` file (absolute path)."""
    if not isinstance(uri, (str, os.PathLike)):
        raise TypeError(f"uri must be a path or an http(s):// URL, got {type(uri).__name__}.")
    text = os.fspath(uri)
    if text.startswith(SERVER_SCHEMES):
        return text
    if "://" in text:
        raise ValueError(
            f"unsupported Milvus URI {text!r}: pass a local file ending in .db (Milvus Lite) or "
            "http://host:19530 (a Milvus server)."
        )
    path = Path(text)
    if path.suffix != ".db":
        raise ValueError(
            f"Milvus Lite file names end in .db, got {text!r}. Pass e.g. {path.stem}.db, or "
            "http://host:19530 for a Milvus server."
        )
    if not path.parent.resolve().is_dir():
        raise FileNotFoundError(f"cannot open {path}: folder {path.parent} does not exist.")
    return str(path.resolve())
