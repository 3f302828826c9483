"""Provenance: the versions of the interpreter that ran the tests, asked of it.

The project's tests may run in another venv (`[gates.suite_health] python`);
the document must then record that interpreter's Python, pytest and coverage,
as it reports them, beside readiness's own versions — never readiness's own
passed off as the tests'. The other venv is imitated by a wrapper script that
puts distributions claiming pytest 99.1 and coverage 98.2 first on the path.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from gates.code.suite_run import ask_interpreter
from gates.result import GateResult, Severity, Status
from readiness.demo import copy_example
from readiness.provenance import interpreters_of
from tests.conftest import REPO

FAKE = {"pytest": "99.1", "coverage": "98.2"}


def other_venv_python(folder: Path) -> Path:
    """An interpreter whose pytest and coverage distributions claim other versions."""
    site = folder / "site"
    for name, version in FAKE.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    wrapper = folder / "venv-python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.skipif(os.name != "posix", reason="the imitation venv is a shell script")
def test_interpreter_reports_its_own_versions(tmp_path: Path) -> None:
    python = other_venv_python(tmp_path)
    record = ask_interpreter(str(python), ("pytest", "coverage", "no-such-tool"), cwd=tmp_path)
    assert record["executable"] == str(python)
    assert record["python"] == platform.python_version()
    assert record["tools"] == {"pytest": "99.1", "coverage": "98.2", "no-such-tool": None}
    assert "error" not in record


def test_a_project_module_named_json_cannot_answer_for_the_interpreter(tmp_path: Path) -> None:
    (tmp_path / "json.py").write_text("raise SystemExit('shadowed')\n")
    record = ask_interpreter(sys.executable, ("pytest",), cwd=tmp_path)
    assert record["tools"] == {"pytest": metadata.version("pytest")}


def test_an_interpreter_that_cannot_answer_is_said_so(tmp_path: Path) -> None:
    record = ask_interpreter(str(tmp_path / "missing-python"), ("pytest",), cwd=tmp_path)
    assert record["python"] is None and record["tools"] == {}
    assert record["error"].startswith(f"could not ask {tmp_path / 'missing-python'} for its versions")


def _ran_with(name: str, executable: str, **tools: str | None) -> GateResult:
    return GateResult(name=name, status=Status.PASS, severity=Severity.BLOCKER, score=1.0, summary="ok",
                      evidence={"interpreter": {"executable": executable, "python": "3.12.1", "prefix": "/v",
                                                "tools": tools}})


def test_interpreters_are_gathered_once_each_with_the_gates_that_used_them() -> None:
    results = [_ran_with("suite_health", "/v/bin/python", pytest="8.3.3", coverage="7.6.1"),
               GateResult(name="coverage", status=Status.PASS, severity=Severity.BLOCKER, score=1.0, summary=""),
               GateResult(name="mutation", status=Status.PASS, severity=Severity.WARNING, score=1.0, summary="",
                          evidence={"run": {"interpreter": {"executable": "/r/bin/python", "python": "3.11.7",
                                                            "tools": {"mutmut": "3.2.0", "pytest": "8.4.0"}}}})]
    assert interpreters_of(results) == [
        {"executable": "/v/bin/python", "python": "3.12.1", "prefix": "/v", "gates": ["suite_health"],
         "tools": {"pytest": "8.3.3", "coverage": "7.6.1"}},
        {"executable": "/r/bin/python", "python": "3.11.7", "prefix": None, "gates": ["mutation"],
         "tools": {"mutmut": "3.2.0", "pytest": "8.4.0"}}]


@pytest.mark.skipif(os.name != "posix", reason="the imitation venv is a shell script")
def test_assessment_records_the_tests_interpreter_beside_readiness_own(tmp_path: Path) -> None:
    python = other_venv_python(tmp_path / "venv")
    root = copy_example(tmp_path / "example")
    config = root / "readiness.toml"
    config.write_text(config.read_text() + f'\n[gates.suite_health]\npython = "{python}"\n'
                      "\n[history]\nenabled = false\n")
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "assess", "--gate", "suite_health", "-o", "out"],
                          cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((root / "out" / "assessment.json").read_text())
    [runtime] = doc["test_runtimes"]
    assert runtime["executable"] == str(python) and runtime["gates"] == ["suite_health"]
    assert runtime["python"] == platform.python_version()
    assert runtime["tools"]["pytest"] == "99.1" and runtime["tools"]["coverage"] == "98.2"
    assert doc["tool_versions"]["pytest"] == metadata.version("pytest")  # readiness's own, kept
    html = (root / "out" / "report.html").read_text()
    assert f"<strong>Tests run by suite_health</strong> under Python {platform.python_version()}" in html
    assert "<tr><td>pytest</td><td>99.1</td></tr>" in html
    assert "<strong>Readiness's own interpreter</strong>: Python " in html
    report = (root / "out" / "report.md").read_text()
    assert f"Tests run by suite_health under Python {platform.python_version()}" in report
