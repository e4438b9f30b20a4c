"""Every CLI failure is one line and exit status 2; bugs keep their traceback."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from h2q import _io
from h2q.cli import _common, quantize
from h2q.cli import main as cli_main
from h2q.quantizers import ITQQuantizer


@pytest.fixture
def h2q(cli_runner):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    return cli_runner(("quantize",))


def _one_line_error(status, err, command, match):
    assert status == 2
    assert err.startswith(f"h2q {command}: error: ") and err.count("\n") == 1, err
    assert match in err


@pytest.fixture
def codes(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "db.npy", rng.integers(0, 256, (50, 2), dtype=np.uint8))
    np.save(tmp_path / "q.npy", rng.integers(0, 256, (4, 2), dtype=np.uint8))
    return tmp_path


def test_a_type_error_from_a_bug_keeps_its_traceback(h2q, codes, monkeypatch):
    def buggy(args):
        return len(3)  # a bug: TypeError

    monkeypatch.setattr(quantize, "_run_search", buggy)
    with pytest.raises(TypeError, match="has no len"):
        h2q(
            "search",
            "--database",
            codes / "db.npy",
            "--queries",
            codes / "q.npy",
            "-k",
            3,
            "--out",
            codes / "r.npz",
        )


def test_integer_embeddings_are_a_user_error(h2q, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((20, 4), dtype=np.int64))
    status, _, err = h2q("fit", tmp_path / "x.npy", "--out", tmp_path / "q.npz")
    _one_line_error(status, err, "fit", "floating-point embeddings are expected")


def test_quantizer_file_without_params(h2q, tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    q = ITQQuantizer(max_iter=2).fit(X)
    arrays = {"rotation_": q.rotation_}
    _io.save_state(tmp_path / "bad.npz", "ITQQuantizer", 1, arrays, {"fitted": {}})
    status, _, err = h2q(
        "encode", tmp_path / "bad.npz", tmp_path / "x.npy", "--out", tmp_path / "c.npz"
    )
    _one_line_error(status, err, "encode", "lacks the setting 'params'")
    assert not (tmp_path / "c.npz").exists()


def test_missing_entry_is_still_a_key_error(tmp_path):
    _io.save_state(tmp_path / "s.npz", "Thing", 1, {}, {"a": 1})
    arrays, meta = _io.load_state(tmp_path / "s.npz", "Thing", 1)
    assert meta["a"] == 1 and meta.get("b") is None
    with pytest.raises(KeyError):
        meta["b"]
    with pytest.raises(_io.FileFormatError, match=r"lacks the array 'codes'"):
        arrays["codes"]


def test_search_k_larger_than_the_database_is_refused_before_work(h2q, codes, monkeypatch):
    monkeypatch.setattr(
        "h2q.search.HammingIndex.search", lambda *a, **k: pytest.fail("searched anyway")
    )
    status, _, err = h2q(
        "search",
        "--database",
        codes / "db.npy",
        "--queries",
        codes / "q.npy",
        "-k",
        1_000_000_000,
        "--out",
        codes / "r.npz",
    )
    _one_line_error(
        status, err, "search", "k=1000000000 exceeds the 50 items in the index; pass -k <= 50."
    )
    assert not (codes / "r.npz").exists()


def test_search_result_larger_than_memory_is_refused(h2q, codes, monkeypatch):
    monkeypatch.setattr(_common, "available_memory", lambda: 1000)
    status, _, err = h2q(
        "search",
        "--database",
        codes / "db.npy",
        "--queries",
        codes / "q.npy",
        "-k",
        50,
        "--out",
        codes / "r.npz",
    )
    _one_line_error(status, err, "search", "more than the 0.0 GiB of memory available")


def test_fit_bits_larger_than_features_fails_before_work(h2q, tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.ones((20, 4), dtype=np.float32))
    monkeypatch.setattr(
        "h2q.quantizers.HouseholderQuantizer.fit", lambda *a, **k: pytest.fail("fitted anyway")
    )
    status, _, err = h2q("fit", tmp_path / "x.npy", "--out", tmp_path / "q.npz", "--bits", 100_000)
    _one_line_error(status, err, "fit", "--bits 100000 is larger than the embedding width 4")


def test_unwritable_folder_is_one_line(h2q, tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(20, 4)).astype("f4"))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr("tempfile.mkstemp", denied)
    status, _, err = h2q("fit", tmp_path / "x.npy", "--out", tmp_path / "q.npz", "--no-progress")
    _one_line_error(status, err, "fit", "Permission denied")


# --- threads -------------------------------------------------------------------------------------


@pytest.fixture
def seen_threads(monkeypatch):
    seen = []

    def spy(args):
        seen.append(torch.get_num_threads())
        return 0

    monkeypatch.setattr(quantize, "_run_fit", spy)
    return seen


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], None, 1),  # the stage-2 default
        (["--threads", "2"], None, 2),
        ([], "3", 3),  # $H2Q_NUM_THREADS replaces the default
        (["--threads", "2"], "3", 2),  # the option wins
    ],
)
def test_threads_option(h2q, seen_threads, tmp_path, monkeypatch, argv, env, expected):
    if env is None:
        monkeypatch.delenv("H2Q_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("H2Q_NUM_THREADS", env)
    before = torch.get_num_threads()
    status, _, err = h2q("fit", tmp_path / "x.npy", "--out", tmp_path / "q.npz", *argv)
    assert status == 0, err
    assert seen_threads == [expected]
    assert torch.get_num_threads() == before  # restored


def _leaf_commands(parser, prefix=""):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix.strip(), parser
    for sub in subs:
        for name, command in sub.choices.items():
            yield from _leaf_commands(command, f"{prefix} {name}")


def test_every_command_has_threads():
    leaves = dict(_leaf_commands(cli_main.build_parser()))
    assert {"fit", "train", "export milvus", "index build", "spark-encode", "embed"} <= set(leaves)
    for name, command in leaves.items():
        assert "--threads" in command.format_help(), name


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a numpy file", "is not a readable numpy file"),
        (None, "but no 'codes'"),
    ],
)
def test_bad_codes_files(h2q, codes, content, match):
    bad = codes / "bad.npz"
    if content is None:
        np.savez(bad, other=np.zeros((3, 2), dtype=np.uint8))
    else:
        bad.write_bytes(content)
    status, _, err = h2q(
        "search", "--database", bad, "--queries", codes / "q.npy", "-k", 3, "--out",
        codes / "r.npz",
    )  # fmt: skip
    _one_line_error(status, err, "search", match)


def test_codes_and_features_of_different_lengths(h2q, codes):
    np.savez(
        codes / "db.npz",
        codes=np.zeros((5, 2), dtype=np.uint8),
        features=np.zeros((4, 16), dtype=np.float32),
    )
    status, _, err = h2q(
        "search", "--database", codes / "db.npz", "--queries", codes / "q.npy", "-k", 3,
        "--out", codes / "r.npz",
    )  # fmt: skip
    _one_line_error(status, err, "search", "holds 5 codes but 4 feature rows")


def test_no_import_circle_between_the_stage2_command_modules():
    import subprocess
    import sys

    code = "import sys, h2q.cli._evaluate;print('h2q.cli.quantize' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_broken_import_inside_h2q_keeps_its_traceback(h2q, codes, monkeypatch):
    def buggy(args):
        from h2q.search import no_such_name  # noqa: F401  (a bug: ImportError inside h2q)

    monkeypatch.setattr(quantize, "_run_search", buggy)
    with pytest.raises(ImportError, match="no_such_name"):
        h2q("search", "--database", codes / "db.npy", "--queries", codes / "q.npy", "-k", 3,
            "--out", codes / "r.npz")  # fmt: skip


def test_a_missing_optional_package_is_one_line(h2q, codes, monkeypatch):
    def needs(args):
        import h2q_no_such_optional_package  # noqa: F401

    monkeypatch.setattr(quantize, "_run_search", needs)
    status, _, err = h2q("search", "--database", codes / "db.npy", "--queries", codes / "q.npy",
                         "-k", 3, "--out", codes / "r.npz")  # fmt: skip
    _one_line_error(status, err, "search", "No module named 'h2q_no_such_optional_package'")
