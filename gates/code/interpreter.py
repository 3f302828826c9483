"""The interpreter that runs the project's own code, and what it says it has.

A project's tests often need packages only its own virtual environment holds
(distill's need torch, transformers, psutil, pyyaml). Every gate that runs
the project's code (suite_health runs pytest, mutation runs mutmut, which runs
pytest in its own process) therefore starts the interpreter the configuration
names, never readiness's own unless nothing is named:

    gate setting `python`  >  `[code] python`  >  readiness's own interpreter

A relative path (`.venv/bin/python`) is read from the code root; a bare name
(`python3.11`) is looked up on PATH. Provenance records what that interpreter
reports about itself (`ask_interpreter`), not what readiness has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

# Run by the project's interpreter: its own Python and tool versions as JSON.
# The working folder is dropped from sys.path first, so a project module named
# like a standard one (json.py, platform.py) cannot answer instead.
_VERSION_QUERY = """
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import json, platform
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(), "prefix": sys.prefix,
                  "tools": {name: version(name) for name in sys.argv[1:]}}))
"""

# Variables a surrounding pytest / pytest-cov run sets for its own children;
# passed on, they would make the project's run measure itself into our data.
INHERITED_NOISE = ("PYTEST_CURRENT_TEST", "COV_CORE_SOURCE", "COV_CORE_CONFIG",
                   "COV_CORE_DATAFILE", "COV_CORE_BRANCH", "COV_CORE_CONTEXT")


def chosen_python(gate_python: str, code_python: str) -> str:
    """The configured interpreter: the gate's own setting first, then `[code] python`."""
    return gate_python or code_python


def interpreter_path(python: str, root: Path) -> str:
    """The interpreter a run starts, absolute: relative paths are relative to `root`."""
    exe = python or sys.executable
    if os.sep in exe or (os.altsep and os.altsep in exe):
        return str(root / exe)
    return shutil.which(exe) or exe


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the variables of a surrounding test run."""
    env = {key: value for key, value in os.environ.items() if key not in INHERITED_NOISE}
    env.update(extra or {})
    return env


def ask_interpreter(executable: str, tools: Sequence[str], *, cwd: Path,
                    timeout_s: float = 120.0) -> dict[str, Any]:
    """Python and tool versions as `executable` itself reports them.

    `{"executable", "python", "prefix", "tools": {name: version or None}}`;
    when the interpreter cannot answer, `python` is None and `error` says why.
    """
    record: dict[str, Any] = {"executable": executable, "python": None, "prefix": None, "tools": {}}
    try:
        done = subprocess.run([executable, "-c", _VERSION_QUERY, *tools], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout_s, env=clean_env())
        answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return {**record, "error": f"could not ask {executable} for its versions: {exc}"}
    if not isinstance(answer, dict) or not isinstance(answer.get("tools"), dict):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**record, "error": f"could not ask {executable} for its versions "
                                   f"(exit code {done.returncode}): {tail[0][:300]}"}
    return {**record, "python": answer.get("python"), "prefix": answer.get("prefix"),
            "tools": {name: answer["tools"].get(name) for name in tools}}
