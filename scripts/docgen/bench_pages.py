"""Kept benchmark tables, shown as the benchmark scripts wrote them.

Each benchmark in ``benchmarks/`` writes a JSON record and a Markdown table made from it into
``benchmarks/results/``; the benchmarks page shows the Markdown of :data:`SHOWN` under a line
that names the machine (read from the JSON record) and the files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: The kept benchmark results shown, in order: (file stem, heading).
SHOWN: tuple[tuple[str, str], ...] = (
    ("stage2", "Stage 2: the default solver, the paper's loop and ITQ"),
    ("bench_encode", "Encoding 10^6 embeddings"),
    ("bench_contention", "Commands beside another job (threads)"),
    ("bench_milvus", "Milvus Lite against HammingIndex"),
    ("bench_spark", "Spark encode, 10^7 rows"),
    ("bench_spark_1000000", "Spark encode, 10^6 rows"),
    ("bench_embed_threads", "Text embedding on one and two threads"),
    ("time_main_job_134a802", "The main job from a fresh clone"),
    ("time_main_job", "The main job from a fresh clone, one commit twice"),
    ("time_main_job_128265c", "The main job from a fresh clone, a slower machine"),
    ("time_main_job_dfc793c", "The main job from a fresh clone, an earlier pair"),
    ("time_main_job_0f936fd", "The main job from a fresh clone, the bfloat16 head's pair"),
    ("compare_precision", "The main job's numbers: bfloat16 head against float32"),
    ("profile_reproduce", "The main job, one (method, bits) group"),
    ("profile_stage1", "The main job, one stage-1 run of each kind"),
    ("bench_extract", "Frozen-backbone features: memory layout and batch size"),
    ("bench_validation", "The stage-1 validation score"),
    ("adam_variants", "The stage-1 loop's Adam: fused and multi-tensor steps over seeds"),
    ("full_estimate", "Time estimate of `h2q reproduce --full`"),
    ("bench_stage1", "Stage 1, per method"),
    ("bench_asymmetric", "Asymmetric scoring against faiss RaBitQ"),
    ("bench_serve", "The search service under load"),
)


def environment(record: dict[str, Any]) -> dict[str, Any]:
    """The machine record of a benchmark JSON (its key differs between benchmarks)."""
    for candidate in (
        record.get("environment"),
        record.get("hardware"),
        (record.get("meta") or {}).get("environment"),
    ):
        if isinstance(candidate, dict):
            return candidate
    raise ValueError("the record names no machine (no environment, hardware or meta.environment)")


def machine_line(record: dict[str, Any]) -> str:
    """``"AMD EPYC (2 CPUs), load average 5.1 -> 4.7"``.

    A record of several data sets (``{"datasets": {name: record}}``) names the machine once
    and the load of each data set's run.
    """
    if "datasets" in record and "environment" not in record:
        parts = {name: machine_line(sub) for name, sub in record["datasets"].items()}
        machines = {line.split(", load average")[0] for line in parts.values()}
        loads = "; ".join(f"{name}: {line.split(', ')[-1]}" for name, line in parts.items())
        return f"{' / '.join(sorted(machines))}; {loads}"
    env = environment(record)
    cpu = env.get("cpu") or env.get("cpu_model") or "an unrecorded CPU"
    cpus = env.get("n_cpus") or env.get("cpus") or env.get("cpu_count") or "?"
    start = env.get("load_average_start") or env.get("load_average_before")
    end = env.get("load_average_end") or env.get("load_average_after")
    load = f", load average {start[0]:.1f} -> {end[0]:.1f}" if start and end else ""
    return f"{cpu} ({cpus} CPUs){load}"


#: Lines of a benchmark's Markdown that name its machine or load, which the machine line above
#: the table already gives (the machine is named once per table).
_MACHINE_LINES = re.compile(r"^(- CPU: |- hardware: |- Load average |Environment: `)")


def _demote(markdown: str) -> list[str]:
    """The table's lines without its title and machine lines, its headings two levels down."""
    lines = markdown.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    lines = [ln for ln in lines if not _MACHINE_LINES.match(ln)]
    return [re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", ln) for ln in lines]


def render(repo: Path, page_dir: Path) -> list[str]:
    """Every table of :data:`SHOWN`, each under its heading and machine line."""
    results = repo / "benchmarks" / "results"
    out: list[str] = []
    for stem, heading in SHOWN:
        record = json.loads((results / f"{stem}.json").read_text(encoding="utf-8"))
        markdown = (results / f"{stem}.md").read_text(encoding="utf-8")
        out += [
            f"### {heading}",
            "",
            f"Machine: {machine_line(record)}. Files: `benchmarks/results/{stem}.json` "
            f"(record) and `{stem}.md` (this table).",
            "",
            *[line.rstrip() for line in _demote(markdown)],
            "",
        ]
    return out[:-1]
