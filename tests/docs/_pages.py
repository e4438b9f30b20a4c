"""Run the code blocks of a Markdown page: ```python blocks in one namespace, ```bash blocks
line by line as in-process `h2q` commands (other languages are shown, not run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
#: Commands that draw a progress bar unless told not to.
_PROGRESS = ("fit", "evaluate", "reproduce", "train", "embed")


def read(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The text of a ``## title`` section (up to the next ``## ``)."""
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def commands(code: str) -> list[list[str]]:
    """The argv (without ``h2q``) of every line of a bash block; comments dropped."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line)
        assert argv[0] == "h2q", f"a command the test cannot run: {line!r}"
        out.append(argv[1:])
    return out


def run_h2q(argv: list[str], capsys) -> str:
    """Run one `h2q` command in-process; its stdout (fails on a non-zero status)."""
    from h2q.cli import main as cli_main

    if argv[0] in _PROGRESS:
        argv = [*argv, "--no-progress"]
    capsys.readouterr()
    status = cli_main.main(argv)
    out, err = capsys.readouterr()
    assert status == 0, (argv, err)
    return out


def run_page(text: str, name: str, capsys, namespace: dict | None = None) -> dict:
    """Run every python and bash block of ``text`` in order, in the current folder."""
    namespace = {} if namespace is None else namespace
    for language, code in blocks(text):
        if language == "python":
            exec(compile(code, f"{name} (python block)", "exec"), namespace)
        elif language == "bash":
            for argv in commands(code):
                run_h2q(argv, capsys)
    return namespace
