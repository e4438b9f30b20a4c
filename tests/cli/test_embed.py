"""``h2q embed`` and ``h2q train --dataset wordnet`` on a tiny WordNet with a fake encoder."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch

from h2q import text as h2q_text
from h2q.data import SCHEMES, StratifiedScheme, load_split
from h2q.embeddings import load_embeddings

# (part of speech, lexicographer file, synsets): labels 0, 1, 2 (nouns), 26, 27 (verbs)
CLASSES = [("noun", 3, 80), ("noun", 4, 50), ("noun", 5, 30), ("verb", 29, 25), ("verb", 30, 15)]
SCHEME = StratifiedScheme(60, 20, 20, min_per_class=2)


class KindEncoder:
    """8-d vectors: a class direction (read from 'kind K' in the text) plus seeded noise."""

    def encode(self, texts, batch_size, convert_to_numpy, show_progress_bar):
        out = []
        for t in texts:
            k = int(re.search(r"kind (\d+)", t).group(1))
            rng = np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
            v = 0.5 * rng.standard_normal(8)
            v[k % 8] += 3.0
            out.append(v)
        return np.asarray(out)


@pytest.fixture
def wordnet_dir(tmp_path):
    folder = tmp_path / "wordnet"
    folder.mkdir()
    lines = {"noun": ["  1 license line\n"], "verb": ["  1 license line\n"]}
    for k, (pos, lex, n) in enumerate(CLASSES):
        for i in range(n):
            offset = 1000 * lex + i
            head = f"{offset:08d} {lex:02d} {pos[0]} 01 w{k}_{i} 0 000"
            lines[pos].append(f"{head} | kind {k} #{i}\n")
    for pos, text in lines.items():
        (folder / f"data.{pos}").write_text("".join(text), encoding="latin-1")
    return folder


@pytest.fixture
def h2q(cli_runner, monkeypatch, tmp_path):
    monkeypatch.setitem(SCHEMES, "wordnet", SCHEME)
    monkeypatch.setattr(h2q_text, "load_text_model", lambda model=None, device="cpu": KindEncoder())
    monkeypatch.setenv("H2Q_CACHE_DIR", str(tmp_path / "cache"))
    return cli_runner(("embed", "train", "quantize", "reproduce"))


def test_embed_dataset_writes_the_embeddings_layout(h2q, wordnet_dir, tmp_path):
    out = tmp_path / "wn.npz"
    status, stdout, err = h2q(
        "embed", "--dataset", "wordnet", "--root", wordnet_dir, "--out", out, "--seed", 3,
        "--split-out", tmp_path / "split.npz", "--texts-out", tmp_path / "texts.jsonl",
        "--no-progress", "--threads", 1,
    )  # fmt: skip
    assert status == 0, err
    assert "embedded 200 texts of wordnet, 8-d" in stdout
    data = load_embeddings(out, required=("train", "val", "query", "database"))
    split = load_split(tmp_path / "split.npz")
    assert split.scheme == SCHEME and split.random_state == 3
    assert {f: len(data.get(f)) for f in ("train", "query", "val", "database")} == split.sizes
    rows = [json.loads(line) for line in (tmp_path / "texts.jsonl").read_text().splitlines()]
    assert len(rows) == 200
    folds = ("train", "val", "query", "database")
    by_fold = {f: [r for r in rows if r["fold"] == f] for f in folds}
    names = {0: "noun.Tops", 1: "noun.act", 2: "noun.animal", 26: "verb.body", 27: "verb.change"}
    for fold, fold_rows in by_fold.items():
        assert [r["index"] for r in fold_rows] == getattr(split, fold).tolist()
        assert [r["label"] for r in fold_rows] == [names[c] for c in data.get(f"y_{fold}")]
        # each row is the embedding of its text
        want = KindEncoder().encode([r["text"] for r in fold_rows], 1, True, False)
        np.testing.assert_allclose(data.get(fold), want.astype(np.float32))
    # the file is what h2q fit reads
    status, _, err = h2q("fit", out, "--method", "itq", "--bits", 8, "--out", tmp_path / "q.npz")
    assert status == 0, err


def test_embed_text_file(h2q, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("kind 1 cat\nkind 2 dog\nkind 1 kitten\n", encoding="utf-8")
    status, stdout, err = h2q("embed", "--texts", src, "--out", tmp_path / "e.npz", "--no-progress")
    assert status == 0, err
    data = load_embeddings(tmp_path / "e.npz")
    assert data.keys() == ("train",) and data.train.shape == (3, 8)
    assert any((tmp_path / "cache" / "text").iterdir())  # cached under $H2Q_CACHE_DIR/text

    # the project's output policy: an existing output needs --force; an input is never one
    again = ("embed", "--texts", src, "--out", tmp_path / "e.npz", "--no-progress")
    before = (tmp_path / "e.npz").read_bytes()
    status, _, err = h2q(*again)
    assert status == 2 and "already exists" in err and "--force" in err, err
    assert (tmp_path / "e.npz").read_bytes() == before
    assert h2q(*again, "--force")[0] == 0
    (tmp_path / "link.npz").symlink_to(src)
    status, _, err = h2q("embed", "--texts", src, "--out", tmp_path / "link.npz", "--force")
    assert status == 2 and src.read_text(encoding="utf-8").startswith("kind 1 cat"), err


def test_embed_keeps_one_row_per_line(h2q, tmp_path):
    """U+2028, \\v, \\x1c, \\r and U+0085 stay inside their line: 3 lines, 3 rows."""
    texts = ["kind 1 a\u2028kind 1 b", "kind 2 c\vkind 2 d\rkind 2 e", "kind 3 f\x1ckind 3 g\x85h"]
    src = tmp_path / "in.txt"
    src.write_bytes(("\r\n".join(texts) + "\n").encode("utf-8"))
    status, _, err = h2q("embed", "--texts", src, "--out", tmp_path / "e.npz", "--texts-out",
                         tmp_path / "t.jsonl", "--no-progress")  # fmt: skip
    assert status == 0, err
    X = load_embeddings(tmp_path / "e.npz").train
    np.testing.assert_allclose(X, KindEncoder().encode(texts, 1, True, False), rtol=1e-6)
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text("utf-8").split("\n")
            if line]  # fmt: skip
    assert [r["text"] for r in rows] == texts


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--texts", "{tmp}/latin1.txt", "--out", "{tmp}/e.npz"], r"latin1.txt, line 2: byte 0xe9"),
        (
            ["--texts", "{tmp}/in.txt", "--out", "{tmp}/e.npz", "--cache-dir", "{tmp}/in.txt"],
            r"cache folder .*in.txt is a file",
        ),  # fmt: skip
        (["--texts", "{tmp}/missing.txt", "--out", "{tmp}/e.npz"], "no such text file"),
        (["--texts", "{tmp}/in.txt", "--out", "{tmp}/e.txt"], "must name a .npz"),
        (["--texts", "{tmp}/in.txt", "--out", "{tmp}/no/e.npz"], "does not exist"),
        (["--texts", "{tmp}/in.txt", "--out", "{tmp}/e.npz", "--scheme", "wordnet"], "apply to"),
        (["--texts", "{tmp}/in.txt", "--out", "{tmp}/e.npz", "--model", "{tmp}/m"], "no model"),
        (["--dataset", "digits", "--out", "{tmp}/e.npz"], "embeds text data sets"),
        (["--texts", "{tmp}/blank.txt", "--out", "{tmp}/e.npz"], "line 2: empty line"),
    ],
)
def test_embed_errors_write_nothing(h2q, tmp_path, argv, match):
    (tmp_path / "in.txt").write_text("kind 1 a\n")
    (tmp_path / "blank.txt").write_text("kind 1 a\n\nkind 2 b\n")
    (tmp_path / "latin1.txt").write_bytes("kind 1 a\nkind 2 caf\u00e9\n".encode("latin-1"))
    status, _, err = h2q("embed", *[a.format(tmp=tmp_path) for a in argv], "--no-progress")
    assert status == 2 and re.search(match, err), err
    assert "Traceback" not in err and not (tmp_path / "e.npz").exists()


def test_train_on_wordnet_uses_frozen_embeddings(h2q, wordnet_dir, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    status, stdout, err = h2q(
        "train", "--dataset", "wordnet", "--root", wordnet_dir, "--method", "dpsh",
        "--bits", 8, "--out", out, "--epochs", 15, "--batch-size", 16, "--no-progress",
    )  # fmt: skip
    assert status == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == "mlp" and config["dataset"] == "wordnet"
    assert config["scheme"]["type"] == "StratifiedScheme"
    assert config["split_sizes"] == {"train": 60, "query": 20, "val": 20, "database": 100}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_map"] > 0.6  # 5 classes of unequal size: chance is about 0.3
    emb = load_embeddings(out / "embeddings.npz", required=("query", "database"))
    assert emb.query.shape == (20, 8)
    status, _, err = h2q(
        "train", "--dataset", "wordnet", "--root", wordnet_dir, "--method", "dpsh",
        "--bits", 8, "--out", tmp_path / "r2", "--backbone", "small-cnn", "--no-progress",
    )  # fmt: skip
    assert status == 2 and "backbone must be 'mlp'" in err


@pytest.mark.slow
def test_reproduce_on_wordnet(h2q, wordnet_dir, tmp_path):
    """The grid on text: MLP head on the embeddings whatever the preset's image backbone."""
    torch.set_num_threads(1)
    out = tmp_path / "grid"
    status, stdout, err = h2q(
        "reproduce", "--quick", "--dataset", "wordnet", "--root", wordnet_dir, "--bits", 4, 8,
        "--epochs", 3, "--k", 50, "--jobs", 1, "--no-progress", "--out", out,
    )  # fmt: skip
    assert status == 0, err
    cells = (out / "cells.csv").read_text()
    for row in ("lambda0", "penalty", "hswd", "itq", "h2q-l2"):
        assert row in cells
    report = (out / "report.md").read_text()
    assert "wordnet" in report
    # stage 1 is described as what it is on text, not as an image backbone
    assert (
        "- Stage 1: an MLP head [64] on the frozen all-MiniLM-L6-v2 sentence embeddings" in report
    )
    assert "ours (wordnet, MLP head on frozen all-MiniLM-L6-v2 embeddings, 1 seed)" in report
    # Retrieval you can see, as text: a result is marked wrong exactly when its class ("wK",
    # the fixture's class index) differs from its query's.
    assert "| rank | λ = 0 | +H²Q (L2) | +λ |" in report
    queries = re.findall(r"^Query \d \(.*?\): w(\d+) ", report, flags=re.M)
    blocks = re.split(r"^Query \d ", report, flags=re.M)[1:]
    assert len(queries) == len(blocks) == 4
    for query, block in zip(queries, blocks, strict=True):
        marks = re.findall(r"([✓✗]) w(\d+) ", block)
        assert len(marks) == 30
        assert all((mark == "✗") == (k != query) for mark, k in marks)


