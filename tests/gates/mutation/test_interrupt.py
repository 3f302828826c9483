"""Interrupting a mutation run: no workspace left behind, decided mutants kept, 130 / 143.

`readiness assess --gate mutation` runs in a subprocess with TMPDIR pointing
at a folder of the test, on a project whose test holds every mutant but the
first until a release file appears (so the run is surely mid-way when the
signal comes). The signal is sent once mutmut has recorded the first
verdict in the workspace's `.meta`: an event, not a delay. Timeouts here
only guard against a hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

HANG_GUARD_S = 600.0
RERUN_EXIT = 0  # the test kills every mutant of grade(): the rerun passes and ships

SOURCE = '''
def grade(score):
    if score >= 90:
        return "A"
    if score >= 50:
        return "B"
    return "C"
'''

# The first real mutant is decided at once; the others wait for `release`.
TEST = '''
import os
import time
from pathlib import Path

from slowlib.core import grade


def _hold_unless_first():
    control, mutant = os.environ.get("HOLD_CONTROL"), os.environ.get("MUTANT_UNDER_TEST", "")
    if not control or "__mutmut_" not in mutant:
        return
    control = Path(control)
    with open(control / "measured.log", "a") as log:
        log.write(mutant + "\\n")
    try:
        handle = os.open(control / "first", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        deadline = time.monotonic() + 600  # a hang guard, not a timing
        while not (control / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    os.write(handle, mutant.encode())
    os.close(handle)


def test_grades():
    _hold_unless_first()
    assert grade(95) == "A"
    assert grade(90) == "A"
    assert grade(60) == "B"
    assert grade(50) == "B"
    assert grade(10) == "C"
'''

CONFIG = '''
[code]
sources = ["slowlib"]
tests = ["tests"]

[[code.critical]]
path = "slowlib/core.py"
tier = "1"

[gates.mutation]
max_children = 2

[history]
enabled = false
'''


def make_project(tmp_path: Path) -> tuple[Path, Path, Path]:
    root, control, tmp = tmp_path / "proj", tmp_path / "control", tmp_path / "tmp"
    for folder in (root / "slowlib", root / "tests", control, tmp):
        folder.mkdir(parents=True)
    (root / "slowlib" / "__init__.py").write_text("")
    (root / "slowlib" / "core.py").write_text(SOURCE)
    (root / "tests" / "test_core.py").write_text(TEST)
    (root / "readiness.toml").write_text(CONFIG)
    return root, control, tmp


def start(root: Path, control: Path, tmp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp), "HOLD_CONTROL": str(control)}
    return subprocess.Popen([sys.executable, "-m", "readiness.cli", "assess", "--gate", "mutation", "-o", "out"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def workspaces(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("readiness-mutation-*"))


def decided_in_workspace(tmp: Path) -> set[str]:
    """Mutants whose verdict mutmut has saved in the workspace (empty while none is)."""
    found: set[str] = set()
    for meta in tmp.glob("readiness-mutation-*/mutants/slowlib/core.py.meta"):
        try:
            codes = json.loads(meta.read_text())["exit_code_by_key"]
        except (OSError, ValueError, KeyError):
            continue  # being written: look again
        found |= {name for name, code in codes.items() if code is not None}
    return found


def wait_for_first_verdict(proc: subprocess.Popen[str], tmp: Path) -> set[str]:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        decided = decided_in_workspace(tmp)
        if decided:
            return decided
        if proc.poll() is not None:
            pytest.fail(f"readiness ended before any mutant was decided: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no mutant was decided (hang guard)")


def cached_results(root: Path) -> dict[str, dict]:
    data = json.loads((root / ".readiness" / "mutation-cache" / "slowlib__core.py.json").read_text())
    return {name: record for function in data["functions"].values()
            for name, record in function["results"].items()}


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_mutation_run_leaves_no_workspace_and_keeps_its_verdicts(tmp_path, sig, code):
    root, control, tmp = make_project(tmp_path)
    proc = start(root, control, tmp)
    decided = wait_for_first_verdict(proc, tmp)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == code, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    assert workspaces(tmp) == []
    first = (control / "first").read_text()
    assert decided == {first}
    assert set(cached_results(root)) == {first}
    if sig == signal.SIGINT:
        # the next run measures every other mutant, and not the one already decided
        (control / "release").touch()
        (control / "measured.log").unlink()
        proc = start(root, control, tmp)
        out, err = proc.communicate(timeout=HANG_GUARD_S)
        assert proc.returncode == RERUN_EXIT and "Traceback" not in err, err[-3000:]
        measured = set((control / "measured.log").read_text().split())
        assert first not in measured and len(measured) >= 5
        result = next(g for g in json.loads((root / "out" / "assessment.json").read_text())["gates"]
                      if g["name"] == "mutation")
        assert result["status"] == "pass" and result["metrics"]["mutants_cached"] == 1
        assert result["metrics"]["mutants_run"] == result["metrics"]["mutants_total"] - 1 == len(measured)
        assert workspaces(tmp) == []
