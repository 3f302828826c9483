"""suite_health: one real pytest run per seeded project, judged from its streamed log."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import pytest

from gates.code.case_results import Tally
from gates.code.suite_health import Settings, SuiteHealthGate, judge
from gates.engine import process_watch
from gates.engine.protocol import GateError
from gates.result import Status
from tests.fixtures.processes import HANG_GUARD_S, ClockAfter, wait_until_gone
from tests.gates.code.quality_projects import context, copy_project


def run_gate(name: str, tmp_path: Path, **settings) -> tuple:
    root = copy_project(name, tmp_path)
    result = SuiteHealthGate().check(context(root, Settings(**settings), tmp_path / "work"))
    return root, result


@pytest.fixture(scope="module")
def failing_result(tmp_path_factory):
    return run_gate("failing", tmp_path_factory.mktemp("failing"), rerun_failures=True)[1]


def test_healthy_project_passes_with_counts_and_artifacts(tmp_path):
    _, result = run_gate("healthy", tmp_path)
    assert result.status is Status.PASS
    assert result.score == 1.0
    assert result.metrics["tests_total"] == 4
    assert result.metrics["tests_passed"] == 4
    assert result.metrics["unit_pass_pct"] == 100.0
    assert "integration_pass_pct" not in result.metrics
    assert result.metrics["wall_s"] > 0 and result.metrics["peak_rss_mb"] > 0
    assert Path(result.evidence["coverage_data"]).is_file()
    assert result.evidence["failing_tests"] == []
    assert any(path.endswith("junit.xml") for path in result.evidence["files"])


def test_failures_are_grouped_by_file_and_error_type(failing_result):
    assert failing_result.status is Status.FAIL
    assert failing_result.metrics["tests_failed"] == 4
    assert failing_result.metrics["unit_pass_pct"] == 66.67
    assert failing_result.metrics["integration_pass_pct"] == 0.0
    tables = {table["title"]: table["rows"] for table in failing_result.evidence["tables"]}
    assert tables["Failures by file"] == [["tests/integration/test_flow.py", 2],
                                          ["tests/unit/test_wrong.py", 2]]
    by_type = {row[0]: row[1] for row in tables["Failures by error type"]}
    assert by_type == {"AssertionError": 3, "KeyError": 1}
    details = {f["title"]: f["detail"] for f in failing_result.evidence["failures"]}
    assert "expected the mean to be 2" in details["tests/unit/test_wrong.py::test_mean_is_wrong"]


def test_failing_test_ids_are_listed_for_the_mutation_gate(failing_result):
    assert failing_result.evidence["failing_tests"] == [
        "tests/integration/test_flow.py::test_flaky_first_time_only",
        "tests/integration/test_flow.py::test_mean_after_clamp_is_wrong",
        "tests/unit/test_wrong.py::test_clamp_key_error",
        "tests/unit/test_wrong.py::test_mean_is_wrong",
    ]


def test_rerun_flags_the_test_that_passes_the_second_time_as_flaky(failing_result):
    assert failing_result.metrics["flaky"] == 1
    assert failing_result.evidence["flaky_tests"] == [
        "tests/integration/test_flow.py::test_flaky_first_time_only"]


def test_collection_error_is_error_naming_the_module(tmp_path):
    _, result = run_gate("collect_error", tmp_path)
    assert result.status is Status.ERROR
    assert result.score is None
    assert "collection error" in result.summary
    assert "calc.missing_module" in result.summary
    assert "pass_pct" not in result.metrics


def test_zero_tests_collected_is_error_not_a_score(tmp_path):
    _, result = run_gate("empty_suite", tmp_path)
    assert result.status is Status.ERROR
    assert result.score is None
    assert "no tests were collected" in result.summary
    assert "tests_total" not in result.metrics


def test_run_killed_by_a_signal_is_error_keeping_partial_results(tmp_path):
    _, result = run_gate("killed", tmp_path)
    assert result.status is Status.ERROR
    assert "SIGKILL" in result.summary and "peak RSS" in result.summary
    assert result.metrics["signal"] == "SIGKILL"
    partial = result.evidence["partial"]
    assert partial["tests_passed"] == 5  # 4 in test_core.py + test_before_the_kill
    assert result.evidence["failing_tests"] == [
        "tests/unit/test_zz_kill.py::test_kills_its_own_process"]
    by_type = {t["title"]: t["rows"] for t in result.evidence["tables"]}["Failures by error type"]
    assert [row[:2] for row in by_type] == [["Killed", 1]]


def test_timeout_is_error_and_kills_the_whole_process_group(tmp_path, monkeypatch):
    # The run times out on an event, not on the machine's speed: the clock leaps
    # past the timeout once the hanging test has started its child `sleep`.
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("HANG_PID_FILE", str(pid_file))
    monkeypatch.setattr(process_watch, "time", ClockAfter(pid_file))
    _, result = run_gate("hanging", tmp_path, timeout_s=HANG_GUARD_S)
    assert result.status is Status.ERROR
    assert f"timed out after {HANG_GUARD_S:g} s" in result.summary
    assert result.evidence["partial"]["tests_passed"] == 4
    assert wait_until_gone(int(pid_file.read_text())), "the test's child `sleep` survived the timeout"


def test_missing_pytest_is_error_never_a_score(tmp_path):
    # -S drops site-packages, so this interpreter cannot import pytest
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    _, result = run_gate("healthy", tmp_path, python=str(wrapper))
    assert result.status is Status.ERROR
    assert result.score is None
    assert result.summary == f"pytest is not installed for {wrapper}"


def test_the_interpreter_that_ran_the_tests_is_recorded_as_it_reports_itself(tmp_path):
    site = tmp_path / "site" / "pytest-99.1.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest\nVersion: 99.1\n")
    wrapper = tmp_path / "venv-python"  # stands for another venv's interpreter
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site.parent}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    _, result = run_gate("healthy", tmp_path, python=str(wrapper))
    assert result.status is Status.PASS, result.summary
    interpreter = result.evidence["interpreter"]
    assert interpreter["executable"] == str(wrapper) and interpreter["python"] == platform.python_version()
    assert interpreter["tools"]["pytest"] == "99.1"
    assert interpreter["tools"]["coverage"] == metadata.version("coverage")


def test_suite_that_asserts_nothing_still_passes_here(tmp_path):
    # documented limit: only the mutation gate can see that these tests check nothing
    _, result = run_gate("no_asserts", tmp_path)
    assert result.status is Status.PASS


def test_ingested_junit_is_counted_without_running_anything(tmp_path):
    root = copy_project("healthy", tmp_path)
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="tests.unit.test_core" name="test_mean"/>'
        '<testcase classname="tests.unit.test_core" name="test_bad">'
        '<failure message="KeyError: \'x\'">trace</failure></testcase>'
        '<testcase classname="tests.unit.test_core" name="test_skip"><skipped/></testcase>'
        '</testsuite></testsuites>')
    ctx = context(root, Settings(), tmp_path / "work", junit_xml=junit)
    result = SuiteHealthGate().check(ctx)
    assert result.status is Status.FAIL
    assert result.evidence["mode"] == "ingest"
    assert result.evidence["failing_tests"] == ["tests/unit/test_core.py::test_bad"]
    assert result.metrics["pass_pct"] == 50.0
    assert result.metrics["tests_skipped"] == 1
    assert not (tmp_path / "work").exists()


def test_unsafe_junit_is_refused_naming_the_file(tmp_path):
    root = copy_project("healthy", tmp_path)
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;">]><testsuites>&b;</testsuites>')
    with pytest.raises(GateError, match="bomb.xml was refused as unsafe"):
        SuiteHealthGate().check(context(root, Settings(), tmp_path / "w", junit_xml=bomb))


def test_malformed_junit_is_an_error_naming_the_file(tmp_path):
    root = copy_project("healthy", tmp_path)
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testsuite>")
    with pytest.raises(GateError, match="broken.xml is malformed"):
        SuiteHealthGate().check(context(root, Settings(), tmp_path / "w", junit_xml=broken))


def tally_of(passed: int, failed: int = 0, skipped: int = 0) -> Tally:
    return Tally(total=passed + failed + skipped, passed=passed, failed=failed, errors=0,
                 skipped=skipped)


def test_one_failure_in_thousands_still_fails_at_a_100_pct_bar():
    status, score, _ = judge(tally_of(9999, failed=1), flaky=0, min_pass_pct=100.0)
    assert status is Status.FAIL  # 99.99 % would show as 100.0 when rounded
    assert score == pytest.approx(0.9999)


def test_failures_above_a_lower_bar_warn():
    status, _, _ = judge(tally_of(96, failed=4), flaky=0, min_pass_pct=95.0)
    assert status is Status.WARN
    status, _, _ = judge(tally_of(94, failed=6), flaky=0, min_pass_pct=95.0)
    assert status is Status.FAIL


def test_only_flaky_failures_warn():
    status, _, summary = judge(tally_of(9, failed=1), flaky=1, min_pass_pct=100.0)
    assert status is Status.WARN
    assert "1 flaky" in summary


def test_all_skipped_is_error():
    status, score, summary = judge(tally_of(0, skipped=3), flaky=0, min_pass_pct=100.0)
    assert (status, score) == (Status.ERROR, None)
    assert "all 3 tests were skipped" in summary


def test_gate_without_code_section_raises():
    from gates.engine.protocol import GateContext
    from gates.engine.spec import ProjectSpec
    ctx = GateContext(spec=ProjectSpec(name="x", root=Path(".")), settings=Settings(),
                      work_dir=Path(os.devnull))
    with pytest.raises(GateError, match=r"no \[code\] section"):
        SuiteHealthGate().check(ctx)


def test_missing_reportlog_plugin_is_named(tmp_path):
    root = copy_project("healthy", tmp_path)
    ctx = context(root, Settings(), tmp_path / "work", pytest_args=("-p", "no:reportlog"))
    result = SuiteHealthGate().check(ctx)
    assert result.status is Status.ERROR
    assert result.summary.startswith("pytest-reportlog is not installed")
