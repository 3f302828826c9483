"""Where an assessment was made: git state, host and tool versions.

Read once per assessment and written into the document, so a stored report
says on which commit, machine and toolchain its numbers were measured.

Two toolchains can be involved: readiness's own interpreter (`host`,
`tool_versions`) and the interpreter that ran the project's tests, which
may be another venv (`[gates.suite_health] python`). The gates that run
tests ask that interpreter for its versions and keep the answer in their
evidence (`interpreter`); `interpreters_of` gathers them, one entry per
interpreter, into the document's `test_runtimes`, so a report never passes
readiness's own pytest off as the one the tests ran under.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from gates.engine.tools import installed_version
from gates.result import GateResult

TOOLS = ("readiness", "torch", "coremltools", "numpy", "onnx", "onnxruntime", "tokenizers",
         "safetensors", "pytest", "coverage", "mutmut")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(root: Path) -> dict[str, Any]:
    """Commit, branch and dirtiness of the repository holding `root`, if any."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(status) if status is not None else None}


def host_info() -> dict[str, Any]:
    return {"platform": platform.platform(), "system": platform.system(), "machine": platform.machine(),
            "python": platform.python_version(), "executable": sys.executable}


def tool_versions() -> dict[str, str | None]:
    return {name: installed_version(name) for name in TOOLS}


def _interpreter_of(result: GateResult) -> Mapping[str, Any] | None:
    """What a test-running gate recorded about its interpreter, if anything."""
    run = result.evidence.get("run")
    for record in (result.evidence.get("interpreter"), run.get("interpreter") if isinstance(run, Mapping) else None):
        if isinstance(record, Mapping) and isinstance(record.get("executable"), str):
            return record
    return None


def interpreters_of(results: Iterable[GateResult]) -> list[dict[str, Any]]:
    """The interpreters that ran the project's tests, as each reported itself.

    One entry per interpreter: `executable`, `python`, `prefix`, `tools`
    (name -> version, None when not installed there), `gates` that used it,
    and `error` when it could not be asked.
    """
    entries: dict[str, dict[str, Any]] = {}
    for result in results:
        record = _interpreter_of(result)
        if record is None:
            continue
        entry = entries.setdefault(record["executable"], {
            "executable": record["executable"], "python": record.get("python"),
            "prefix": record.get("prefix"), "tools": {}, "gates": []})
        entry["tools"].update({str(k): v if isinstance(v, str) else None
                               for k, v in (record.get("tools") or {}).items()})
        entry["gates"].append(result.name)
        if record.get("error"):
            entry["error"] = str(record["error"])
    return list(entries.values())
