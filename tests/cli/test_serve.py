"""``h2q serve``: bad command lines and files get one line and exit status 2 before serving."""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture
def run(cli_runner):
    return cli_runner(["serve"], catch_exit=True)


@pytest.fixture
def files(tmp_path):
    from h2q import SignQuantizer

    X = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    q = SignQuantizer(16).fit(X)
    q.save(tmp_path / "q.npz")
    np.save(tmp_path / "codes.npy", q.encode(X))
    np.save(tmp_path / "wide.npy", np.zeros((50, 4), dtype=np.uint8))
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "pass one of FOLDER, --demo, or --quantizer/--database; see h2q serve --help."),
        (("--demo", "somewhere"), "(got folder and demo)"),
        (("--demo", "--bits", "16"), "--bits picks a run of a results FOLDER; drop it here."),
        (("--demo", "--embeddings", "e.npz"), "--embeddings goes with --quantizer/--database"),
        (("--demo", "--port", "70000"), "--port 70000 is not a port number; pass 0 to 65535."),
    ],
)
def test_bad_command_lines(run, argv, message):
    status, out, err = run("serve", *argv)
    assert status == 2 and message in err and err.count("\n") == 1


def test_a_folder_that_is_neither_run_nor_results(run, tmp_path):
    status, _, err = run("serve", tmp_path)
    assert status == 2 and "holds neither grid.json" in err


def test_codes_of_another_width_than_the_quantizer(run, files):
    status, _, err = run(
        "serve", "--quantizer", files / "q.npz", "--database", files / "wide.npy", "--port", "0"
    )
    assert status == 2 and "makes 16-bit codes; pass the codes it encoded." in err


def test_a_port_in_use(run, files):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, _, err = run(
            "serve",
            "--quantizer",
            files / "q.npz",
            "--database",
            files / "codes.npy",
            "--port",
            port,
        )
    assert status == 2 and f"cannot listen on 127.0.0.1:{port}" in err
