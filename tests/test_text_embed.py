"""Text embeddings: chunked, cached and resumable (fake encoder), and the real MiniLM once."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from h2q import text as h2q_text
from h2q.data import Dataset
from h2q.text import (
    as_feature_dataset,
    embed_dataset,
    embed_texts,
    texts_fingerprint,
    training_features,
)


class FakeEncoder:
    """Deterministic 8-d vectors from a hash of each text; counts the texts it encodes."""

    def __init__(self, fail_after=None):
        self.calls = 0
        self.encoded = 0
        self.fail_after = fail_after

    def encode(self, texts, batch_size, convert_to_numpy, show_progress_bar):
        assert convert_to_numpy and not show_progress_bar and batch_size >= 1
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.encoded += len(texts)
        return np.stack([reference_vector(t) for t in texts])


def reference_vector(text):
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(8).astype(np.float64)


TEXTS = [f"text number {i} about {'cats' if i % 2 else 'stock markets'}" for i in range(23)]


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Patch the model loader; return (encoder holder, model dir)."""
    holder = {"encoder": FakeEncoder(), "loads": 0}
    model_dir = tmp_path / "model"
    model_dir.mkdir()

    def load(model=None, device="cpu"):
        holder["loads"] += 1
        return holder["encoder"]

    monkeypatch.setattr(h2q_text, "load_text_model", load)
    return holder, model_dir


def test_chunks_match_one_pass_and_are_reused(fake, tmp_path):
    holder, model_dir = fake
    want = np.stack([reference_vector(t) for t in TEXTS]).astype(np.float32)
    X = embed_texts(TEXTS, model_dir, chunk_size=5, batch_size=2, cache_dir=tmp_path / "c")
    assert X.dtype == np.float32 and X.shape == (23, 8)
    np.testing.assert_array_equal(X, want)
    assert holder["encoder"].calls == 5 and holder["loads"] == 1
    folders = list((tmp_path / "c").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("chunk-*.npy"))) == 5
    # a second run reads the chunks and never loads the model
    again = embed_texts(TEXTS, model_dir, chunk_size=5, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again, want)
    assert holder["loads"] == 1 and holder["encoder"].calls == 5
    # other texts get their own folder
    embed_texts(TEXTS[:-1], model_dir, chunk_size=5, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").iterdir())) == 2


def test_interrupted_run_resumes_where_it_stopped(fake, tmp_path):
    holder, model_dir = fake
    holder["encoder"] = FakeEncoder(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(TEXTS, model_dir, chunk_size=5, cache_dir=tmp_path / "c")
    holder["encoder"] = FakeEncoder()
    X = embed_texts(TEXTS, model_dir, chunk_size=5, cache_dir=tmp_path / "c")
    assert holder["encoder"].encoded == 23 - 15  # only the two chunks not yet on disk
    np.testing.assert_array_equal(X, embed_texts(TEXTS, FakeEncoder(), chunk_size=5))


def test_damaged_chunk_is_recomputed(fake, tmp_path):
    holder, model_dir = fake
    X = embed_texts(TEXTS, model_dir, chunk_size=10, cache_dir=tmp_path / "c")
    chunk = next((tmp_path / "c").glob("*/chunk-000001.npy"))
    chunk.write_bytes(b"not a numpy file")
    holder["encoder"] = FakeEncoder()
    np.testing.assert_array_equal(
        embed_texts(TEXTS, model_dir, chunk_size=10, cache_dir=tmp_path / "c"), X
    )
    assert holder["encoder"].encoded == 10


def test_fingerprint_separates_texts():
    assert texts_fingerprint(["ab", "c"]) != texts_fingerprint(["a", "bc"])
    assert texts_fingerprint(["ab", "c"]) == texts_fingerprint(("ab", "c"))


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (("one string",), {}, TypeError, "wrap it in a list"),
        (([],), {}, ValueError, "texts is empty"),
        ((["a", 3],), {}, TypeError, "item 1 is int"),
        ((["a"],), {"batch_size": 0}, ValueError, "batch_size must be"),
        ((["a"],), {"chunk_size": 1.5}, ValueError, "chunk_size must be"),
        ((["a"], object()), {}, TypeError, "model must be a path"),
        ((["a"], FakeEncoder()), {"cache_dir": "x"}, ValueError, "cache_dir needs a model"),
        ((["a"], "/no/such/model"), {}, FileNotFoundError, "no model directory"),
    ],
)
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        embed_texts(*args, **kwargs)


