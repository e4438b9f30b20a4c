"""WordNet 3.0 synsets labelled by their supersense (lexicographer file).

Each data line of ``data.noun`` and ``data.verb`` reads ``offset lex_filenum ss_type w_cnt
word lex_id ... | gloss``; the files start with license lines that begin with two spaces. An
item is one synset; its label is the lexicographer file number (field 2), 3 to 28 for nouns
and 29 to 43 for verbs, stored as ``lex_filenum - 3`` so that the classes are 0..25 for nouns
(``noun.Tops`` ... ``noun.time``) and 26..40 for verbs (``verb.body`` ... ``verb.weather``),
in WordNet's order. Two loaders:

- :func:`load_wordnet` (``"wordnet"``): nouns and verbs, 95,882 synsets in 41 classes of very
  unequal size (8 to 11,500 items); the text of an item is its first lemma and its gloss,
  ``"lemma: gloss"`` (underscores in the lemma read as spaces).
- :func:`load_wordnet_nouns` (``"wordnet-nouns"``): nouns only, 82,115 synsets in 26 classes;
  the text is the gloss alone.

Embedding the texts is done by :mod:`h2q.text`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import FileFormatError
from .dataset import Dataset, DatasetNotFoundError

WORDNET_DIR = "/usr/share/wordnet"
WORDNET_INSTALL = "apt-get install -y --no-install-recommends wordnet-base"
NOUN_SUPERSENSES = [
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
]
VERB_SUPERSENSES = [
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
]
#: Class names of :func:`load_wordnet`: label ``c`` is lexicographer file ``c + 3``.
SUPERSENSES = NOUN_SUPERSENSES + VERB_SUPERSENSES
_FIRST_LEX_FILE = 3
_LEX_RANGE = {  # part of speech -> first and last lexicographer file number
    "noun": (3, 28),
    "verb": (29, 43),
}


@dataclass
class _Synsets:
    glosses: list[str]
    labels: list[int]
    offsets: list[int]
    lemmas: list[str]


def _data_line(path: Path, number: int, line: str, pos: str) -> tuple[int, int, str, str]:
    """``(offset, label, lemma, gloss)`` of one data line of ``data.<pos>``."""
    head, bar, gloss = line.partition("|")
    fields = head.split()
    if not bar or len(fields) < 5:
        raise FileFormatError(
            f"{path}, line {number}: not a WordNet data line "
            "('offset lex_filenum ss_type w_cnt word ... | gloss')."
        )
    try:
        offset, lex = int(fields[0]), int(fields[1])
    except ValueError as exc:
        raise FileFormatError(
            f"{path}, line {number}: offset and lexicographer file must be numbers, "
            f"got {fields[0]!r} {fields[1]!r}."
        ) from exc
    first, last = _LEX_RANGE[pos]
    if not first <= lex <= last:
        raise FileFormatError(
            f"{path}, line {number}: lexicographer file {lex} is not a {pos} file "
            f"({first}..{last}); pass data.{pos}, not another part of speech."
        )
    return offset, lex - _FIRST_LEX_FILE, fields[4], gloss.strip()


def _read_data_file(path: Path, pos: str) -> _Synsets:
    out = _Synsets([], [], [], [])
    with open(path, encoding="latin-1") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("  ") or not line.strip():
                continue  # license header
            offset, label, lemma, gloss = _data_line(path, number, line, pos)
            out.glosses.append(gloss)
            out.labels.append(label)
            out.offsets.append(offset)
            out.lemmas.append(lemma)
    if not out.glosses:
        raise FileFormatError(f"{path} holds no data lines (only license lines or nothing).")
    return out


def _data_path(root: str | os.PathLike | None, pos: str, name: str) -> Path:
    given = Path(root) if root is not None else Path(WORDNET_DIR)
    path = given if given.is_file() else given / f"data.{pos}"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{name} not found: no file {path}. Install it with `{WORDNET_INSTALL}`, "
            f"or pass root=FOLDER holding data.{pos}."
        )
    return path


def load_wordnet_nouns(root: str | os.PathLike | None = None) -> Dataset:
    """WordNet noun glosses (82,115 in WordNet 3.0) with 26 supersense labels.

    Parameters
    ----------
    root : path-like, optional
        Folder holding ``data.noun``, or the file itself. Default ``/usr/share/wordnet``.

    Returns
    -------
    Dataset
        ``kind="text"``; ``X`` the glosses (str); ``y`` int64 ``(n,)`` in 0..25;
        ``class_names`` the supersense names; ``meta["offsets"]`` the synset offsets and
        ``meta["lemmas"]`` the first word of each synset.

    Raises
    ------
    DatasetNotFoundError
        When ``data.noun`` is missing; the message gives the install command.
    h2q.exceptions.FileFormatError
        When a data line is malformed or its lexicographer file is not a noun file (3..28).
    """
    path = _data_path(root, "noun", "wordnet-nouns")
    syn = _read_data_file(path, "noun")
    return Dataset(
        name="wordnet-nouns",
        X=syn.glosses,
        y=np.asarray(syn.labels, dtype=np.int64),
        kind="text",
        class_names=list(NOUN_SUPERSENSES),
        meta={
            "root": str(path),
            "offsets": np.asarray(syn.offsets, dtype=np.int64),
            "lemmas": syn.lemmas,
        },
    )


def load_wordnet(
    root: str | os.PathLike | None = None, pos: Sequence[str] = ("noun", "verb")
) -> Dataset:
    """WordNet synsets (nouns and verbs: 95,882 in WordNet 3.0) with 41 supersense labels.

    Parameters
    ----------
    root : path-like, optional
        Folder holding ``data.noun`` and ``data.verb``. Default ``/usr/share/wordnet``.
    pos : sequence of {"noun", "verb"}
        Parts of speech to read, in this order (nouns first by default).

    Returns
    -------
    Dataset
        ``kind="text"``; ``X`` the texts ``"lemma: gloss"`` (str); ``y`` int64 ``(n,)``, the
        lexicographer file number minus 3 (0..25 nouns, 26..40 verbs); ``class_names`` all 41
        supersense names (:data:`SUPERSENSES`), whether or not every class occurs;
        ``meta["offsets"]`` the synset offsets (unique within a part of speech),
        ``meta["pos"]`` the part of speech of each item and ``meta["lemmas"]`` its first word.

    Raises
    ------
    ValueError
        When ``pos`` is empty, repeats itself or names something other than noun and verb.
    DatasetNotFoundError
        When a data file is missing; the message gives the install command.
    h2q.exceptions.FileFormatError
        When a data line is malformed or its lexicographer file does not match the file.
    """
    if isinstance(pos, str):
        pos = (pos,)
    pos = tuple(pos)
    if not pos or len(set(pos)) != len(pos) or not set(pos) <= set(_LEX_RANGE):
        raise ValueError(f"pos must list 'noun' and/or 'verb' once each, got {pos!r}.")
    if root is not None and Path(root).is_file():
        raise ValueError(
            f"root must be the folder holding data.{'/data.'.join(pos)}, got the file {root}."
        )
    texts: list[str] = []
    labels: list[int] = []
    offsets: list[int] = []
    lemmas: list[str] = []
    parts: list[str] = []
    for part in pos:
        syn = _read_data_file(_data_path(root, part, "wordnet"), part)
        pairs = zip(syn.lemmas, syn.glosses, strict=True)
        texts += [f"{w.replace('_', ' ')}: {g}" for w, g in pairs]
        labels += syn.labels
        offsets += syn.offsets
        lemmas += syn.lemmas
        parts += [part] * len(syn.glosses)
    return Dataset(
        name="wordnet",
        X=texts,
        y=np.asarray(labels, dtype=np.int64),
        kind="text",
        class_names=list(SUPERSENSES),
        meta={
            "root": str(root if root is not None else WORDNET_DIR),
            "offsets": np.asarray(offsets, dtype=np.int64),
            "pos": parts,
            "lemmas": lemmas,
        },
    )
