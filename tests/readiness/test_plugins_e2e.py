"""`readiness assess` in a subprocess with third-party gates from entry points."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.fixtures import plugin_gates
from tests.fixtures.processes import HANG_GUARD_S, wait_for_file, wait_until_gone

PLUGINS = {"counting": "tests.fixtures.plugin_gates:CountingGate",
           "sleeper": "tests.fixtures.plugin_gates:SleeperGate"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    plugin_gates.install(tmp_path / "site", PLUGINS)
    root = tmp_path / "proj"
    root.mkdir()
    (root / "readiness.toml").write_text("project = 'e2e'\n[history]\nenabled = false\n")
    (root / "mod.py").write_text("x = 1\n")
    return root


def _run(project: Path, *args: str, timeout: float = HANG_GUARD_S) -> tuple[int, str, str]:
    proc = plugin_gates.readiness(list(args), project, project.parent / "site")
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_plugin_gate_is_discovered_and_the_exit_code_matches_the_verdict(project: Path) -> None:
    # skipped by the configuration, not the command line: a full assessment that may ship
    config = project / "readiness.toml"
    config.write_text("skip = ['sleeper']\n" + config.read_text())
    code, _, err = _run(project, "assess", "-o", "out")
    doc = json.loads((project / "out" / "assessment.json").read_text())
    assert code == 0 and doc["verdict"]["ship"] is True, err
    statuses = {g["name"]: g["status"] for g in doc["gates"]}
    assert statuses["counting"] == "pass" and statuses["sleeper"] == "off"
    (project / "mod.py").unlink()
    code, _, _ = _run(project, "assess", "-o", "out")
    doc = json.loads((project / "out" / "assessment.json").read_text())
    assert code == 1 and doc["verdict"]["ship"] is False


def test_broken_plugin_is_rejected_naming_it(tmp_path: Path) -> None:
    plugin_gates.install(tmp_path / "site", {"not_a_gate": "tests.fixtures.plugin_gates:NotAGate",
                                             "ghost": "no_such_module:Gate"})
    root = tmp_path / "proj"
    root.mkdir()
    (root / "readiness.toml").write_text("enable = ['ghost']\n")
    proc = plugin_gates.readiness(["assess"], root, tmp_path / "site")
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 2 and "ghost" in err and "Traceback" not in err
    (root / "readiness.toml").write_text("enable = ['not_a_gate']\n")
    proc = plugin_gates.readiness(["assess"], root, tmp_path / "site")
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 2 and "not_a_gate" in err and "lacks" in err and "check" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_stops_children_and_leaves_no_report(project: Path, sig: int) -> None:
    proc = plugin_gates.readiness(["assess", "--gate", "sleeper", "-o", "out"], project, project.parent / "site")
    pid_file = project / "child.pid"
    if not wait_for_file(pid_file, writer=proc):
        proc.kill()
        pytest.fail(f"the sleeper gate never started its child: {proc.communicate()[1][-2000:]}")
    child = int(pid_file.read_text())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    assert "interrupted" in err and "Traceback" not in err
    assert not (project / "out").exists()
    assert wait_until_gone(child), f"child process {child} still runs after the interrupt"
    code, _, _ = _run(project, "assess", "--skip", "sleeper", "-o", "out")
    assert code == 0  # the next run works
