"""Reading pytest-reportlog lines and folding them into per-test outcomes."""

from __future__ import annotations

import json

from gates.code.case_results import Outcome, error_type_of, suite_of
from gates.code.reportlog_reader import read_reportlog


def line(**record) -> str:
    return json.dumps(record) + "\n"


def report(nodeid: str, when: str, outcome: str, **extra) -> str:
    return line(**{"$report_type": "TestReport", "nodeid": nodeid, "when": when,
                   "outcome": outcome, "keywords": {}, "longrepr": None, **extra})


def test_torn_last_line_after_a_kill_is_skipped(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(line(**{"$report_type": "SessionStart"})
                   + report("tests/unit/test_a.py::test_ok", "setup", "passed")
                   + report("tests/unit/test_a.py::test_ok", "call", "passed")
                   + '{"$report_type": "TestRep')
    parsed = read_reportlog(log)
    assert parsed.started and not parsed.finished
    assert parsed.torn_lines == 1
    assert [(c.nodeid, c.outcome) for c in parsed.cases] == [
        ("tests/unit/test_a.py::test_ok", Outcome.PASSED)]


def test_phases_fold_like_pytest_counts_them(tmp_path):
    crash = {"reprcrash": {"message": "RuntimeError: boom"}}
    log = tmp_path / "log.jsonl"
    log.write_text(report("t.py::setup_broke", "setup", "failed", longrepr=crash)
                   + report("t.py::teardown_broke", "setup", "passed")
                   + report("t.py::teardown_broke", "call", "passed")
                   + report("t.py::teardown_broke", "teardown", "failed", longrepr=crash)
                   + report("t.py::xfail", "setup", "passed")
                   + report("t.py::xfail", "call", "skipped", wasxfail="known")
                   + report("t.py::died", "setup", "passed"))
    outcomes = {c.nodeid: c.outcome for c in read_reportlog(log).cases}
    assert outcomes == {"t.py::setup_broke": Outcome.ERROR, "t.py::teardown_broke": Outcome.ERROR,
                        "t.py::xfail": Outcome.SKIPPED, "t.py::died": Outcome.ERROR}


def test_missing_log_reads_as_a_run_that_never_started(tmp_path):
    assert not read_reportlog(tmp_path / "absent.jsonl").started


def test_suite_comes_from_marker_before_folder():
    assert suite_of("tests/unit/test_a.py::t", {"e2e"}) == "e2e"
    assert suite_of("tests/integration/test_a.py::t", ()) == "integration"
    assert suite_of("tests/test_a.py::t", ()) == "other"


def test_error_type_is_read_from_the_crash_message():
    assert error_type_of("KeyError: 'k'") == "KeyError"
    assert error_type_of("assert 1 == 2") == "AssertionError"
    assert error_type_of('failed on setup with "RuntimeError: setup broke"') == "RuntimeError"
    assert error_type_of("") == "unknown"
