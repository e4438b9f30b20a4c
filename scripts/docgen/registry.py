"""Every generated section of README.md and docs/, and the page it lives in."""

from __future__ import annotations

from pathlib import Path

from . import bench_pages, grids, headline, scale, text
from .grids import JOBS
from .sections import Section


def _main_job(repo: Path, page_dir: Path) -> list[str]:
    return grids.main_job_lines(repo / JOBS["default"], page_dir)


def _wordnet(repo: Path, page_dir: Path) -> list[str]:
    return grids.wordnet_lines(repo / JOBS["wordnet"], page_dir)


_BENCH = "benchmarks/results"

#: The generated sections, in the order they are rewritten.
SECTIONS: tuple[Section, ...] = (
    Section(
        "headline",
        "README.md",
        f"docs/results/default, {_BENCH}/bench_flat.json, bench_scale_*.json, bench_text.json",
        headline.render,
    ),
    Section("results", "docs/results.md", "docs/results/default", _main_job),
    Section("wordnet-results", "docs/results.md", "docs/results/wordnet", _wordnet),
    Section(
        "scale-results",
        "docs/benchmarks.md",
        f"{_BENCH}/bench_flat.json and bench_scale_*.json",
        scale.render,
    ),
    Section("text-table", "docs/benchmarks.md", f"{_BENCH}/bench_text.json", text.render),
    Section(
        "kept-benchmarks", "docs/benchmarks.md", f"{_BENCH}/*.json and *.md", bench_pages.render
    ),
)

#: Which sections each grid's kept folder feeds (``scripts/keep_results.py --job``).
JOB_SECTIONS: dict[str, tuple[str, ...]] = {
    "default": ("headline", "results"),
    "wordnet": ("wordnet-results",),
}


def select(names: list[str] | None) -> list[Section]:
    """The sections named (all when ``names`` is None); ValueError for an unknown name."""
    if names is None:
        return list(SECTIONS)
    known = {s.name: s for s in SECTIONS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown section {', '.join(unknown)}; choose from {', '.join(known)}.")
    return [known[n] for n in names]
