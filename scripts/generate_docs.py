"""Regenerate (or check) the generated sections of README.md and docs/ from the kept files.

    python scripts/generate_docs.py                 # rewrite every generated section
    python scripts/generate_docs.py --check         # change nothing; exit 1 when one differs
    python scripts/generate_docs.py --only results  # one section (see --list)

A generated section lies between two marker comments and is made from kept result files alone
(docs/results/<job>/ for the grids, benchmarks/results/ for the benchmarks): nothing between
the markers is typed by hand. After a new grid run, `scripts/keep_results.py` copies its
outputs first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from docgen.registry import SECTIONS, select
from docgen.sections import REPO, check, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this section")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument("--repo", default=str(REPO), help="repository root (default: this one)")
    args = parser.parse_args(argv)
    if args.list:
        for s in SECTIONS:
            print(f"{s.name:16} {s.page:20} from {s.source}")
        return 0
    repo = Path(args.repo)
    try:
        sections = select(args.only)
        if args.check:
            lines = check(sections, repo)
            if lines:
                print("\n".join(lines[:60]))
                print(
                    "the generated sections differ from the kept files; run "
                    "`python scripts/generate_docs.py` to regenerate them.",
                    file=sys.stderr,
                )
                return 1
            print(f"{len(sections)} generated sections match the kept files.")
            return 0
        changed = update(sections, repo)
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        print(
            f"error: {what or type(exc).__name__}; rerun what writes the kept file.",
            file=sys.stderr,
        )
        return 2
    print("rewrote " + (", ".join(changed) if changed else "nothing (already up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
