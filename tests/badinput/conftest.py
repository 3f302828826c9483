"""The `cli` fixture: run `readiness` in-process (fast) or in a subprocess (exactly as CI does).

Most corpus rows run in-process through `readiness.cli.main`, the same
function the console script calls: exit-code mapping, the one-line error
and any traceback all go through it, and torch is imported once instead of
once per row. Rows marked `subprocess` also start a fresh interpreter, so
at least one row of every kind is checked exactly as a user's CI sees it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest

from tests.badinput.project import run_cli

Cli = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(args: list[str], cwd: Path, *, in_subprocess: bool = False) -> subprocess.CompletedProcess:
        if in_subprocess:
            return run_cli(args, cwd)
        from readiness.cli import main

        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run
