"""WordNet 3.0 noun glosses labelled by their supersense (lexicographer file).

Each data line of ``data.noun`` reads ``offset lex_filenum ss_type w_cnt word lex_id ... |
gloss``; the file starts with license lines that begin with two spaces. The text of an item is
its gloss (after ``" | "``), its label the lexicographer file number (field 2), 3 to 28 for
nouns, stored as ``lex_filenum - 3`` so that the 26 classes are 0..25 in WordNet's order
(``noun.Tops`` ... ``noun.time``). Embedding the texts is done elsewhere.
"""

from __future__ import annotations

import os
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
_FIRST_NOUN_FILE = 3


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
    given = Path(root) if root is not None else Path(WORDNET_DIR)
    path = given if given.is_file() else given / "data.noun"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"wordnet-nouns not found: no file {path}. Install it with `{WORDNET_INSTALL}`, "
            "or pass root=FOLDER holding data.noun."
        )
    texts: list[str] = []
    labels: list[int] = []
    offsets: list[int] = []
    lemmas: list[str] = []
    with open(path, encoding="latin-1") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("  ") or not line.strip():
                continue  # license header
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
            label = lex - _FIRST_NOUN_FILE
            if not 0 <= label < len(NOUN_SUPERSENSES):
                raise FileFormatError(
                    f"{path}, line {number}: lexicographer file {lex} is not a noun file "
                    f"({_FIRST_NOUN_FILE}..{_FIRST_NOUN_FILE + len(NOUN_SUPERSENSES) - 1}); "
                    "pass data.noun, not another part of speech."
                )
            texts.append(gloss.strip())
            labels.append(label)
            offsets.append(offset)
            lemmas.append(fields[4])
    if not texts:
        raise FileFormatError(f"{path} holds no data lines (only license lines or nothing).")
    return Dataset(
        name="wordnet-nouns",
        X=texts,
        y=np.asarray(labels, dtype=np.int64),
        kind="text",
        class_names=list(NOUN_SUPERSENSES),
        meta={"root": str(path), "offsets": np.asarray(offsets, dtype=np.int64), "lemmas": lemmas},
    )
