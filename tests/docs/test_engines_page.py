"""The engines page runs as written, on tiny embeddings: every command of its bash block (the
``python -c`` step included) and its Python block, against the real Milvus Lite and Spark
``local[2]``; the results match ``HammingIndex``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="needs the milvus extra: pip install 'h2q[milvus]'")
pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'h2q[milvus]'")
pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'h2q[spark]'")
pytest.importorskip("pyarrow", reason="needs the spark extra: pip install 'h2q[spark]'")
import pyarrow.parquet as pq  # noqa: E402

from h2q import HammingIndex, load_embeddings, load_quantizer  # noqa: E402
from h2q.cli import main as cli_main  # noqa: E402
from h2q.embeddings import save_embeddings  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:UserWarning"),
]

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "engines.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = PAGE.index(f"## {title}\n")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start : end if end != -1 else None]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section("On one machine"), re.S)


def _steps(block: str) -> list[tuple[str, object]]:
    """The bash block as ("python", source) and ("h2q", argv) steps, in order."""
    python = re.findall(r"^python -c '(.*?)'$", block, re.S | re.M)
    block = re.sub(r"^python -c '.*?'$", "__PYTHON__", block, flags=re.S | re.M)
    steps, snippets = [], iter(python)
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("#")[0].strip()
        if line == "__PYTHON__":
            steps.append(("python", next(snippets)))
        elif line:
            argv = shlex.split(line)
            assert argv[0] == "h2q", f"a step that the test cannot run: {line!r}"
            steps.append(("h2q", argv[1:]))
    return steps


def _reference(db_codes, q_codes, n_bits, k):
    index = HammingIndex(n_bits, backend="numpy")
    index.add(db_codes)
    return index.search(q_codes, k)


def test_scaling_out_runs_as_written(tmp_path, monkeypatch, capsys):
    (bash,) = _blocks("bash")
    (python,) = _blocks("python")
    steps = _steps(bash)
    assert [s[1][0] if s[0] == "h2q" else s[0] for s in steps] == [
        "export", "search", "python", "spark-encode", "encode", "spark-search",
    ]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 20)  # keep it fast
    # the run folder the page names, with small embeddings of 32 features
    run_dir = Path(re.search(r"--embeddings (\S+)/embeddings\.npz", bash).group(1))
    run_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 32))
    folds = {}
    for fold, n in (("train", 300), ("val", 60), ("query", 20), ("database", 250)):
        y = rng.integers(0, 5, n)
        folds[fold] = (centers[y] + 0.5 * rng.normal(size=(n, 32))).astype(np.float32)
        folds[f"y_{fold}"] = y
    save_embeddings(run_dir / "embeddings.npz", **folds)
    # the quantizer the page starts from (the README's quickstart fits it)
    assert cli_main.main(["fit", str(run_dir / "embeddings.npz"), "--out", "q.npz",
                          "--no-progress"]) == 0  # fmt: skip

    for kind, step in steps:
        if kind == "python":
            exec(compile(step, "docs/engines.md (python -c)", "exec"), {})
            continue
        argv = step
        status = cli_main.main(argv)
        _, err = capsys.readouterr()
        assert status == 0, (argv, err)

    quantizer = load_quantizer("q.npz")
    data = load_embeddings(run_dir / "embeddings.npz")
    db_codes, q_codes = quantizer.encode(data.database), quantizer.encode(data.query)
    D_ref, I_ref = _reference(db_codes, q_codes, quantizer.n_bits_, 100)
    np.testing.assert_array_equal(np.load("queries.npy"), q_codes)
    table = pq.read_table("codes.parquet").sort_by("id")
    np.testing.assert_array_equal(table.column("id").to_numpy(), np.arange(len(db_codes)))
    stored = np.stack([np.frombuffer(b, np.uint8) for b in table.column("code").to_pylist()])
    np.testing.assert_array_equal(stored, db_codes)
    for name in ("milvus_result.npz", "spark_result.npz"):
        with np.load(name) as result:
            np.testing.assert_array_equal(result["D"], D_ref, err_msg=name)
            np.testing.assert_array_equal(result["I"], I_ref, err_msg=name)

    # the Python block, on the files the commands wrote; Spark's JVM may have started in an
    # earlier test's folder (it outlives session.stop()), so give it the absolute path
    assert '"items.parquet"' in python
    python = python.replace('"items.parquet"', repr(str(tmp_path / "items.parquet")))
    namespace: dict = {}
    exec(compile(python, "docs/engines.md (python)", "exec"), namespace)
    try:
        np.testing.assert_array_equal(namespace["D"], D_ref)
        np.testing.assert_array_equal(namespace["I"], I_ref)
        assert namespace["index"].ntotal == len(db_codes)
    finally:
        namespace["spark"].stop()
