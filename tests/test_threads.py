import os
import subprocess
import sys

import pytest
import torch
from threadpoolctl import threadpool_info

from h2q._threads import ENV_VAR, check_n_threads, resolve_n_threads, thread_limit


def _blas_threads():
    return [pool["num_threads"] for pool in threadpool_info()]


def test_thread_limit_sets_and_restores_every_pool():
    before_torch = torch.get_num_threads()
    before_blas = _blas_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
        assert all(n == 1 for n in _blas_threads())
    assert torch.get_num_threads() == before_torch
    assert _blas_threads() == before_blas


def test_none_changes_nothing_without_the_env_var(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    torch.set_num_threads(2)
    with thread_limit(None):
        assert torch.get_num_threads() == 2


def test_env_var_applies_when_no_argument(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")
    assert resolve_n_threads(None) == 1
    assert resolve_n_threads(3) == 3
    monkeypatch.setenv(ENV_VAR, "two")
    with pytest.raises(ValueError, match="H2Q_NUM_THREADS='two' is not an integer"):
        resolve_n_threads(None)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "2"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="n_threads must be None or an integer >= 1"):
        check_n_threads(bad)


def test_an_inner_none_inherits_the_enclosing_limit(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with thread_limit(1):
        assert resolve_n_threads(None) == 1
        with thread_limit(None):
            assert torch.get_num_threads() == 1
    assert resolve_n_threads(None) is None


def test_numba_imported_inside_a_limit_is_limited_by_the_next_block(monkeypatch):
    numba = pytest.importorskip("numba")  # the `fast` extra (installed in CI)
    monkeypatch.delenv(ENV_VAR, raising=False)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    monkeypatch.delitem(sys.modules, "numba")  # not imported yet when the command's limit begins
    with thread_limit(1):
        monkeypatch.setitem(sys.modules, "numba", numba)  # a kernel module imports it now
        with thread_limit(None):  # ... and limits itself
            assert numba.get_num_threads() == 1
            assert torch.get_num_threads() == 1


def test_a_nested_block_with_the_limit_in_force_is_free(monkeypatch):
    """Re-applying costs milliseconds; a nested block of the same limit skips it, but a
    change by another block (here: another thread's) makes the next one apply again."""
    import threading

    from h2q import _threads

    monkeypatch.delenv(ENV_VAR, raising=False)
    calls = []
    real = _threads._limited

    def counting(n, parallel_kernels):
        calls.append(n)
        return real(n, parallel_kernels)

    monkeypatch.setattr(_threads, "_limited", counting)
    with thread_limit(1):
        for _ in range(3):
            with thread_limit(None):
                assert torch.get_num_threads() == 1
        assert calls == [1]

        def elsewhere():
            with thread_limit(2):
                pass

        other = threading.Thread(target=elsewhere)
        other.start()
        other.join()  # another thread changed the pools (and restored them)
        with thread_limit(None):
            assert torch.get_num_threads() == 1
        assert calls == [1, 2, 1]


def test_numba_pool_is_started_only_for_parallel_kernels():
    """A limit leaves numba's pool unstarted unless the body runs its parallel kernels
    (starting it loads numba's OpenMP layer, which changed torch's numbers in the process)."""
    pytest.importorskip("numba")

    code = (
        "import numba, numba.np.ufunc.parallel as p\n"
        "from h2q._threads import thread_limit\n"
        "with thread_limit(1):\n"
        "    assert not p._is_initialized, 'started by a plain limit'\n"
        "with thread_limit(1, parallel_kernels=True):\n"
        "    assert p._is_initialized and numba.get_num_threads() == 1\n"
        "with thread_limit(1):\n"
        "    assert numba.get_num_threads() == 1  # running now: limited by every block\n"
        "print('ok')\n"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
