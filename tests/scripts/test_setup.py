"""scripts/setup.sh stops with the exact apt-get command when a Debian package is missing and
it cannot install it, and picks the Java package the release has (run in --check-system mode,
with a PATH of stand-in commands: a non-root `id`, no java, a scripted `apt-cache`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"


def _bin(tmp_path: Path, *, apt_cache_knows: list[str] | None) -> Path:
    """A PATH folder with dirname, a non-root id and (optionally) an apt-cache that knows
    only the packages given; no java, no apt-get."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "dirname").symlink_to(shutil.which("dirname"))
    (folder / "id").write_text("#!/bin/sh\necho 1000\n")
    if apt_cache_knows is not None:
        known = " ".join(apt_cache_knows)
        (folder / "apt-cache").write_text(
            f'#!/bin/sh\nfor p in {known}; do [ "$2" = "$p" ] && exit 0; done\nexit 100\n'
        )
    for path in folder.iterdir():
        if not path.is_symlink():
            path.chmod(0o755)
    return folder


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    bash = shutil.which("bash")
    return subprocess.run(
        [bash, str(SCRIPT), *args],
        env={**os.environ, "PATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


needs_data = pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
    or not Path("/usr/share/wordnet/data.verb").exists(),
    reason="this check runs where Fashion-MNIST and WordNet are installed (java stands missing)",
)


@needs_data
@pytest.mark.parametrize(
    ("knows", "package"),
    [
        (["openjdk-17-jre-headless", "default-jre-headless"], "openjdk-17-jre-headless"),
        (["default-jre-headless"], "default-jre-headless"),  # a release without Java 17
        (None, "default-jre-headless"),  # no apt-cache to ask
    ],
)
def test_missing_java_is_an_error_with_the_install_command(tmp_path, knows, package):
    proc = _run(_bin(tmp_path, apt_cache_knows=knows), "--test", "--check-system")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"sudo apt-get install -y --no-install-recommends {package}\n" in proc.stderr
    assert "setup: done" not in proc.stdout


@needs_data
def test_nothing_missing_passes(tmp_path):
    proc = _run(_bin(tmp_path, apt_cache_knows=[]), "--check-system")  # no Java needed
    assert proc.returncode == 0, proc.stderr
    assert "every Debian package needed is present" in proc.stdout


def test_unknown_option_is_a_usage_error(tmp_path):
    proc = _run(_bin(tmp_path, apt_cache_knows=[]), "--tests")
    assert proc.returncode == 2 and "unknown option --tests" in proc.stderr
