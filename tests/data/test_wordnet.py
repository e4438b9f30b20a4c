"""WordNet synsets from tiny data.noun / data.verb files with license lines, in latin-1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from h2q.data import (
    SUPERSENSES,
    DatasetNotFoundError,
    load_dataset,
    load_wordnet,
    load_wordnet_nouns,
)
from h2q.exceptions import FileFormatError

WORDNET_DIR = Path("/usr/share/wordnet")
LICENSE = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  By obtaining, using  \n"
)
LINES = (
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived to exist\n"
    '00015388 05 n 01 animal 0 002 @ 00004475 n 0000 | a living organism; "a caf\xe9 cat"\n'
    "15113229 28 n 02 time 0 clip 0 000 | the continuum of experience  \n"
)


def write_noun_file(folder, text):
    path = folder / "data.noun"
    path.write_bytes(text.encode("latin-1"))
    return path


def test_glosses_and_supersenses(tmp_path):
    write_noun_file(tmp_path, LICENSE + LINES)
    ds = load_wordnet_nouns(tmp_path)
    assert ds.kind == "text" and len(ds) == 3
    assert ds.X[0] == "that which is perceived to exist"
    assert ds.X[1] == 'a living organism; "a caf\xe9 cat"'  # latin-1 decoded
    assert ds.X[2] == "the continuum of experience"
    np.testing.assert_array_equal(ds.y, [0, 2, 25])
    assert ds.n_classes == 26
    assert [ds.class_names[c] for c in ds.y] == ["noun.Tops", "noun.animal", "noun.time"]
    np.testing.assert_array_equal(ds.meta["offsets"], [1740, 15388, 15113229])
    assert ds.meta["lemmas"] == ["entity", "animal", "time"]


def test_root_may_be_the_file(tmp_path):
    path = write_noun_file(tmp_path, LINES)
    assert len(load_dataset("wordnet-nouns", path)) == 3


def test_missing_file_names_install_command(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match="apt-get install -y --no-install-recommends wordnet-base"
    ):
        load_wordnet_nouns(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("00001740 03 n 01 entity 0 003 no gloss bar\n", "line 1: not a WordNet data line"),
        ("x0001740 03 n 01 entity 0 000 | gloss\n", "must be numbers"),
        ("00001740 02 v 01 run 0 000 | move fast\n", "lexicographer file 2 is not a noun file"),
        (LICENSE, "holds no data lines"),
    ],
)
def test_malformed_files(tmp_path, text, match):
    write_noun_file(tmp_path, text)
    with pytest.raises(FileFormatError, match=match):
        load_wordnet_nouns(tmp_path)


VERB_LINES = (
    "00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 000 | draw air into, "
    "and expel out of, the lungs\n"
    "02758033 43 v 01 snow 0 001 @ 02756558 v 0000 01 + 01 00 | fall as snow; "
    '"It was snowing all night"  \n'
    "01835496 38 v 01 go_across 0 000 | move across\n"
)


def write_verb_file(folder, text):
    (folder / "data.verb").write_bytes(text.encode("latin-1"))


def test_nouns_and_verbs_with_lemma_and_gloss(tmp_path):
    write_noun_file(tmp_path, LICENSE + LINES)
    write_verb_file(tmp_path, LICENSE + VERB_LINES)
    ds = load_dataset("WordNet", tmp_path)
    assert ds.name == "wordnet" and ds.kind == "text" and len(ds) == 6
    assert ds.X[0] == "entity: that which is perceived to exist"
    assert ds.X[3] == "breathe: draw air into, and expel out of, the lungs"
    assert ds.X[4] == 'snow: fall as snow; "It was snowing all night"'
    assert ds.X[5] == "go across: move across"  # underscores read as spaces
    # label = lexicographer file - 3: nouns 0..25, verbs 26..40
    np.testing.assert_array_equal(ds.y, [0, 2, 25, 26, 40, 35])
    assert ds.n_classes == 41 and ds.class_names == SUPERSENSES
    assert [ds.class_names[c] for c in ds.y[3:]] == ["verb.body", "verb.weather", "verb.motion"]
    assert ds.meta["pos"] == ["noun"] * 3 + ["verb"] * 3
    assert ds.meta["lemmas"][5] == "go_across"
    verbs = load_wordnet(tmp_path, pos="verb")
    assert verbs.X == ds.X[3:] and verbs.n_classes == 41


def test_combined_loader_errors(tmp_path):
    write_noun_file(tmp_path, LINES)
    with pytest.raises(DatasetNotFoundError, match="data.verb.*wordnet-base"):
        load_wordnet(tmp_path)
    with pytest.raises(ValueError, match="folder holding data.noun/data.verb"):
        load_wordnet(tmp_path / "data.noun")
    with pytest.raises(ValueError, match="pos must list"):
        load_wordnet(tmp_path, pos=("noun", "adj"))
    write_verb_file(tmp_path, LINES)  # noun lines in data.verb
    with pytest.raises(FileFormatError, match="lexicographer file 3 is not a verb file"):
        load_wordnet(tmp_path)


@pytest.mark.skipif(not (WORDNET_DIR / "data.verb").is_file(), reason="wordnet-base not installed")
def test_installed_wordnet_counts():
    ds = load_wordnet()
    assert len(ds) == 95_882
    np.testing.assert_array_equal(np.unique(ds.y), np.arange(41))
    assert ds.X[0].startswith("entity: that which is perceived")
