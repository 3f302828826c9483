"""Merging mutation shards: shard results added up and judged as one run.

`readiness merge` folds partial results pairwise, so a merge of some shards
is itself mergeable: an `error` naming the missing shards until all N are
in, then judged by `judging.result_of` exactly as one run would be.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from gates.engine.protocol import GateError
from gates.mutation.evidence import ModuleCounts, shard_parts
from gates.mutation.judging import incomplete, result_of
from gates.result import GateResult, Severity, Status


def _broken(name: str, severity: Severity, result: GateResult) -> GateResult:
    return GateResult(name=name, status=Status.ERROR, severity=severity,
                      summary=f"a mutation shard did not finish: {result.status.value}: {result.summary}",
                      evidence={"failures": [{"title": str(result.evidence.get("run", {}).get("shard", "?")),
                                              "detail": result.summary}]})


def merge_shards(name: str, severity: Severity, results: Sequence[GateResult]) -> GateResult:
    """One result from shard results, in the order they were produced.

    A later result for the same shard replaces the earlier one (a re-run
    job); results of a different partition (another N) than the last one
    are dropped. Counts of the kept shards are added and judged as one run;
    while shards are missing the result is an `error` naming them.
    """
    if not results:
        raise GateError("no mutation shard results to merge")
    parts: dict[int, dict[str, Any]] = {}
    outcomes: dict[int, list[Mapping[str, Any]]] = {}
    count, runs = 0, list[Mapping[str, Any]]()
    for result in results:
        run = result.evidence.get("run")
        if not run or "modules" not in result.evidence:
            return _broken(name, severity, result)
        if int(run.get("shard_count", 1)) != count:
            parts, outcomes, runs, count = {}, {}, [], int(run.get("shard_count", 1))
        runs.append(run)
        carried = result.evidence.get("shard_parts") or shard_parts(
            [ModuleCounts(**m) for m in result.evidence["modules"]], run)
        for index, part in carried.items():
            parts[int(index)] = part
            outcomes[int(index)] = [o for key in ("survivors", "timeouts", "no_tests", "suspicious")
                                    for o in result.evidence.get(key, []) if int(o.get("shard", index)) == int(index)]
    for key in ("sample", "seed", "judge", "mutants_total"):
        values = sorted({str(run.get(key)) for run in runs})
        if len(values) > 1:
            return GateResult(name=name, status=Status.ERROR, severity=severity,
                              summary=f"mutation shards disagree on {key} ({', '.join(values)}): "
                                      "they did not run on the same code and settings")
    modules: dict[str, ModuleCounts] = {}
    for part in parts.values():
        for raw in part["modules"]:
            m = ModuleCounts(**raw)
            old = modules.get(m.path)
            modules[m.path] = m if old is None else _added(old, m)
    run = {**runs[-1], "shard": f"{','.join(map(str, sorted(parts)))}/{count}", "shard_count": count,
           "shards": sorted(parts), "shard_parts": {str(i): parts[i] for i in sorted(parts)},
           "mutants_run": sum(int(p.get("mutants_run", 0)) for p in parts.values()),
           "deselected_tests": sorted({t for p in parts.values() for t in p.get("deselected_tests", [])}),
           "log": ""}
    merged = result_of(name, severity, list(modules.values()), [o for i in sorted(outcomes) for o in outcomes[i]], run)
    merged = merged.with_(duration_s=sum(r.duration_s for r in results))
    return merged if len(parts) == count else incomplete(merged, parts, count)


def _added(a: ModuleCounts, b: ModuleCounts) -> ModuleCounts:
    return ModuleCounts(path=a.path, threshold_pct=a.threshold_pct, population=a.population,
                        killed=a.killed + b.killed, timeouts=a.timeouts + b.timeouts,
                        survived=a.survived + b.survived, no_tests=a.no_tests + b.no_tests,
                        suspicious=a.suspicious + b.suspicious, not_checked=a.not_checked + b.not_checked,
                        sampled=a.sampled or b.sampled)
