"""Keep a grid's small outputs in docs/results/<job>/ and regenerate the pages made from them.

    python scripts/keep_results.py --from results/default
    python scripts/keep_results.py --job wordnet --from results/wordnet --commit 08f875e

The kept copy holds the tables, statistics, verdict, plots, report.md and summary.json (no
checkpoints, embeddings or cells); it replaces the old copy only once complete. `--commit`
records the h2q commit the grid was computed with (`--stage2-commit` the one its stage-2 cells
were redone with, after `h2q reproduce --redo-stage2`). Then the sections made from it are
regenerated (`python scripts/generate_docs.py --check` verifies them, and so does a test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from docgen.grids import JOBS
from docgen.kept import keep_outputs
from docgen.registry import JOB_SECTIONS, select
from docgen.sections import REPO, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--from", dest="results", required=True, help="results folder of `h2q reproduce`"
    )
    parser.add_argument("--job", choices=sorted(JOBS), default="default", help="which grid")
    parser.add_argument("--commit", help="the h2q commit the grid was computed with")
    parser.add_argument("--stage2-commit", help="with --commit: the stage-2 redo's commit")
    parser.add_argument("--repo", default=str(REPO), help="repository root (default: this one)")
    args = parser.parse_args(argv)
    repo = Path(args.repo)
    try:
        files = keep_outputs(
            args.results,
            repo / JOBS[args.job],
            commit=args.commit,
            stage2_commit=args.stage2_commit,
        )
        print(f"kept {len(files)} files in {JOBS[args.job]}")
        changed = update(select(list(JOB_SECTIONS[args.job])), repo)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("rewrote " + (", ".join(changed) if changed else "nothing (already up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
