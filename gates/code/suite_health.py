"""The `suite_health` gate: does the project's test suite run, and does it pass?

Runs the project's pytest once (see `gates.code.suite_run`: JUnit XML, branch
coverage data and a streamed per-test log from the same run), or, when the
configuration names `code.junit_xml`, ingests that file and runs nothing.

Settings: `timeout_s` (whole run; the process group is killed when it
expires), `python` (interpreter that runs pytest; default `[code] python`,
else the harness's own),
`rerun_failures` (re-run failing tests once; those that then pass are flaky),
`min_pass_pct` (below it the gate fails; at 100 any real failure fails),
`test_contexts` ("auto", "always", "never": record which test ran each line,
`--cov-context=test`, so the mutation gate runs only the tests that reach a
mutated module; "auto" records them when the mutation gate runs in the same
assessment, or for a shard, whose merged data may feed mutation jobs),
`shard` ("i/N": one shard of the test files, see `gates.code.suite_shards`),
`durations` (the JUnit file whose times balance the shards).

Evidence: `interpreter` (the interpreter that ran the tests and the Python,
pytest, pytest-cov, pytest-reportlog and coverage versions it reports when
asked), per-suite table (unit / integration / e2e by marker or folder),
failures grouped by file and by error type, `failures` (node id + first lines
of the message), `failing_tests` (node ids, read by the mutation gate),
`coverage_data` (read by the coverage gate), the files written.

`error`, never a score, when: pytest is missing or would not start, a test
file fails to collect, nothing was collected, every test was skipped, the run
timed out, or a signal killed it (the partial per-test results are kept).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.code import suite_shards
from gates.code.case_results import CaseResult, Outcome, Tally, failing, group_failures, tally, tally_by_suite
from gates.code.interpreter import ask_interpreter, chosen_python, interpreter_path
from gates.code.junit_reader import JUnitError, read_junit
from gates.code.project_paths import ProjectPaths
from gates.code.suite_run import SuiteArtifacts, SuiteRun, pytest_argv, run_suite, why_not_started
from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.engine.sharding import parse_shard
from gates.engine.spec import CodeSpec
from gates.result import GateResult, Severity, Status

MAX_FAILURES_LISTED = 100
CONFIG_FILES = ("pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini", "conftest.py",
                ".coveragerc")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    timeout_s: float = 900.0
    python: str = ""
    rerun_failures: bool = False
    min_pass_pct: float = 100.0
    test_contexts: str = "auto"
    shard: str = ""
    durations: str = ""


# -- measuring ------------------------------------------------------------------

def suite_tables(cases: tuple[CaseResult, ...]) -> list[dict[str, Any]]:
    rows = [[suite, t.total, t.passed, t.failed, t.errors, t.skipped,
             None if t.pass_pct is None else round(t.pass_pct, 1)]
            for suite, t in tally_by_suite(cases).items()]
    tables = [{"title": "Tests per suite",
               "columns": ["suite", "total", "passed", "failed", "errors", "skipped", "pass %"],
               "rows": rows}]
    by_file, by_type = group_failures(cases)
    if by_file:
        tables.append({"title": "Failures by file", "columns": ["file", "failing"], "rows": by_file})
        tables.append({"title": "Failures by error type",
                       "columns": ["error type", "failing", "first message"], "rows": by_type})
    return tables


def case_metrics(cases: tuple[CaseResult, ...]) -> dict[str, Any]:
    total = tally(cases)
    metrics: dict[str, Any] = {
        "tests_total": total.total, "tests_passed": total.passed,
        "tests_failed": total.failed, "tests_errors": total.errors,
        "tests_skipped": total.skipped, "pass_pct": round(total.pass_pct or 0.0, 2)}
    for suite, suite_tally in tally_by_suite(cases).items():
        if suite != "other" and suite_tally.pass_pct is not None:
            metrics[f"{suite}_pass_pct"] = round(suite_tally.pass_pct, 2)
    return metrics


def case_evidence(cases: tuple[CaseResult, ...]) -> dict[str, Any]:
    bad = failing(cases)
    return {"tables": suite_tables(cases),
            "failures": [{"title": case.nodeid, "detail": case.short_message}
                         for case in bad[:MAX_FAILURES_LISTED]],
            "failing_tests": sorted(case.nodeid for case in bad)}


def run_problem(run: SuiteRun, python: str, timeout_s: float) -> str | None:
    """Why a run yields no score, or None when its results can be judged."""
    watched, log = run.watched, run.log
    finished = sum(1 for case in log.cases if not case.message.startswith("Killed:"))
    if watched.timed_out:
        return (f"the test run timed out after {timeout_s:g} s and its process group was "
                f"killed; {finished} tests had finished")
    if watched.signal_name:
        return (f"the test run was killed by {watched.signal_name} after {finished} finished "
                f"tests (peak RSS {watched.peak_rss_mb:.0f} MB)")
    if not log.started:
        return why_not_started(run, python)
    if log.collect_errors:
        shown = "; ".join(f"{node or '<root>'}: {message.strip().splitlines()[-1] if message.strip() else '?'}"
                          for node, message in log.collect_errors[:3])
        return f"{len(log.collect_errors)} collection error(s): {shown}"
    if watched.returncode in (2, 3, 4):
        kind = {2: "was interrupted", 3: "hit an internal error", 4: "rejected its arguments"}
        return f"pytest {kind[watched.returncode]} (exit code {watched.returncode})"
    return None


# -- judging --------------------------------------------------------------------

def judge(total: Tally, *, flaky: int, min_pass_pct: float) -> tuple[Status, float | None, str]:
    """Status, score and summary for a run that produced results."""
    if total.total == 0:
        return Status.ERROR, None, "no tests were collected"
    if total.executed == 0:
        return Status.ERROR, None, f"all {total.total} tests were skipped: nothing was checked"
    pass_pct = total.pass_pct or 0.0
    real_failures = total.failed + total.errors - flaky
    effective_pct = 100.0 * (total.passed + flaky) / total.executed
    shown = round(effective_pct, 1)
    below = real_failures > 0 if min_pass_pct >= 100.0 else shown < min_pass_pct
    summary = (f"{total.passed}/{total.executed} executed tests passed ({pass_pct:.1f} %), "
               f"{total.failed} failed, {total.errors} errors, {total.skipped} skipped"
               + (f", {flaky} flaky" if flaky else ""))
    if below:
        return Status.FAIL, pass_pct / 100.0, summary
    if real_failures or flaky:
        return Status.WARN, pass_pct / 100.0, summary
    return Status.PASS, pass_pct / 100.0, summary


# -- the gate -------------------------------------------------------------------

class TestContexts(str, enum.Enum):
    """When the run records which test ran each line (it costs coverage time on big suites)."""

    __test__ = False  # not a pytest test class, whatever its name

    AUTO = "auto"  # when the mutation gate runs in the same assessment, or for a shard
    ALWAYS = "always"
    NEVER = "never"


def records_contexts(setting: str, options: Mapping[str, Any], sharded: bool) -> bool:
    """Whether this run records test contexts; raises GateError for an unknown setting."""
    try:
        chosen = TestContexts(setting)
    except ValueError:
        raise GateError(f"setting test_contexts: {setting!r} is not one of "
                        f"{', '.join(m.value for m in TestContexts)}") from None
    if chosen is TestContexts.AUTO:
        return sharded or "mutation" in options.get("gates", ())
    return chosen is TestContexts.ALWAYS


def code_spec(ctx: GateContext) -> CodeSpec:
    if ctx.spec.code is None:
        raise GateError("no [code] section: the suite_health gate needs code.sources and code.tests")
    return ctx.spec.code


# The class attribute `Settings` shadows the dataclass inside the class body.
GateSettings = Settings


class SuiteHealthGate(Gate):
    name = "suite_health"
    requires = Requires.CODE
    version = 1
    tools = ("pytest", "pytest-cov", "pytest-reportlog", "coverage")
    needs: tuple[str, ...] = ()
    severity = Severity.BLOCKER
    Settings = Settings

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        code = code_spec(ctx)
        paths = ProjectPaths(code.root)  # hashing reads files: never one outside the project
        files = [p for folder in (*code.sources, *code.tests)
                 for p in paths.files(code.root / folder, suffix=".py").absolute()]
        files += [code.root / name for name in CONFIG_FILES
                  if paths.is_inside(code.root / name) and (code.root / name).is_file()]
        files += [p for p in (code.junit_xml, code.coverage_data) if p is not None]
        return {"files": [str(p) for p in files], "settings": dataclasses.asdict(ctx.settings),
                "pytest_args": list(code.pytest_args), "work_dir": str(ctx.work_dir), "python": code.python,
                "contexts": records_contexts(ctx.settings.test_contexts, ctx.options,
                                             parse_shard(ctx.settings.shard)[1] > 1)}

    def check(self, ctx: GateContext) -> GateResult:
        code = code_spec(ctx)
        if code.junit_xml is not None:
            if ctx.settings.shard:
                raise GateError("setting shard: code.junit_xml is ingested, not run: there is nothing to shard")
            return self._ingest(code, code.junit_xml, ctx.settings)
        return self._run(ctx, code)

    def _ingest(self, code: CodeSpec, junit_xml: Path, settings: GateSettings) -> GateResult:
        try:
            cases = read_junit(junit_xml, root=code.root)
        except JUnitError as exc:
            raise GateError(str(exc)) from None
        evidence = {"mode": "ingest", **case_evidence(cases), "files": [str(code.junit_xml)]}
        if code.coverage_data is not None:
            evidence["coverage_data"] = str(code.coverage_data)
        status, score, summary = judge(tally(cases), flaky=0, min_pass_pct=settings.min_pass_pct)
        metrics = case_metrics(cases) if status is not Status.ERROR else {}
        return self._result(status, score, summary, metrics, evidence)

    def _run(self, ctx: GateContext, code: CodeSpec) -> GateResult:
        settings: Settings = ctx.settings
        python = chosen_python(settings.python, code.python)
        index, count = parse_shard(settings.shard)
        folder = suite_shards.shard_folder(ctx.work_dir, index, count) if count > 1 else ctx.work_dir
        artifacts = SuiteArtifacts(folder=folder)
        contexts = records_contexts(settings.test_contexts, ctx.options, count > 1)
        argv = pytest_argv(python=python, tests=code.tests, sources=code.sources,
                           artifacts=artifacts, extra=code.pytest_args, contexts=contexts)
        env: dict[str, str] = {}
        durations = self._durations_file(ctx, code) if count > 1 else None
        if count > 1:
            folder.mkdir(parents=True, exist_ok=True)
            env = suite_shards.prepare(folder, index, count, suite_shards.durations_of(durations, code.root))
            argv += ["-p", suite_shards.PLUGIN_MODULE]
        run = run_suite(root=code.root, argv=argv, artifacts=artifacts, timeout_s=settings.timeout_s, env=env)
        result, flaky, problem = self._judge_run(ctx, code, run, python)
        if count == 1:
            return result
        if problem is None and not suite_shards.read_partition(folder):
            problem = "the shard plugin wrote no partition: this run may hold every test, not shard " \
                      f"{index} of {count}"
        return suite_shards.shard_result(result, index=index, count=count, root=code.root, folder=folder,
                                         artifacts=artifacts, cases=run.log.cases, problem=problem, flaky=flaky,
                                         min_pass_pct=settings.min_pass_pct, durations=durations)

    def _durations_file(self, ctx: GateContext, code: CodeSpec) -> Path | None:
        """The JUnit file whose test times balance the shards: the setting, else the last whole run's.

        A named file that does not exist yet (the first CI run, before any
        durations were saved) balances by test counts in every shard alike.
        """
        if ctx.settings.durations:
            named = Path(os.path.normpath(code.root / ctx.settings.durations))
            if not named.is_relative_to(code.root) or not ProjectPaths(code.root).is_inside(named):
                raise GateError(f"setting durations: {ctx.settings.durations!r} leads outside the project")
            return named if named.is_file() else None
        last = SuiteArtifacts(folder=ctx.work_dir).junit
        return last if last.is_file() else None

    def _judge_run(self, ctx: GateContext, code: CodeSpec, run: SuiteRun,
                   python: str) -> tuple[GateResult, list[str], str | None]:
        """The result of one finished run, the flaky tests and why it yields no score (if so)."""
        settings: Settings = ctx.settings
        artifacts, cases = run.artifacts, run.log.cases
        # The project's tests may run in another venv than readiness: record
        # what that interpreter says it has, not what readiness has.
        interpreter = ask_interpreter(interpreter_path(python, code.root), self.tools, cwd=code.root)
        evidence: dict[str, Any] = {"mode": "run", "command": " ".join(run.argv), "interpreter": interpreter,
                                    **case_evidence(cases),
                                    "files": [str(p) for p in (artifacts.junit, artifacts.reportlog,
                                                               artifacts.output) if p.exists()]}
        metrics: dict[str, Any] = {"wall_s": round(run.watched.wall_s, 3),
                                   "peak_rss_mb": round(run.watched.peak_rss_mb, 1)}
        problem = run_problem(run, python, settings.timeout_s)
        if problem is None and artifacts.coverage_data.exists():
            evidence["coverage_data"] = str(artifacts.coverage_data)
            evidence["files"].append(str(artifacts.coverage_data))
        if problem is not None:
            evidence["partial"] = case_metrics(cases)
            if run.watched.signal_name and not run.watched.timed_out:
                metrics["signal"] = run.watched.signal_name
            return self._result(Status.ERROR, None, problem, metrics, evidence,
                                remediation="Fix the run itself (see the summary and "
                                f"{artifacts.output}); no score is given for a run that did not complete."), [], problem
        flaky = self._flaky(ctx, code, evidence["failing_tests"], artifacts.folder) \
            if settings.rerun_failures else []
        if settings.rerun_failures:
            evidence["flaky_tests"] = flaky
        status, score, summary = judge(tally(cases), flaky=len(flaky),
                                       min_pass_pct=settings.min_pass_pct)
        if status is not Status.ERROR:
            metrics.update(case_metrics(cases))
            metrics["flaky"] = len(flaky)
        return self._result(status, score, summary, metrics, evidence), flaky, None

    @classmethod
    def merge(cls, results: Sequence[GateResult]) -> GateResult:
        """Combine shard results (in the order produced) into one result, judged as one run."""
        return suite_shards.merge(cls, results, judge=judge, evidence_of=case_evidence, metrics_of=case_metrics)

    def _flaky(self, ctx: GateContext, code: CodeSpec, failing_ids: list[str], folder: Path) -> list[str]:
        """Failing tests that pass when run once more on their own."""
        if not failing_ids:
            return []
        artifacts = SuiteArtifacts(folder=folder / "rerun")
        argv = pytest_argv(python=chosen_python(ctx.settings.python, code.python), tests=failing_ids,
                           sources=code.sources,
                           artifacts=artifacts, extra=code.pytest_args, coverage=False)
        rerun = run_suite(root=code.root, argv=argv, artifacts=artifacts,
                          timeout_s=ctx.settings.timeout_s)
        return sorted(case.nodeid for case in rerun.log.cases
                      if case.outcome is Outcome.PASSED and case.nodeid in set(failing_ids))

    def _result(self, status: Status, score: float | None, summary: str,
                metrics: dict[str, Any], evidence: dict[str, Any],
                remediation: str = "") -> GateResult:
        if not remediation and status is Status.FAIL:
            remediation = ("Fix the failing tests listed under failures (grouped by file and "
                           "error type) and run the assessment again.")
        elif not remediation and status is Status.WARN:
            remediation = "Fix or quarantine the flaky and failing tests before shipping."
        elif not remediation and status is Status.ERROR:
            remediation = "Make the suite collect and run at least one test, then assess again."
        return GateResult(name=self.name, status=status, severity=self.severity, score=score,
                          summary=summary, metrics=metrics, evidence=evidence,
                          remediation=remediation)
