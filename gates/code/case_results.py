"""Per-test outcomes, whichever file they came from, and the tallies built on them.

Both readers (`gates.code.reportlog_reader` for the streamed log of our own run,
`gates.code.junit_reader` for JUnit XML another CI step wrote) produce the same
frozen `CaseResult` records; everything the suite-health gate reports is
computed from those records here, so the numbers never depend on which file
was read. A test belongs to the first suite (`e2e`, `integration`, `unit`)
named by one of its markers or by a folder of its node id:

    >>> suite_of("tests/unit/test_a.py::test_ok", frozenset())
    'unit'
    >>> suite_of("tests/test_flow.py::test_ok", frozenset({"integration"}))
    'integration'
"""

from __future__ import annotations

import enum
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

SUITES = ("unit", "integration", "e2e")
OTHER_SUITE = "other"
MESSAGE_LINES = 3

_ERROR_TYPE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")
_QUOTED_CAUSE = re.compile(r'^failed on \w+ with "(.*)"$', re.S)


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # setup or teardown broke, not the test body
    SKIPPED = "skipped"  # includes expected failures (xfail)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One test's outcome. `message` is the crash message of a failure or error."""

    nodeid: str
    outcome: Outcome
    suite: str = OTHER_SUITE
    message: str = ""
    duration_s: float = 0.0

    @property
    def file(self) -> str:
        return self.nodeid.split("::", 1)[0]

    @property
    def error_type(self) -> str:
        return error_type_of(self.message)

    @property
    def short_message(self) -> str:
        lines = [line for line in self.message.strip().splitlines() if line.strip()]
        return "\n".join(lines[:MESSAGE_LINES])


def suite_of(nodeid: str, markers: Iterable[str]) -> str:
    """The suite a test belongs to: by marker first, then by folder."""
    marks = set(markers)
    folders = set(nodeid.split("::", 1)[0].split("/")[:-1])
    for suite in reversed(SUITES):  # the widest wins: an e2e test under unit/ is e2e
        if suite in marks:
            return suite
    for suite in reversed(SUITES):
        if suite in folders:
            return suite
    return OTHER_SUITE


def error_type_of(message: str) -> str:
    """`AssertionError` from `AssertionError: x` or a bare `assert x`, else `unknown`."""
    text = message.strip()
    quoted = _QUOTED_CAUSE.match(text)
    if quoted:
        text = quoted.group(1).strip()
    if text.startswith("assert ") or text == "assert":
        return "AssertionError"
    match = _ERROR_TYPE.match(text.splitlines()[0] if text else "")
    return match.group(1) if match else "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    total: int
    passed: int
    failed: int
    errors: int
    skipped: int

    @property
    def executed(self) -> int:
        return self.total - self.skipped

    @property
    def pass_pct(self) -> float | None:
        """Passed over executed (skips neither pass nor fail); None if nothing ran."""
        return 100.0 * self.passed / self.executed if self.executed else None


def tally(cases: Iterable[CaseResult]) -> Tally:
    counts = Counter(case.outcome for case in cases)
    return Tally(total=sum(counts.values()), passed=counts[Outcome.PASSED],
                 failed=counts[Outcome.FAILED], errors=counts[Outcome.ERROR],
                 skipped=counts[Outcome.SKIPPED])


def tally_by_suite(cases: Iterable[CaseResult]) -> dict[str, Tally]:
    """Tallies of the suites that have tests, in SUITES order, `other` last."""
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for case in cases:
        grouped[case.suite].append(case)
    order = [*SUITES, OTHER_SUITE]
    return {suite: tally(grouped[suite]) for suite in order if grouped.get(suite)}


def failing(cases: Iterable[CaseResult]) -> list[CaseResult]:
    return [case for case in cases if case.outcome in (Outcome.FAILED, Outcome.ERROR)]


def group_failures(cases: Iterable[CaseResult]) -> tuple[list[list], list[list]]:
    """Rows of (file, count) and (error type, count, first message), most first."""
    bad = failing(cases)
    by_file = Counter(case.file for case in bad)
    by_type: dict[str, list[CaseResult]] = defaultdict(list)
    for case in bad:
        by_type[case.error_type].append(case)
    file_rows = [[name, count] for name, count in by_file.most_common()]
    type_rows = [[kind, len(group), group[0].short_message]
                 for kind, group in sorted(by_type.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return file_rows, type_rows
