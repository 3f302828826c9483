"""One pytest run that yields everything: JUnit XML, coverage data, a streamed log.

The earlier harness ran the suite twice and parsed `-q` text with regexes.
Here the project's pytest runs once, in its own session, with pytest-cov
(`--cov=<source> --cov-branch --cov-report=`, data file in the work folder
through COVERAGE_FILE), `--junitxml` for CI and `--report-log` for results
that survive a kill. Nothing reads pytest's terminal output except to explain
why pytest never started (not installed, a plugin missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from gates.code.reportlog_reader import ReportLog, read_reportlog
from gates.engine.process_watch import WatchedRun, run_watched

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
_INHERITED_NOISE = ("PYTEST_CURRENT_TEST", "COV_CORE_SOURCE", "COV_CORE_CONFIG",
                    "COV_CORE_DATAFILE", "COV_CORE_BRANCH", "COV_CORE_CONTEXT")


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteArtifacts:
    """Where one run writes its files."""

    folder: Path

    @property
    def junit(self) -> Path:
        return self.folder / "junit.xml"

    @property
    def reportlog(self) -> Path:
        return self.folder / "reportlog.jsonl"

    @property
    def coverage_data(self) -> Path:
        return self.folder / ".coverage"

    @property
    def output(self) -> Path:
        return self.folder / "pytest-output.txt"


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteRun:
    argv: tuple[str, ...]
    watched: WatchedRun
    log: ReportLog
    artifacts: SuiteArtifacts


def pytest_argv(*, python: str, tests: Sequence[str], sources: Sequence[str],
                artifacts: SuiteArtifacts, extra: Sequence[str] = (),
                coverage: bool = True) -> list[str]:
    """The command line of the single measured run."""
    argv = [python or sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider",
            f"--report-log={artifacts.reportlog}"]
    if coverage:
        argv += [f"--junitxml={artifacts.junit}"]
        argv += [f"--cov={source}" for source in sources] + ["--cov-branch", "--cov-report="]
    else:
        argv += ["--no-cov"] if sources else []
    return argv + list(extra)


def child_env(artifacts: SuiteArtifacts) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _INHERITED_NOISE}
    env["COVERAGE_FILE"] = str(artifacts.coverage_data)
    return env


def run_suite(*, root: Path, argv: list[str], artifacts: SuiteArtifacts,
              timeout_s: float) -> SuiteRun:
    """Run once; stale artifacts of an earlier run are removed first."""
    artifacts.folder.mkdir(parents=True, exist_ok=True)
    for stale in (artifacts.junit, artifacts.reportlog, artifacts.coverage_data):
        stale.unlink(missing_ok=True)
    watched = run_watched(argv, cwd=root, log_path=artifacts.output, timeout_s=timeout_s,
                          env=child_env(artifacts))
    log = read_reportlog(artifacts.reportlog, root_name=root.name)
    return SuiteRun(argv=tuple(argv), watched=watched, log=log, artifacts=artifacts)


def why_not_started(run: SuiteRun, python: str) -> str:
    """Explain a run whose log never began, from the little pytest printed."""
    tail = run.watched.output_tail(2000)
    interpreter = python or sys.executable
    if "No module named pytest" in tail:
        return f"pytest is not installed for {interpreter}"
    for flag, plugin in (("--report-log", "pytest-reportlog"), ("--cov", "pytest-cov")):
        if "unrecognized arguments" in tail and flag in tail:
            return f"{plugin} is not installed for {interpreter} (pytest rejected {flag})"
    last = [line for line in tail.strip().splitlines() if line.strip()][-3:]
    return (f"pytest did not start (exit code {run.watched.returncode}): "
            + (" | ".join(last) or "no output"))


def interpreter_path(python: str, root: Path) -> str:
    """The interpreter a run starts, absolute: relative paths are relative to `root`."""
    exe = python or sys.executable
    if os.sep in exe or (os.altsep and os.altsep in exe):
        return str(root / exe)
    return shutil.which(exe) or exe


def ask_interpreter(executable: str, tools: Sequence[str], *, cwd: Path,
                    timeout_s: float = 120.0) -> dict[str, Any]:
    """Python and tool versions as `executable` itself reports them.

    `{"executable", "python", "prefix", "tools": {name: version or None}}`;
    when the interpreter cannot answer, `python` is None and `error` says why.
    """
    record: dict[str, Any] = {"executable": executable, "python": None, "prefix": None, "tools": {}}
    try:
        done = subprocess.run([executable, "-c", _VERSION_QUERY, *tools], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout_s,
                              env={k: v for k, v in os.environ.items() if k not in _INHERITED_NOISE})
        answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return {**record, "error": f"could not ask {executable} for its versions: {exc}"}
    if not isinstance(answer, dict) or not isinstance(answer.get("tools"), dict):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**record, "error": f"could not ask {executable} for its versions "
                                   f"(exit code {done.returncode}): {tail[0][:300]}"}
    return {**record, "python": answer.get("python"), "prefix": answer.get("prefix"),
            "tools": {name: answer["tools"].get(name) for name in tools}}
