"""Check: kill -9 at random moments of `h2q export milvus --force`; what does the name serve?

A Milvus Lite collection ``items`` of ``--old`` random 64-bit codes is exported by the CLI.
One uninterrupted ``--force`` export of ``--new`` other codes is timed (then the old codes
are exported again). Then exports of the new codes with ``--force`` are started and killed
(SIGKILL) after a random delay, uniform in 5 %..95 % of that time, until ``--moments`` runs
were killed (a run that finished before its delay, on a busy machine, is recorded as not
killed). After each one a fresh process opens ``items`` and searches 100 queries (k = 10).
Recorded per moment: the delay, whether the name served the old collection or the complete
new one, whether D and I are identical to ``HammingIndex`` over that collection's codes, and
how many collections no name serves (orphans, removed by the next write). When the new
collection is served, the old one is exported again before the next moment. A last write
checks that no orphan remains.

Usage::

    python benchmarks/bench_milvus_kill.py [--old 40000] [--new 100000] [--moments 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import environment, environment_markdown, write_results

_OPEN_SEARCH = """
import json, sys, time, numpy as np
from h2q.integrations.milvus import MilvusHammingIndex
from h2q.integrations._milvus_names import is_h2q_collection, NameRecord
for attempt in range(120):  # the killed run's server may hold the file for a moment
    try:
        index = MilvusHammingIndex(sys.argv[1], "items")
        break
    except Exception:
        time.sleep(0.25)
D, I = index.search(np.load(sys.argv[2]), 10)
served = NameRecord(index._client).targets()
names = index._client.list_collections()
orphans = [n for n in names if is_h2q_collection(n) and n not in served]
np.savez(sys.argv[3], D=D, I=I)
print(json.dumps({"ntotal": index.ntotal, "orphans": len(orphans)}))
"""


def _export(cli: list[str], codes: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([*cli, "--codes", str(codes), "--force"], env=env, check=True)
    return time.perf_counter() - start


def _served(db: Path, queries: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", _OPEN_SEARCH, str(db), str(queries), str(out)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    state = json.loads(run.stdout.strip().splitlines()[-1])
    with np.load(out) as result:
        state["D"], state["I"] = result["D"], result["I"]
    return state


def _reference(codes: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from h2q.search import HammingIndex

    index = HammingIndex(64, backend="numpy")
    index.add(codes)
    return index.search(queries, 10)


def run(folder: Path, n_old: int, n_new: int, moments: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    arrays = {
        "old.npy": rng.integers(0, 256, (n_old, 8), dtype=np.uint8),
        "new.npy": rng.integers(0, 256, (n_new, 8), dtype=np.uint8),
        "q.npy": rng.integers(0, 256, (100, 8), dtype=np.uint8),
    }
    for name, array in arrays.items():
        np.save(folder / name, array)
    expected = {
        "old": _reference(arrays["old.npy"], arrays["q.npy"]),
        "new": _reference(arrays["new.npy"], arrays["q.npy"]),
    }
    db = folder / "kill.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cli = [sys.executable, "-m", "h2q.cli.main", "export", "milvus", str(db), "--collection",
           "items"]  # fmt: skip
    subprocess.run([*cli, "--codes", str(folder / "old.npy")], env=env, check=True)
    full = _export(cli, folder / "new.npy", env)  # one uninterrupted --force run
    _export(cli, folder / "old.npy", env)
    rows: list[dict[str, Any]] = []
    while sum(row["killed"] for row in rows) < moments and len(rows) < 2 * moments:
        delay = rng.uniform(0.05, 0.95) * full
        proc = subprocess.Popen([*cli, "--codes", str(folder / "new.npy"), "--force"], env=env)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = _served(db, folder / "q.npy", folder / "r.npz", env)
        which = "old" if state["ntotal"] == n_old else "new" if state["ntotal"] == n_new else "?"
        same = which != "?" and all(
            np.array_equal(got, want)
            for got, want in zip((state["D"], state["I"]), expected[which], strict=True)
        )
        rows.append({"delay_s": round(float(delay), 2), "killed": killed, "served": which,
                     "identical": bool(same), "orphans": state["orphans"]})  # fmt: skip
        print(rows[-1], flush=True)
        if which != "old":
            _export(cli, folder / "old.npy", env)
    _export(cli, folder / "old.npy", env)
    final = _served(db, folder / "q.npy", folder / "r.npz", env)
    return {"full_force_export_s": round(full, 2), "moments": rows,
            "orphans_after_next_write": final["orphans"]}  # fmt: skip


def markdown(record: dict[str, Any]) -> str:
    r = record["result"]
    lines = [
        f"# kill -9 during `h2q export milvus --force` ({record['n_old']:,} old codes, "
        f"{record['n_new']:,} new, 64 bits)",
        "",
        environment_markdown(record["environment"]),
        f"One uninterrupted `--force` export of the new codes took {r['full_force_export_s']} "
        "s; each moment kills a new export after the delay shown (unless it finished first).",
        "",
        "| moment | delay (s) | killed | name served | D, I identical | orphans left |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(r["moments"], start=1):
        lines.append(
            f"| {i} | {row['delay_s']} | {'yes' if row['killed'] else 'no (finished)'} | "
            f"{row['served']} | {'yes' if row['identical'] else 'NO'} | {row['orphans']} |"
        )
    killed = [row for row in r["moments"] if row["killed"]]
    counts = {
        which: (
            sum(row["served"] == which for row in killed),
            sum(row["served"] == which and row["identical"] for row in killed),
        )
        for which in ("old", "new", "?")
    }
    lines += [
        "",
        f"After {len(killed)} kills: the old collection served {counts['old'][0]} times (D and "
        f"I identical {counts['old'][1]} times), the complete new one {counts['new'][0]} times "
        f"(the kill came after the switch; identical {counts['new'][1]} times), anything else "
        f"{counts['?'][0]} times; orphans after the next write: "
        f"{r['orphans_after_next_write']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--table-only", action="store_true", help="rewrite the .md table from the kept .json"
    )
    parser.add_argument("--old", type=int, default=40_000)
    parser.add_argument("--new", type=int, default=100_000)
    parser.add_argument("--moments", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.table_only:
        from bench_encode import RESULTS_DIR

        record = json.loads((RESULTS_DIR / "bench_milvus_kill.json").read_text())
        write_results("bench_milvus_kill", record, markdown(record))
        return
    env = environment()
    with tempfile.TemporaryDirectory(prefix="h2q-bench-milvus-kill-") as folder:
        result = run(Path(folder), args.old, args.new, args.moments, args.seed)
    env["load_average_end"] = list(os.getloadavg())
    record = {"seed": args.seed, "n_old": args.old, "n_new": args.new, "environment": env,
              "result": result}  # fmt: skip
    json_path, md_path = write_results("bench_milvus_kill", record, markdown(record))
    print(markdown(record))
    print(f"-> {json_path}, {md_path}")


if __name__ == "__main__":
    main()
