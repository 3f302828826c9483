"""What the mutation gate learns from the suite run: the failing tests and who tests what.

Usually from `suite_health` in the same assessment: the tests it saw failing
(deselected, since a failing test stops mutmut) and its coverage data with
test contexts (from which each mutated module gets the tests that reach it;
`[code] coverage_data`, when configured, is read instead).

In a CI matrix whose suite is itself sharded, each mutation job would
otherwise run the whole suite again; `suite_result` names the document an
earlier job wrote (`readiness merge ... --out suite` writes
`suite/assessment.json`), whose suite_health and coverage results are read
instead. Its coverage data path was recorded on the machine that merged; when
it is not there, the same path relative to that document's project root is
looked up under this project's root (restore the folder at the same place).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from gates.code.project_paths import ProjectPaths
from gates.engine.protocol import GateError
from gates.engine.spec import CodeSpec
from gates.result import GateResult, Status


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteFacts:
    failing: tuple[str, ...]
    coverage_data: Path | None
    why_no_data: str = ""
    source: str = "suite_health"


def from_results(code: CodeSpec, results: Mapping[str, GateResult], source: str = "suite_health",
                 recorded_root: Path | None = None, project_root: Path | None = None) -> SuiteFacts:
    health = results.get("suite_health")
    failing = tuple(sorted({str(n) for n in (health.evidence.get("failing_tests", []) if health else [])}))
    if code.coverage_data is not None:
        return SuiteFacts(failing=failing, coverage_data=code.coverage_data, source=source)
    if health is None or health.status in (Status.SKIPPED, Status.OFF):
        return SuiteFacts(failing=failing, coverage_data=None, source=source,
                          why_no_data=f"{source}: suite_health did not run: no coverage contexts to select tests from")
    coverage = results.get("coverage")
    recorded = next((r.evidence["coverage_data"] for r in (coverage, health)
                     if r is not None and r.evidence.get("coverage_data")), None)
    if recorded is None:
        return SuiteFacts(failing=failing, coverage_data=None, source=source,
                          why_no_data=f"{source}: suite_health produced no coverage data "
                                      f"({health.status.value}: {health.summary})")
    local = _local(Path(str(recorded)), project_root or code.root, recorded_root)
    return SuiteFacts(failing=failing, coverage_data=local, source=source,
                      why_no_data="" if local else f"{source}: its coverage data {recorded} is not on this machine")


def from_document(name: str, code: CodeSpec, project_root: Path) -> SuiteFacts:
    """The facts of the suite_health (and coverage) results stored in document `name`
    (relative to the project root, where the configuration is)."""
    path = Path(os.path.normpath(project_root / name))
    if not path.is_relative_to(project_root) or not ProjectPaths(project_root).is_inside(path):
        raise GateError(f"setting suite_result: {name!r} leads outside the project")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        results = {g["name"]: GateResult.from_dict(g) for g in document["gates"]}
        recorded_root = Path(str(document["project"]["root"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GateError(f"setting suite_result: {path} is not a readable assessment document ({exc})") from None
    if "suite_health" not in results or results["suite_health"].status in (Status.SKIPPED, Status.OFF):
        raise GateError(f"setting suite_result: {path} holds no suite_health result")
    return from_results(code, results, source=name, recorded_root=recorded_root, project_root=project_root)


def _local(recorded: Path, root: Path, recorded_root: Path | None) -> Path | None:
    """The data file on this machine: as recorded, else at the same place under this root."""
    if recorded.is_file():
        return recorded
    if recorded_root is not None and recorded.is_relative_to(recorded_root):
        here = root / recorded.relative_to(recorded_root)
        if here.is_file() and ProjectPaths(root).is_inside(here):
            return here
    return None
