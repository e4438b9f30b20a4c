"""Benchmark: h2q commands on a machine shared with another torch job.

Each command runs as a user runs it (a fresh ``python -m h2q.cli.main`` process, wall time
from start to exit, imports included), alternately on the machine as it is ("idle": no job
of ours beside it) and beside a background torch job that multiplies 1024 x 1024 matrices in
a loop on 2 threads ("busy"; the job is paused with SIGSTOP between busy runs, so idle and
busy runs alternate and a drift in the load of other processes hits both alike). Per command
and thread setting: one warm-up run, then ``--repeats`` rounds of (idle run, busy run).
Thread settings:

- ``default``: the command's own ``--threads`` default (the setting under test);
- ``all cores``: ``--threads <logical CPUs>``, what torch and BLAS chose before ``--threads``
  had a default (the anchor; measured for fit on digits and for train, to keep the run short).

Commands: ``h2q fit`` on the digits embeddings (32 bits) and on 20,000 x 64 Gaussian
embeddings, ``h2q encode`` of the digits database fold, and ``h2q train --dataset digits
--epochs 3``. Target for the default setting, per command: median beside the job at most 2x
the idle median, worst run at most 3x. The thread variables (OMP_NUM_THREADS, ...) are
removed from the commands' environment, so nothing but ``--threads`` limits them.

The other job runs in a session of its own, as a job started from another shell does. On
Linux with autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) CPU time is
shared fairly between sessions first, so a job started in the command's own session (e.g.
``job & h2q fit ...`` from one script) takes its share from the command alone: measure that
case with ``--same-session``.

Results go to ``benchmarks/results/bench_contention.{json,md}`` (``--same-session``:
``bench_contention_same_session.{json,md}``).

Usage::

    python benchmarks/bench_contention.py [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import ENV_VARS, environment, environment_markdown, write_results

_BACKGROUND = """
import torch
torch.set_num_threads(2)
a = torch.randn(1024, 1024)
print("running", flush=True)
while True:
    a = torch.tanh(a @ a / 32.0)
"""


#: Commands also measured with ``--threads <logical CPUs>`` (the anchor), to keep the run short.
ANCHORED = ("fit digits, 32 bits", "train digits, 3 epochs")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and k != "H2Q_NUM_THREADS"}
    src = Path(__file__).resolve().parent.parent / "src"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def h2q(argv: list[str], env: dict[str, str]) -> float:
    """Run one h2q command; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "h2q.cli.main", *argv],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return time.perf_counter() - start


class Background:
    """The other job: a torch process on 2 threads, paused (SIGSTOP) between busy runs.

    Pausing instead of stopping lets idle and busy runs alternate run by run, so that a
    change in the load from other processes during the benchmark hits both alike.
    """

    def __init__(self, same_session: bool) -> None:
        self.same_session = same_session

    def __enter__(self) -> Background:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BACKGROUND],
            env=_clean_env(),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=not self.same_session,
        )
        assert self.proc.stdout.readline().strip() == "running"
        self.pause()
        return self

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        time.sleep(0.5)  # let it reach its steady state

    def __exit__(self, *exc: Any) -> None:
        self.proc.kill()
        self.proc.wait()


def commands(work: Path, seed: int) -> dict[str, Any]:
    """name -> function(run_id) returning the argv of one run."""
    rng = np.random.default_rng(seed)
    np.save(work / "gauss.npy", rng.normal(size=(20_000, 64)).astype(np.float32))
    emb = work / "digits" / "embeddings.npz"

    def train(i: str) -> list[str]:
        out = work / f"train-{i}"
        shutil.rmtree(out, ignore_errors=True)
        return [
            "train", "--dataset", "digits", "--method", "dpsh", "--bits", "32", "--epochs", "3",
            "--out", str(out), "--no-progress", "--seed", str(seed),
        ]  # fmt: skip

    return {
        "fit digits, 32 bits": lambda i: [
            "fit",
            str(emb),
            "--out",
            str(work / "q.npz"),
            "--force",
            "--no-progress",
        ],  # fmt: skip
        "fit 20,000 x 64": lambda i: [
            "fit",
            str(work / "gauss.npy"),
            "--out",
            str(work / "qg.npz"),
            "--force",
            "--no-progress",
        ],  # fmt: skip
        "encode digits database": lambda i: [
            "encode",
            str(work / "q.npz"),
            str(emb),
            "--fold",
            "database",
            "--out",
            str(work / "db.npz"),
            "--force",
        ],  # fmt: skip
        "train digits, 3 epochs": train,
    }


