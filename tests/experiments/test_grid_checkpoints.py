"""A real (tiny) grid: finished stage-1 runs keep no checkpoints unless asked, and resume still
works cell by cell."""

from __future__ import annotations

import pytest

from h2q._threads import thread_limit
from h2q.experiments.config import get_config
from h2q.experiments.grid import run_grid


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks: on a shared 2-core machine one thread is the fastest.
    with thread_limit(1):
        yield


CONFIG = get_config("quick", bits=(8,), rows=("lambda0", "itq"), epochs=1, k=20)


def test_finished_runs_drop_their_checkpoints_and_cells_still_resume(tmp_path):
    first = run_grid(CONFIG, tmp_path, progress=False, jobs=1)
    assert len(first.trained) == 1 and len(first.records) == 2
    run_dirs = [p.parent for p in tmp_path.glob("runs/**/embeddings.npz")]
    assert len(run_dirs) == 1
    assert not (run_dirs[0] / "checkpoints").exists()
    # delete one cell: only it is computed again, from the finished run's embeddings
    cell = next(tmp_path.glob("cells/**/itq/*.json"))
    cell.unlink()
    again = run_grid(CONFIG, tmp_path, progress=False, jobs=1)
    assert again.trained == [] and again.computed == ["dpsh itq 8b s0"]
    assert cell.is_file()


def test_keep_checkpoints_keeps_them(tmp_path):
    run_grid(CONFIG, tmp_path, progress=False, jobs=1, keep_checkpoints=True)
    (run_dir,) = [p.parent for p in tmp_path.glob("runs/**/embeddings.npz")]
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
