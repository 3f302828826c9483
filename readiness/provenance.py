"""Where an assessment was made: git state, host and tool versions.

Read once per assessment and written into the document, so a stored report
says on which commit, machine and toolchain its numbers were measured.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

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
    versions: dict[str, str | None] = {}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