def measure(
    argv_of: Any, variants: dict[str, list[str]], repeats: int, env: dict[str, str], bg: Background
) -> dict[str, dict[str, list[float]]]:
    """Warm-up, then ``repeats`` rounds of (idle run, busy run) for each thread variant."""
    times = {name: {"idle": [], "busy": []} for name in variants}
    for name, extra in variants.items():
        h2q(argv_of(f"warm-{name}".replace(" ", "")) + extra, env)
    for r in range(repeats):
        for name, extra in variants.items():
            for setting in ("idle", "busy"):
                if setting == "busy":
                    bg.resume()
                try:
                    run_id = f"{name}-{setting}-{r}".replace(" ", "")
                    times[name][setting].append(h2q(argv_of(run_id) + extra, env))
                finally:
                    if setting == "busy":
                        bg.pause()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--same-session",
        action="store_true",
        help="run the other job in this benchmark's session (one scheduler group with the "
        "command) instead of a session of its own; results go to "
        "bench_contention_same_session.{json,md}",
    )
    args = parser.parse_args()
    result_name = "bench_contention_same_session" if args.same_session else "bench_contention"
    env = _clean_env()
    record: dict[str, Any] = {
        "environment": environment(),
        "repeats": args.repeats,
        "other_job": "same session" if args.same_session else "own session",
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="h2q-contention-") as tmp:
        work = Path(tmp)
        h2q(  # the digits embeddings every stage-2 command reads
            ["train", "--dataset", "digits", "--method", "dpsh", "--bits", "32", "--epochs", "3",
             "--out", str(work / "digits"), "--no-progress", "--seed", str(args.seed)],
            env,
        )  # fmt: skip
        h2q(["fit", str(work / "digits" / "embeddings.npz"), "--out", str(work / "q.npz")], env)
        cores = ["--threads", str(os.cpu_count() or 1)]
        for name, argv_of in commands(work, args.seed).items():
            variants = {"default": []}
            if name in ANCHORED:
                variants["all cores"] = cores
            with Background(args.same_session) as bg:
                times = measure(argv_of, variants, args.repeats, env, bg)
            for variant, t in times.items():
                record["rows"].append(_row(name, variant, t["idle"], t["busy"]))
                print(_line(record["rows"][-1]), flush=True)
            # written after every command, so that an interrupted run keeps what it measured
            record["environment"]["load_average_end"] = list(os.getloadavg())
            json_path, md_path = write_results(result_name, record, markdown(record))
    print(f"wrote {json_path} and {md_path}")


def _row(name: str, variant: str, idle: list[float], busy: list[float]) -> dict[str, Any]:
    idle_median = statistics.median(idle)
    median_ratio = statistics.median(busy) / idle_median
    worst_ratio = max(busy) / idle_median
    return {
        "command": name,
        "threads": variant,
        "idle_s": idle,
        "busy_s": busy,
        "idle_median_s": idle_median,
        "busy_median_s": statistics.median(busy),
        "busy_worst_s": max(busy),
        "median_ratio": median_ratio,
        "worst_ratio": worst_ratio,
        "target_met": median_ratio <= 2.0 and worst_ratio <= 3.0,
    }


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['command']:<26} {row['threads']:<9} idle {row['idle_median_s']:6.2f} s  busy "
        f"median {row['busy_median_s']:6.2f} s ({row['median_ratio']:.2f}x)  worst "
        f"{row['busy_worst_s']:6.2f} s ({row['worst_ratio']:.2f}x)"
    )


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# h2q commands beside another 2-thread torch job",
        "",
        "Wall time of each command as a fresh process (imports included); idle = no job of "
        "ours beside it, busy = beside a torch job multiplying matrices on 2 threads, run in "
        f"{record.get('other_job', 'its own session')}; idle and busy runs alternate. "
        f"{record['repeats']} runs each after a warm-up. Target for `default`: busy median "
        "<= 2x idle median, busy worst <= 3x.",
        "",
        "| command | --threads | idle median (s) | busy median (s) | busy worst (s) | "
        "median / idle | worst / idle | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        target = ("met" if r["target_met"] else "missed") if r["threads"] == "default" else "-"
        lines.append(
            f"| {r['command']} | {r['threads']} | {r['idle_median_s']:.2f} | "
            f"{r['busy_median_s']:.2f} | {r['busy_worst_s']:.2f} | {r['median_ratio']:.2f} | "
            f"{r['worst_ratio']:.2f} | {target} |"
        )
    lines += ["", environment_markdown(record["environment"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