@pytest.mark.slow
def test_reproduce_on_wordnet_reads_the_embed_cache_and_redoes_stage2(
    h2q, wordnet_dir, tmp_path, monkeypatch
):
    """`h2q embed --cache-dir C` then `h2q reproduce --cache-dir C`: no model is loaded; then
    `--redo-stage2` recomputes the ITQ and H²Q cells and trains nothing."""
    torch.set_num_threads(1)
    cache = tmp_path / "embed-cache"
    status, _, err = h2q(
        "embed", "--dataset", "wordnet", "--root", wordnet_dir, "--out", tmp_path / "wn.npz",
        "--cache-dir", cache, "--no-progress",
    )  # fmt: skip
    assert status == 0, err

    def no_model(model=None, device="cpu"):
        raise AssertionError("the embeddings should come from the cache")

    monkeypatch.setattr(h2q_text, "load_text_model", no_model)
    out = tmp_path / "grid"
    args = (
        "reproduce", "--quick", "--dataset", "wordnet", "--root", wordnet_dir, "--bits", 4,
        "--epochs", 2, "--k", 50, "--jobs", 1, "--no-progress", "--out", out, "--cache-dir", cache,
    )  # fmt: skip
    status, stdout, err = h2q(*args)
    assert status == 0, err
    assert "8 cells computed, 4 stage-1 runs trained" in stdout
    status, stdout, err = h2q(*args, "--redo-stage2")
    assert status == 0, err
    assert "5 cells computed, 0 stage-1 runs trained" in stdout  # ITQ and 4 H²Q losses


@pytest.mark.slow
def test_real_minilm_embed_keeps_one_row_per_line(cli_runner, tmp_path):
    """The real all-MiniLM-L6-v2 through `h2q embed`: row i is line i embedded alone."""
    texts = [
        "a cat\u2028on a mat",
        "tab\there, form\ffeed\x1cand more",
        "\u00e9t\u00e9 \u2603\u2029end",
    ]
    src = tmp_path / "in.txt"
    src.write_bytes(("\n".join(texts) + "\n").encode("utf-8"))
    status, _, err = cli_runner(("embed",))("embed", "--texts", src, "--out", tmp_path / "e.npz",
                                            "--cache-dir", tmp_path / "c", "--no-progress",
                                            "--threads", 1)  # fmt: skip
    assert status == 0, err
    X = load_embeddings(tmp_path / "e.npz").train
    assert X.shape == (3, 384)
    np.testing.assert_allclose(X, h2q_text.load_text_model().encode(texts), atol=1e-5)
