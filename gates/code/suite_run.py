"""One pytest run that yields everything: JUnit XML, coverage data, a streamed log.

The earlier harness ran the suite twice and parsed `-q` text with regexes.
Here the project's pytest runs once, in its own session, with pytest-cov
(`--cov=<source> --cov-branch --cov-report=`, data file in the work folder
through COVERAGE_FILE; `--cov-context=test` records who tests what),
`--junitxml` for CI and `--report-log` for results that survive a kill.
Nothing reads pytest's terminal output except to explain why pytest never
started (not installed, a plugin missing).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from gates.code.interpreter import ask_interpreter, clean_env, interpreter_path  # noqa: F401 (re-exported)
from gates.code.reportlog_reader import ReportLog, read_reportlog
from gates.engine.process_watch import WatchedRun, run_watched


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
                coverage: bool = True, contexts: bool = True) -> list[str]:
    """The command line of the single measured run.

    With `contexts`, coverage.py records which test ran each line
    (`--cov-context=test`): the mutation gate selects its tests from that.
    """
    argv = [python or sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider",
            f"--report-log={artifacts.reportlog}"]
    if coverage:
        argv += [f"--junitxml={artifacts.junit}"]
        argv += [f"--cov={source}" for source in sources] + ["--cov-branch", "--cov-report="]
        argv += ["--cov-context=test"] if contexts else []
    else:
        argv += ["--no-cov"] if sources else []
    return argv + list(extra)


def child_env(artifacts: SuiteArtifacts, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return clean_env({"COVERAGE_FILE": str(artifacts.coverage_data), **(extra or {})})


def run_suite(*, root: Path, argv: list[str], artifacts: SuiteArtifacts,
              timeout_s: float, env: Mapping[str, str] | None = None) -> SuiteRun:
    """Run once; stale artifacts of an earlier run are removed first."""
    artifacts.folder.mkdir(parents=True, exist_ok=True)
    for stale in (artifacts.junit, artifacts.reportlog, artifacts.coverage_data):
        stale.unlink(missing_ok=True)
    watched = run_watched(argv, cwd=root, log_path=artifacts.output, timeout_s=timeout_s,
                          env=child_env(artifacts, env))
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
