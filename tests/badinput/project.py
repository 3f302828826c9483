"""Launching `readiness` on a throw-away project, and what a clean refusal looks like.

A user meets bad input through the CLI: `run_cli` starts `python -m
readiness.cli` in a subprocess (the repository on PYTHONPATH, history off
unless the configuration says otherwise), so tracebacks and exit codes are
exactly what a CI log would show. `assert_refused` states the contract every
corpus row shares: exit 2, one `readiness:` line naming the file and the
problem, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.fixtures.processes import HANG_GUARD_S

CORPUS = Path(__file__).resolve().parent / "corpus"
HISTORY_OFF = "\n[history]\nenabled = false\n"


def run_cli(args: list[str], cwd: Path, timeout_s: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "readiness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def write_config(root: Path, text: str) -> Path:
    """readiness.toml with history turned off (appended, so a row may still set other keys)."""
    path = root / "readiness.toml"
    if "[history]" not in text:
        text = text + HISTORY_OFF
    path.write_text(text, encoding="utf-8")
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("readiness:")]


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-3000:]


def assert_refused(proc: subprocess.CompletedProcess[str], file: str, *fragments: str) -> str:
    """Exit 2 with one line naming `file` and every fragment; returns that line."""
    assert_no_traceback(proc)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    line = lines[0]
    assert file in line, f"{file!r} not named in {line!r}"
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def gate_result(out: Path, name: str) -> dict[str, Any]:
    doc = json.loads((out / "assessment.json").read_text(encoding="utf-8"))
    return next(g for g in doc["gates"] if g["name"] == name)
