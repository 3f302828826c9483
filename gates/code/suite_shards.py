"""suite_health across a CI matrix: run one shard of the test files, merge the shards.

`readiness gate suite_health --shard i/N` runs the project's pytest with the
`readiness_shard` plugin (`gates.code.shard_plugin`), which keeps the test
files of shard i, balanced by the durations of an earlier JUnit file:
`durations` (a JUnit XML path in the project) or else the JUnit of the last
unsharded run in the work folder; without either, by test counts. Each shard
writes its JUnit, coverage data and streamed log into
`<work>/shard-i-of-N/` and its result carries one part record:

    {"complete", "problem", "root", "folder", "junit", "coverage_data", "cases",
     "flaky", "digest", "files", "tests", "wall_s", "peak_rss_mb", "min_pass_pct",
     "durations_from"}

with paths relative to the project root, so the merge job finds the shard
folders where the CI restored them. `merge` adds the per-test outcomes of all
N shards and judges them as one run; it writes the merged JUnit into
`<work>/merged-of-N/`. A shard that was killed keeps the tests it finished;
while any shard is missing or incomplete the merged result is `error` and
names it. Shards that split the files differently (they read different
durations) are refused rather than added up.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence
from xml.etree import ElementTree

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from gates.code.case_results import CaseResult, Outcome, tally
from gates.code.junit_reader import JUnitError, read_junit
from gates.code.project_paths import ProjectPaths
from gates.engine.sharding import Parts, collect_parts
from gates.result import GateResult, Status

PLUGIN_MODULE = "readiness_shard"
PLUGIN_SOURCE = Path(__file__).with_name("shard_plugin.py")


def shard_folder(work_dir: Path, index: int, count: int) -> Path:
    return work_dir / f"shard-{index}-of-{count}"


def merged_folder(shard_dir: Path, count: int) -> Path:
    return shard_dir.parent / f"merged-of-{count}"


def durations_of(junit: Path | None, root: Path) -> dict[str, float]:
    """Seconds per test file from a JUnit file (empty when there is none or it is unusable)."""
    if junit is None or not junit.is_file():
        return {}
    try:
        cases = read_junit(junit, root=root)
    except JUnitError:
        return {}
    seconds: dict[str, float] = {}
    for case in cases:
        seconds[case.file] = seconds.get(case.file, 0.0) + case.duration_s
    return seconds


def prepare(folder: Path, index: int, count: int, durations: Mapping[str, float]) -> dict[str, str]:
    """Install the plugin beside the shard's artifacts; the environment that turns it on."""
    plugin_dir = folder / "plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLUGIN_SOURCE, plugin_dir / f"{PLUGIN_MODULE}.py")
    weights = folder / "durations.json"
    weights.write_text(json.dumps(dict(durations), sort_keys=True), encoding="utf-8")
    record = folder / "partition.json"
    record.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(plugin_dir), os.environ.get("PYTHONPATH", "")) if p)
    return {"READINESS_SHARD": f"{index}/{count}", "READINESS_SHARD_DURATIONS": str(weights),
            "READINESS_SHARD_RECORD": str(record), "PYTHONPATH": path}