def text_dataset(n=12):
    return Dataset(
        name="tiny-text",
        X=TEXTS[:n],
        y=np.arange(n) % 3,
        kind="text",
        class_names=["a", "b", "c"],
    )


def test_dataset_helpers(fake, tmp_path):
    _, model_dir = fake
    data = text_dataset()
    X = embed_dataset(data, model_dir, cache_dir=tmp_path / "c")
    feats = as_feature_dataset(data, model_dir, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(feats.X, X)
    np.testing.assert_array_equal(feats.y, data.y)
    assert feats.meta["text_model"] == str(model_dir.resolve())
    with pytest.raises(TypeError, match="needs a text Dataset"):
        embed_dataset(feats)
    with pytest.raises(ValueError, match="backbone must be 'mlp'"):
        training_features(data, "small-cnn", cache_dir=tmp_path / "c")


def test_default_cache_dir_follows_h2q_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("H2Q_CACHE_DIR", str(tmp_path))
    assert h2q_text.default_text_cache_dir() == tmp_path / "text"


@pytest.mark.slow
def test_real_minilm_embeds_offline(tmp_path):
    """The text extra's all-MiniLM-L6-v2: 384-d unit rows, same as encode(), sensible."""
    texts = ["a small cat", "a kitten", "the stock market fell sharply"]
    X = embed_texts(texts, cache_dir=tmp_path, n_threads=1)
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2
    model = h2q_text.load_text_model()
    np.testing.assert_allclose(X, model.encode(texts), atol=1e-5)
    # the same directory given as a path: computed again (another cache key), same numbers
    path_X = embed_texts(texts, h2q_text.default_model_path(), cache_dir=tmp_path)
    np.testing.assert_allclose(path_X, X, atol=1e-5)
    assert len(list(tmp_path.iterdir())) == 2


def _model_files(folder):
    (folder / "1_Pooling").mkdir(exist_ok=True)
    files = {
        "model.safetensors": b"\x00weights" * 100,
        "config.json": b'{"hidden_size": 8}',
        "tokenizer.json": b'{"vocab": ["a", "b"]}',
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return files


@pytest.mark.parametrize(
    "changed", ["model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"]
)
def test_changed_model_files_are_never_served_from_the_cache(fake, tmp_path, caplog, changed):
    holder, model_dir = fake
    files = _model_files(model_dir)
    first = embed_texts(TEXTS, model_dir, chunk_size=10, cache_dir=tmp_path / "c")
    embed_texts(TEXTS, model_dir, chunk_size=10, cache_dir=tmp_path / "c")
    assert holder["loads"] == 1  # unchanged files: the cache answers
    content = bytearray(files[changed])
    content[-2] ^= 1  # same size, one bit
    (model_dir / changed).write_bytes(bytes(content))
    holder["encoder"] = FakeEncoder()
    with caplog.at_level("WARNING", logger="h2q.text"):
        again = embed_texts(TEXTS, model_dir, chunk_size=10, cache_dir=tmp_path / "c")
    assert holder["loads"] == 2 and holder["encoder"].encoded == len(TEXTS)  # all recomputed
    assert "changed since its embeddings were cached" in caplog.text
    np.testing.assert_array_equal(again, first)  # the fake encoder ignores the files


def test_model_digest_covers_weights_config_and_tokenizer(tmp_path):
    _model_files(tmp_path)
    before = h2q_text.model_digest(tmp_path)
    (tmp_path / "README.md").write_text("notes")
    assert h2q_text.model_digest(tmp_path) == before  # documentation does not count
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    assert h2q_text.model_digest(tmp_path) != before


def test_a_cache_dir_that_is_a_file_is_refused(fake, tmp_path):
    _, model_dir = fake
    (tmp_path / "c").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"cache folder .*c is a file; pass a folder"):
        embed_texts(TEXTS, model_dir, cache_dir=tmp_path / "c")
