"""scripts/precompile.py writes the bytecode of what it imports even where
PYTHONDONTWRITEBYTECODE is set, reports a failed import, and names only importable modules."""

from __future__ import annotations

import importlib.util
import os

import precompile
import pytest


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``pc_pkg`` with two modules on the children's PYTHONPATH; bytecode writing
    switched off in their environment."""
    root = tmp_path / "pc_pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "one.py").write_text("X = 1\n")
    (root / "two.py").write_text("Y = 2\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    return root


def _compiled(root):
    return sorted(p.name.split(".")[0] for p in (root / "__pycache__").glob("*.pyc"))


def test_imports_each_group_and_writes_its_bytecode(package):
    assert precompile.main((("pc_pkg.one",), ("pc_pkg.two",))) == 0
    assert _compiled(package) == ["__init__", "one", "two"]


def test_a_failed_import_is_reported(package, capsys):
    assert precompile.main((("pc_pkg.one",), ("pc_pkg.missing",))) == 1
    assert "precompile: an import failed" in capsys.readouterr().err
    assert "one" in _compiled(package)  # the other group still ran


def test_the_main_jobs_modules_exist():
    names = [name for group in precompile.GROUPS for name in group]
    assert [n for n in names if importlib.util.find_spec(n) is None] == []