def read_partition(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "partition.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def case_rows(cases: Sequence[CaseResult]) -> list[list[Any]]:
    return [[c.nodeid, c.outcome.value, c.suite, round(c.duration_s, 4), c.short_message] for c in cases]


def cases_of(rows: Sequence[Sequence[Any]]) -> tuple[CaseResult, ...]:
    return tuple(CaseResult(nodeid=str(r[0]), outcome=Outcome(r[1]), suite=str(r[2]), duration_s=float(r[3]),
                            message=str(r[4])) for r in rows)


def relative(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def local_root(part: Mapping[str, Any]) -> Path:
    """The project root of a part on this machine: where it was recorded, else the working folder."""
    recorded = Path(str(part.get("root", "")))
    return recorded if part.get("root") and recorded.is_dir() else Path.cwd()


def local_path(part: Mapping[str, Any], key: str) -> Path | None:
    """Where a part's file is on this machine: under its recorded root, else under the
    working folder (the merge job's checkout); never outside that root."""
    value = part.get(key)
    if not value:
        return None
    for root in (Path(str(part.get("root", ""))), Path.cwd()):
        if root.is_dir():
            candidate = root / value
            if candidate.exists() and ProjectPaths(root).is_inside(candidate):
                return candidate
    return None


def shard_result(result: GateResult, *, index: int, count: int, root: Path, folder: Path, artifacts: Any,
                 cases: Sequence[CaseResult], problem: str | None, flaky: Sequence[str], min_pass_pct: float,
                 durations: Path | None) -> GateResult:
    """One shard's result: never a verdict of its own, carrying what the merge needs."""
    partition = read_partition(folder)
    rows = case_rows(cases)
    part = {"complete": problem is None, "problem": problem, "root": str(root), "folder": relative(folder, root),
            "junit": relative(artifacts.junit, root) if artifacts.junit.exists() else None,
            "coverage_data": relative(artifacts.coverage_data, root)
            if problem is None and cases and artifacts.coverage_data.exists() else None,
            "cases": rows, "flaky": sorted(flaky), "digest": partition.get("digest"),
            "files": partition.get("files", []), "tests": len(rows),
            "wall_s": result.metrics.get("wall_s", 0.0), "peak_rss_mb": result.metrics.get("peak_rss_mb", 0.0),
            "min_pass_pct": min_pass_pct,
            "durations_from": relative(durations, root) if durations else "test counts (no durations recorded)"}
    evidence = {**result.evidence, "shard_parts": {str(index): part},
                "run": {"shard": f"{index}/{count}", "shard_count": count}}
    others = ", ".join(str(i) for i in range(1, count + 1) if i != index)
    if problem is None:
        summary = (f"shard {index} of {count} only ({len(part['files'])} test files: {result.summary}): "
                   f"merge shards {others} for a verdict")
    else:
        summary = f"shard {index} of {count} did not complete: {result.summary}"
    return result.with_(status=Status.ERROR, score=None, summary=summary, evidence=evidence,
                        remediation="Run every shard and fold them together with `readiness merge`.")


def write_merged_junit(parts: Parts, into: Path) -> Path | None:
    """One JUnit file holding every shard's test suites (None when no shard wrote one)."""
    merged = ElementTree.Element("testsuites")
    for index in sorted(parts.parts):
        source = local_path(parts.parts[index], "junit")
        if source is None:
            continue
        try:
            document = SafeET.parse(str(source)).getroot()
        except (DefusedXmlException, ElementTree.ParseError):
            continue
        suites = [document] if document.tag == "testsuite" else list(document.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{suite.get('name', 'pytest')} (shard {index} of {parts.count})")
            merged.append(suite)
    if not len(merged):
        return None
    into.mkdir(parents=True, exist_ok=True)
    target = into / "junit.xml"
    ElementTree.ElementTree(merged).write(target, encoding="utf-8", xml_declaration=True)
    return target


def merge(gate: Any, results: Sequence[GateResult], judge: Any, evidence_of: Any,
          metrics_of: Any) -> GateResult:
    """One suite_health result from shard results, in the order produced."""
    records = [{"shard_count": r.evidence.get("run", {}).get("shard_count", 1),
                "shard_parts": r.evidence.get("shard_parts", {})} for r in results]
    parts = collect_parts(records)
    if not parts.parts:
        return results[-1]  # whole runs, not shards: the latest stands
    digests = sorted({str(p["digest"]) for p in parts.parts.values() if p.get("digest")})
    if len(digests) > 1:
        return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity,
                          summary=f"suite shards split the test files differently (partitions "
                                  f"{', '.join(digests)}): they read different durations",
                          remediation="Give every shard job the same durations file "
                                      "(gates.suite_health.durations) and run them again.")
    ordered = [parts.parts[i] for i in sorted(parts.parts)]
    cases = tuple(c for p in ordered for c in cases_of(p.get("cases", [])))
    flaky = sorted({t for p in ordered for t in p.get("flaky", [])})
    first = ordered[0]
    junit = write_merged_junit(parts, merged_folder(local_root(first) / str(first.get("folder", "")), parts.count))
    evidence: dict[str, Any] = {"mode": "merged shards", **evidence_of(cases),
                                "files": [str(junit)] if junit else [],
                                "shard_parts": {str(i): parts.parts[i] for i in sorted(parts.parts)},
                                "run": {"shard": f"{','.join(map(str, sorted(parts.parts)))}/{parts.count}",
                                        "shard_count": parts.count}}
    if flaky:
        evidence["flaky_tests"] = flaky
    interpreter = next((r.evidence["interpreter"] for r in reversed(results) if r.evidence.get("interpreter")), None)
    if interpreter is not None:
        evidence["interpreter"] = interpreter  # provenance: the shards ran the project's interpreter
    metrics: dict[str, Any] = {"shards": parts.count,
                               "wall_s": max(float(p.get("wall_s", 0.0)) for p in ordered),
                               "peak_rss_mb": max(float(p.get("peak_rss_mb", 0.0)) for p in ordered)}
    duration = sum(r.duration_s for r in results)
    gaps = parts.describe_gaps()
    if gaps:
        evidence["partial"] = metrics_of(cases)
        return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity, metrics=metrics,
                          evidence=evidence, duration_s=duration,
                          summary=f"the sharded suite is incomplete: {gaps} ({len(cases)} tests reported so far)",
                          remediation="Run the missing shards again (a killed shard keeps its finished tests in "
                                      "the evidence) and merge every shard's result.")
    status, score, summary = judge(tally(cases), flaky=len(flaky), min_pass_pct=float(first.get("min_pass_pct", 100.0)))
    if status is not Status.ERROR:
        metrics.update(metrics_of(cases))
        metrics["flaky"] = len(flaky)
    return GateResult(name=gate.name, status=status, severity=gate.severity, score=score, metrics=metrics,
                      evidence=evidence, duration_s=duration,
                      summary=f"{summary} (merged from {parts.count} shards)",
                      remediation="" if status is Status.PASS else
                      "Fix the failing tests listed under failures and run the shards again.")
