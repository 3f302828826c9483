"""The coverage gate on a sharded suite: one shard's numbers are no verdict; the merge judges.

When suite_health ran one shard (`readiness gate suite_health --shard i/N`
runs coverage with it), the coverage gate reports that shard's numbers as an
`error` without a score and carries, per shard, where its coverage data lies
(relative to the project root) plus everything needed to judge the whole
later: the gate's settings, the sources, the critical modules and their
tiers. `merge` combines the shards' data files with coverage.py (lines, arcs
and test contexts, as `coverage combine` does) into
`<work>/merged-of-N/.coverage` and judges it exactly as the coverage of one
unsharded run, so N merged shards give the same line %, branch % and
per-file numbers. A shard whose data is missing (it was killed before
pytest-cov saved) or not restored on this machine keeps the merged result an
`error` that names it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.code.coverage_data import CoverageDataError, combine
from gates.code.suite_shards import local_path, local_root, merged_folder
from gates.engine.sharding import collect_parts
from gates.engine.spec import CodeSpec, CriticalModule, Tier
from gates.result import GateResult, Status


def suite_part(results: Mapping[str, GateResult]) -> tuple[int, int, Mapping[str, Any]] | None:
    """(index, count, part) when suite_health ran one shard of the suite, else None."""
    health = results.get("suite_health")
    if health is None:
        return None
    run = health.evidence.get("run") or {}
    parts = health.evidence.get("shard_parts") or {}
    if int(run.get("shard_count", 1)) <= 1 or len(parts) != 1:
        return None
    index, part = next(iter(parts.items()))
    return int(index), int(run["shard_count"]), part


def judge_inputs(code: CodeSpec, settings: Any) -> dict[str, Any]:
    return {"settings": dataclasses.asdict(settings), "sources": list(code.sources),
            "critical": [[m.path, m.tier] for m in code.critical],
            "tiers": {name: [t.line_pct, t.branch_pct, t.mutation_pct] for name, t in code.tiers.items()}}


def code_of(inputs: Mapping[str, Any], root: Path) -> CodeSpec:
    return CodeSpec(root=root, sources=tuple(inputs["sources"]),
                    critical=tuple(CriticalModule(path=p, tier=t) for p, t in inputs["critical"]),
                    tiers={name: Tier(line_pct=v[0], branch_pct=v[1], mutation_pct=v[2])
                           for name, v in inputs["tiers"].items()})


def shard_result(result: GateResult, shard: tuple[int, int, Mapping[str, Any]], code: CodeSpec,
                 settings: Any) -> GateResult:
    """This shard's coverage, as a partial result carrying what the merge needs."""
    index, count, health_part = shard
    part = {"complete": bool(health_part.get("complete")), "problem": health_part.get("problem"),
            "root": str(code.root), "folder": health_part.get("folder"),
            "coverage_data": health_part.get("coverage_data"), "shard_summary": result.summary}
    evidence = {**result.evidence, "shard_parts": {str(index): part},
                "run": {"shard": f"{index}/{count}", "shard_count": count, "judge": judge_inputs(code, settings)}}
    return result.with_(status=Status.ERROR, score=None, evidence=evidence,
                        summary=f"shard {index} of {count} only ({result.summary}): merge every shard "
                                "for the coverage of the whole suite",
                        remediation="Run every shard and fold them together with `readiness merge`.")


def merge(gate: Any, results: Sequence[GateResult]) -> GateResult:
    """One coverage result from the shards' results, judged on their combined data."""
    parts = collect_parts({"shard_count": r.evidence.get("run", {}).get("shard_count", 1),
                           "shard_parts": r.evidence.get("shard_parts", {})} for r in results)
    if not parts.parts:
        return results[-1]
    run = {**results[-1].evidence.get("run", {}), "shard": f"{','.join(map(str, sorted(parts.parts)))}/{parts.count}",
           "shard_count": parts.count}
    carried = {"shard_parts": {str(i): parts.parts[i] for i in sorted(parts.parts)}, "run": run}
    gaps = parts.describe_gaps()
    if gaps:
        return _error(gate, f"coverage of the sharded suite is incomplete: {gaps}", carried)
    ordered = [parts.parts[i] for i in sorted(parts.parts)]
    data_files = []
    for index, part in zip(sorted(parts.parts), ordered):
        if not part.get("coverage_data"):
            continue  # a shard without tests measures nothing
        found = local_path(part, "coverage_data")
        if found is None:
            return _error(gate, f"the coverage data of shard {index} of {parts.count} is not on this machine "
                                f"({part['coverage_data']} under the project root): restore every shard's "
                                "folder at the same place before merging", carried)
        data_files.append(found)
    if not data_files or "judge" not in run:
        return _error(gate, "no shard recorded coverage data", carried)
    root = local_root(ordered[0])
    try:
        combined = combine(data_files, merged_folder(root / str(ordered[0]["folder"]), parts.count) / ".coverage",
                           root=root)
    except CoverageDataError as exc:
        return _error(gate, str(exc), carried)
    judged = gate.judge_data(combined, code_of(run["judge"], root), gate.Settings(**run["judge"]["settings"]),
                             report_path=combined.with_name("coverage.json"))
    return judged.with_(summary=f"{judged.summary} (merged from {parts.count} shards)",
                        evidence={**judged.evidence, **carried}, duration_s=sum(r.duration_s for r in results))


def _error(gate: Any, summary: str, evidence: Mapping[str, Any]) -> GateResult:
    return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity, summary=summary,
                      evidence=dict(evidence),
                      remediation="Run the missing shards again and merge every shard's result.")
