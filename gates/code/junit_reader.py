"""Read JUnit XML that pytest (or another CI step) wrote, safely.

Parsed with defusedxml: a file with a DTD, entity expansion (the "billion
laughs" bomb) or external entities is refused, and so is malformed XML; both
raise `JUnitError` naming the file. Both pytest families are read: `xunit1`
carries a `file` attribute, `xunit2` (pytest's default) only a dotted
`classname`, from which the test file is recovered by looking for it under the
project root (`tests.unit.test_a.TestX` -> `tests/unit/test_a.py::TestX`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from gates.code.case_results import CaseResult, Outcome, suite_of


class JUnitError(Exception):
    """The JUnit file cannot be used; the message names the file and why."""


def _nodeid(case: Element, root: Path) -> str:
    name = case.get("name", "?")
    file_attr = case.get("file")
    parts = [part for part in case.get("classname", "").split(".") if part]
    if file_attr:
        module_parts = Path(file_attr).with_suffix("").parts
        classes = parts[len(module_parts):]
        return "::".join([Path(file_attr).as_posix(), *classes, name])
    for cut in range(len(parts), 0, -1):  # the longest prefix that is a file wins
        candidate = "/".join(parts[:cut]) + ".py"
        if (root / candidate).is_file():
            return "::".join([candidate, *parts[cut:], name])
    return "::".join(["/".join(parts) + ".py" if parts else "?", name])


def _outcome(case: Element) -> tuple[Outcome, str]:
    for tag, outcome in (("error", Outcome.ERROR), ("failure", Outcome.FAILED),
                         ("skipped", Outcome.SKIPPED)):
        child = case.find(tag)
        if child is not None:
            message = child.get("message") or (child.text or "").strip()
            return outcome, message
    return Outcome.PASSED, ""


def read_junit(path: Path, *, root: Path) -> tuple[CaseResult, ...]:
    """Every test case in the file; raises JUnitError for an unusable file."""
    try:
        tree = SafeET.parse(str(path))
    except FileNotFoundError:
        raise JUnitError(f"JUnit XML {path} does not exist") from None
    except DefusedXmlException as exc:
        raise JUnitError(f"JUnit XML {path} was refused as unsafe ({type(exc).__name__}: "
                         f"DTDs and entity declarations are not allowed)") from None
    except ParseError as exc:
        raise JUnitError(f"JUnit XML {path} is malformed: {exc}") from None
    document = tree.getroot()
    if document.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"JUnit XML {path} has root <{document.tag}>, not <testsuites>")
    cases = []
    for case in document.iter("testcase"):
        nodeid = _nodeid(case, root)
        outcome, message = _outcome(case)
        cases.append(CaseResult(nodeid=nodeid, outcome=outcome, message=message,
                                suite=suite_of(nodeid, ()),
                                duration_s=_duration(case, path)))
    return tuple(cases)


def _duration(case: Any, path: Path) -> float:
    raw = case.get("time") or "0"
    try:
        value = float(raw.replace(",", ""))  # some writers use thousands separators
    except ValueError:
        raise JUnitError(f"JUnit XML {path}: test case {case.get('name')!r} has a time of "
                         f"{raw[:40]!r}, not a number") from None
    return value if value >= 0 and value == value else 0.0
