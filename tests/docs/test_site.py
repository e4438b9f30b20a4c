"""The documentation site builds with `mkdocs build --strict` (as CI runs it), offline, with
every page in its navigation, and user-facing text holds no project history."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "mkdocs.yml"


def _nav_pages() -> list[str]:
    """The pages named in mkdocs.yml's nav (read as text: the file has no YAML tags)."""
    yaml = pytest.importorskip("yaml")
    nav = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["nav"]
    return [page for item in nav for page in item.values()]


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="needs the docs extra: pip install 'h2q[docs]'")
    pytest.importorskip("material", reason="needs the docs extra: pip install 'h2q[docs]'")
    pytest.importorskip("mkdocstrings", reason="needs the docs extra: pip install 'h2q[docs]'")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in _nav_pages():
        assert (site / page.replace(".md", ".html")).is_file(), page
    api = (site / "api.html").read_text(encoding="utf-8")
    assert 'id="h2q.quantizers.HouseholderQuantizer.fit"' in api  # from the docstrings
    html = "".join(p.read_text(encoding="utf-8") for p in site.glob("*.html"))
    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html  # offline


def test_every_page_is_in_the_nav():
    pages = set(_nav_pages())
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert on_disk == pages, (on_disk - pages, pages - on_disk)
    assert {"serving.md", "asymmetric.md", "gpu.md", "api.md"} <= pages


def test_site_is_offline():
    text = CONFIG.read_text(encoding="utf-8")
    assert re.search(r"^\s+font: false$", text, re.M)  # no web fonts
    plugins = re.search(r"^plugins:\n((?:\s+- .*\n|\s{6,}.*\n)+)", text, re.M).group(1)
    names = re.findall(r"^  - (\w[\w-]*)", plugins, re.M)
    assert names == ["search", "mkdocstrings"]  # nothing that fetches


HISTORY = re.compile(r"issue [0-9]|this round|last round", re.I)


def test_no_history_in_user_facing_text():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert hits == [], "\n".join(hits)


def test_no_module_of_the_library_writes_docs():
    """The documentation tooling lives in scripts/docgen; nothing under src/h2q names the
    README or the pages' markers."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "h2q").rglob("*.py")
        if re.search(r"README\.md|:begin \(generated|replace_section", path.read_text("utf-8"))
    ]
    assert offenders == []


def test_license_and_citation():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    yaml = pytest.importorskip("yaml")
    import h2q

    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the h2q authors" in license_text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["version"] == h2q.__version__ and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["title"] == "Deep Hashing via Householder Quantization"
    assert paper["authors"][0]["family-names"] == "Schwengber"
    assert "2311.04207" in paper["url"]


def test_changelog_has_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in text and "## [Unreleased]" in text
    for kind in ("### Added", "### Changed", "### Fixed"):
        assert kind in text


def test_design_page_names_every_module():
    """The design page has a line for every module and package of the library."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    package = ROOT / "src" / "h2q"
    names = sorted(
        p.stem if p.suffix == ".py" else p.name
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    )
    missing = [name for name in names if f"`h2q.{name}`" not in text]
    assert missing == []
