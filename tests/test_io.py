"""Atomic saves: temporary files of killed writers are cleaned up by the next save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from h2q import _io

# Writes part of a file through atomic_open, says so, then waits to be killed.
_WRITER = """
import sys, time
from h2q import _io
with _io.atomic_open(sys.argv[1]) as f:
    f.write(b"x" * 100000)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def _start_writer(target):
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_killed_saves_are_cleaned_up_by_the_next_save(tmp_path):
    target = tmp_path / "q.npy"
    for _ in range(3):
        proc = _start_writer(target)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # each save removes the temporary file of the killed one before it: never more than one
        assert len(_temps(tmp_path)) == 1
    _io.save_npy(target, np.arange(3))
    assert _temps(tmp_path) == []
    np.testing.assert_array_equal(np.load(target), np.arange(3))


def test_a_live_writer_keeps_its_temporary_file(tmp_path):
    target = tmp_path / "q.npy"
    proc = _start_writer(target)
    try:
        live = _temps(tmp_path)
        assert len(live) == 1 and f".{proc.pid}." in live[0]
        _io.save_npy(target, np.arange(3))  # a concurrent save must not touch it
        assert _temps(tmp_path) == live
    finally:
        proc.kill()
        proc.wait()


def test_only_this_targets_temporary_files_are_removed(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max: no such process
    others = [f".q.npy.b.{dead}.abcdefgh.tmp", f".other.npy.{dead}.abcdefgh.tmp", "q.npy.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
    (tmp_path / f".q.npy.{dead}.abcdefgh.tmp").write_bytes(b"stale")
    _io.save_npy(tmp_path / "q.npy", np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "q.npy"])


def test_old_release_temporary_files_go_after_an_hour(tmp_path):
    old, recent = tmp_path / ".q.npy.k2j4h5g6.tmp", tmp_path / ".q.npy.z9y8x7w6.tmp"
    old.write_bytes(b"old")
    recent.write_bytes(b"recent")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    _io.save_npy(tmp_path / "q.npy", np.arange(3))
    assert not old.exists() and recent.exists()
