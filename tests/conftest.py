import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The suite's tensors are tiny: one thread is faster and immune to a busy second core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli_runner(monkeypatch, capsys):
    """A factory of in-process CLI runners: ``cli_runner(commands)(*argv)`` runs ``h2q argv``
    and returns ``(exit status, stdout, stderr)``. ``commands`` limits the command modules
    loaded (None: all), so that a test does not depend on the others; with ``catch_exit``,
    argparse's usage errors (``SystemExit``) come back as a status instead of raising."""
    from h2q.cli import main as cli_main

    def make(commands=None, *, catch_exit=False):
        if commands is not None:
            monkeypatch.setattr(cli_main, "_COMMAND_MODULES", tuple(commands))

        def run(*argv):
            capsys.readouterr()
            try:
                status = cli_main.main([str(a) for a in argv])
            except SystemExit as exc:  # argparse's usage errors
                if not catch_exit:
                    raise
                status = exc.code
            out, err = capsys.readouterr()
            return status, out, err

        return run

    return make
