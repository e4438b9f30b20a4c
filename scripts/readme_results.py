"""Keep the main job's small outputs and (re)generate the README's results section from them.

    python scripts/readme_results.py --from results/default   # copy, then rewrite the README
    python scripts/readme_results.py                          # rewrite from the kept copy
    python scripts/readme_results.py --check                  # exit 1 when they disagree
    python scripts/readme_results.py --job wordnet --from results/wordnet --commit 08f875e

The kept copy lives in docs/results/default (tables, statistics, verdict, plots, report.md,
summary.json; no checkpoints, embeddings or cells); the README's section between its
``results:begin`` and ``results:end`` markers is generated from it alone
(:mod:`h2q.experiments.readme`). ``--job wordnet`` does the same for the WordNet grid
(``h2q reproduce --dataset wordnet``): kept in docs/results/wordnet, README section between
the ``wordnet-results`` markers. ``--commit`` records the commit the grid was computed with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from h2q.experiments.readme import JOBS, check_readme, keep_outputs, update_readme

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--from",
        dest="results",
        help="results folder of `h2q reproduce` to copy into the kept folder first",
    )
    parser.add_argument(
        "--job",
        choices=sorted(JOBS),
        default="default",
        help="which grid: the main job (default) or the WordNet grid",
    )
    parser.add_argument(
        "--kept",
        help="the kept copy (default: docs/results/<job> in this repository)",
    )
    parser.add_argument(
        "--commit",
        help="with --from: the h2q commit the grid was computed with (kept in provenance.json)",
    )
    parser.add_argument(
        "--stage2-commit",
        help="with --commit: the commit the stage-2 cells were redone with (--redo-stage2)",
    )
    parser.add_argument(
        "--readme", default=str(REPO / "README.md"), help="the README (default: this repository's)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 when the README's section differs from the kept outputs",
    )
    args = parser.parse_args(argv)
    if args.kept is None:
        args.kept = str(REPO / JOBS[args.job].kept)
    if (args.commit is not None or args.stage2_commit is not None) and not args.results:
        parser.error("--commit is recorded when copying a results folder; pass --from too")
    try:
        if args.check:
            if args.results:
                parser.error("--check verifies the kept copy; it takes no --from")
            diff = check_readme(args.readme, args.kept, args.job)
            if diff:
                print("\n".join(diff[:60]))
                print(
                    f"{args.readme} does not match {args.kept}; run "
                    f"`python scripts/readme_results.py --job {args.job}` to regenerate it.",
                    file=sys.stderr,
                )
                return 1
            print(f"{args.readme} matches {args.kept}.")
            return 0
        if args.results:
            files = keep_outputs(
                args.results, args.kept, commit=args.commit, stage2_commit=args.stage2_commit
            )
            print(f"kept {len(files)} files in {args.kept}")
        changed = update_readme(args.readme, args.kept, args.job)
        print(f"{args.readme}: results section {'rewritten' if changed else 'already up to date'}")
        return 0
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
