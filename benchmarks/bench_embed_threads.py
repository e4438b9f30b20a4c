"""MiniLM embedding of WordNet texts on 1 thread vs 2, to extrapolate the time of all of them.

Embeds the same 2,000 WordNet texts (a seeded random sample of ``load_wordnet()``, so their
lengths are typical) with all-MiniLM-L6-v2 (the ``text`` extra) and ``n_threads=1`` and
``n_threads=2``, interleaved after a warm-up, no cache; reports the median time of each, the
texts per second, and two extrapolations to the 95,882 texts of WordNet: from each rate
directly, and the 1-thread time measured once for the whole set (48 min, ``h2q embed
--threads 1``, measured once) scaled by the 2-thread / 1-thread ratio measured here.

    python benchmarks/bench_embed_threads.py [--n 2000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import (  # noqa: E402
    environment,
    environment_markdown,
    interleaved_timings,
    write_results,
)

from h2q.data import load_wordnet  # noqa: E402
from h2q.text import embed_texts, load_text_model  # noqa: E402

#: Wall time of ``h2q embed --dataset wordnet --threads 1`` on all texts (this machine, shared).
FULL_ONE_THREAD_S = 48 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="texts timed (default 2000)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    env = environment()
    import sentence_transformers

    env["versions"]["sentence_transformers"] = sentence_transformers.__version__
    data = load_wordnet()
    rng = np.random.default_rng(0)
    texts = [data.X[i] for i in rng.choice(len(data), args.n, replace=False)]
    encoder = load_text_model()
    embed_texts(texts[:256], encoder, n_threads=1)  # load the weights into the caches
    methods = {
        f"{t} thread{'s' if t > 1 else ''}": lambda t=t: embed_texts(texts, encoder, n_threads=t)
        for t in (1, 2)
    }
    timing = interleaved_timings(methods, args.repeats)
    env["load_average_end"] = list(os.getloadavg())
    n_all = len(data)
    one, two = (timing[name]["median_s"] for name in methods)
    rows = []
    for name, t in zip(methods, (one, two), strict=True):
        rows.append(
            {
                "threads": name,
                "median_s": t,
                "texts_per_s": args.n / t,
                "all_texts_min": n_all / (args.n / t) / 60,
            }
        )
    ratio = two / one
    lines = [
        "# MiniLM embedding of WordNet texts: 1 thread vs 2",
        "",
        f"{args.n} texts (seeded random sample of the {n_all:,}), all-MiniLM-L6-v2, batches of "
        f"64, medians of {args.repeats} interleaved runs after a warm-up, normal priority. The "
        "machine was shared with other jobs; see the load averages below.",
        "",
        "| threads | median s | texts/s | all texts, extrapolated (min) |",
        "|---|---:|---:|---:|",
        *(
            f"| {r['threads']} | {r['median_s']:.1f} | {r['texts_per_s']:.1f} | "
            f"{r['all_texts_min']:.0f} |"
            for r in rows
        ),
        "",
        f"2 threads / 1 thread: {ratio:.2f}; the 48 min measured for all texts on 1 thread "
        f"scaled by it: {FULL_ONE_THREAD_S * ratio / 60:.0f} min (an extrapolation).",
        "",
        environment_markdown(env),
    ]
    record = {
        "n_texts": args.n,
        "n_all": n_all,
        "repeats": args.repeats,
        "timings": timing,
        "rows": rows,
        "ratio_2_over_1": ratio,
        "full_one_thread_s": FULL_ONE_THREAD_S,
        "full_two_threads_extrapolated_s": FULL_ONE_THREAD_S * ratio,
        "environment": env,
    }
    json_path, md_path = write_results("bench_embed_threads", record, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
