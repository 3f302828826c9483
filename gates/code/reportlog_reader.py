"""Read pytest-reportlog's JSON lines: per-test results that survive a killed run.

pytest-reportlog writes and flushes one JSON object per report as the run
goes, so when the process is killed by a signal or the OOM killer, every test
that finished is already on disk (the JUnit file is written only at the end).
A torn last line is expected after a kill and is skipped. One test yields up
to three reports (setup, call, teardown); they fold into one `CaseResult`
the way pytest's own summary counts them: a broken setup or teardown is an
error, a failed call a failure, an xfail a skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gates.code.case_results import CaseResult, Outcome, suite_of


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportLog:
    """What one log holds. `finished` is False when the session never ended."""

    cases: tuple[CaseResult, ...] = ()
    collect_errors: tuple[tuple[str, str], ...] = ()  # (node id, message)
    started: bool = False
    finished: bool = False
    exit_status: int | None = None
    torn_lines: int = 0
    markers_seen: frozenset[str] = field(default_factory=frozenset)


def _crash_message(longrepr: Any) -> str:
    if isinstance(longrepr, dict):
        crash = longrepr.get("reprcrash") or {}
        if crash.get("message"):
            return str(crash["message"])
        return str(longrepr.get("longrepr", ""))  # collection errors keep plain text here
    if isinstance(longrepr, (list, tuple)) and len(longrepr) == 3:
        return str(longrepr[2])  # a skip: (path, line, reason)
    return "" if longrepr is None else str(longrepr)


def _fold(reports: list[dict[str, Any]]) -> tuple[Outcome, str]:
    """One outcome from a test's setup / call / teardown reports."""
    by_when = {report.get("when"): report for report in reports}
    setup, call, teardown = by_when.get("setup"), by_when.get("call"), by_when.get("teardown")
    if setup and setup.get("outcome") == "failed":
        return Outcome.ERROR, _crash_message(setup.get("longrepr"))
    if setup and setup.get("outcome") == "skipped":
        return Outcome.SKIPPED, _crash_message(setup.get("longrepr"))
    if call and call.get("outcome") == "failed":
        return Outcome.FAILED, _crash_message(call.get("longrepr"))
    if call and call.get("outcome") == "skipped":
        return Outcome.SKIPPED, str(call.get("wasxfail") or _crash_message(call.get("longrepr")))
    if teardown and teardown.get("outcome") == "failed":
        return Outcome.ERROR, _crash_message(teardown.get("longrepr"))
    if call is None:
        # set up but never called: the process died inside this test
        return Outcome.ERROR, "Killed: the test started but never finished (the run ended inside it)"
    return Outcome.PASSED, ""


def read_reportlog(path: Path, *, root_name: str = "") -> ReportLog:
    """Parse the log at `path`; a missing file reads as a run that never started."""
    if not path.exists():
        return ReportLog()
    per_test: dict[str, list[dict[str, Any]]] = {}
    markers: dict[str, frozenset[str]] = {}
    durations: dict[str, float] = {}
    collect_errors: list[tuple[str, str]] = []
    started = finished = False
    exit_status = None
    torn = 0
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                torn += 1
                continue
            kind = record.get("$report_type")
            if kind == "SessionStart":
                started = True
            elif kind == "SessionFinish":
                finished, exit_status = True, record.get("exitstatus")
            elif kind == "CollectReport" and record.get("outcome") == "failed":
                collect_errors.append((record.get("nodeid", ""),
                                       _crash_message(record.get("longrepr"))))
            elif kind == "TestReport":
                nodeid = record.get("nodeid", "")
                per_test.setdefault(nodeid, []).append(record)
                markers[nodeid] = frozenset(record.get("keywords") or ()) - {root_name, ""}
                durations[nodeid] = durations.get(nodeid, 0.0) + float(record.get("duration") or 0)
    cases = []
    for nodeid, reports in per_test.items():
        outcome, message = _fold(reports)
        cases.append(CaseResult(nodeid=nodeid, outcome=outcome, message=message,
                                suite=suite_of(nodeid, markers[nodeid]),
                                duration_s=durations[nodeid]))
    return ReportLog(cases=tuple(cases), collect_errors=tuple(collect_errors), started=started,
                     finished=finished, exit_status=exit_status, torn_lines=torn,
                     markers_seen=frozenset().union(*markers.values()) if markers else frozenset())
