"""Counting, evidence and shard merging for the mutation gate.

Per-module bucket counts are the one record everything else is built from:
the gate judges them, the report shows them, and `merge_shards` adds the
counts of shards 1/N..N/N together and judges the sum exactly as one run
would have. Only the counts and the non-killed mutants travel in the
evidence, so a merged result needs nothing but the shard results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from gates.engine.protocol import GateError
from gates.mutation.interval import wilson_interval
from gates.result import GateResult, Status

if TYPE_CHECKING:
    from gates.mutation.session import Outcome

SHOWN_SURVIVORS = 20
BUCKETS = ("killed", "timeout", "survived", "no_tests", "suspicious", "not_checked")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleCounts:
    """What happened to the decided mutants of one source file."""

    path: str
    threshold_pct: float
    population: int  # mutants the file has
    killed: int = 0
    timeouts: int = 0
    survived: int = 0
    no_tests: int = 0
    suspicious: int = 0
    not_checked: int = 0
    sampled: bool = False

    @property
    def scored(self) -> int:
        return self.killed + self.timeouts + self.survived + self.no_tests

    @property
    def score(self) -> float | None:
        return (self.killed + self.timeouts) / self.scored if self.scored else None

    @property
    def ci(self) -> tuple[float, float]:
        """95 % Wilson interval when sampled; a census's score is exact."""
        if self.sampled or self.score is None:
            return wilson_interval(self.killed + self.timeouts, self.scored)
        return self.score, self.score


def counts_by_module(outcomes: Iterable[Outcome], thresholds: Mapping[str, float],
                     population: Mapping[str, int], *, sampled: bool) -> list[ModuleCounts]:
    tallies = {path: dict.fromkeys(BUCKETS, 0) for path in thresholds}
    for outcome in outcomes:
        bucket = outcome.bucket if outcome.bucket in BUCKETS else "suspicious"
        tallies[outcome.path][bucket] += 1
    return [ModuleCounts(path=path, threshold_pct=thresholds[path], population=population.get(path, 0),
                         killed=t["killed"], timeouts=t["timeout"], survived=t["survived"],
                         no_tests=t["no_tests"], suspicious=t["suspicious"], not_checked=t["not_checked"],
                         sampled=sampled)
            for path, t in tallies.items()]


def verdict_of(module: ModuleCounts, *, mode: str) -> str:
    """"pass", "fail", "no mutants" (a file with nothing to mutate cannot vouch
    for its tests) or "not drawn" (none of its mutants is in this sample/shard)."""
    if module.population == 0:
        return "no mutants"
    if module.scored == 0:
        return "not drawn" if module.sampled or module.not_checked == 0 else "fail"
    value = module.ci[0] if module.sampled and mode == "lower_bound" else module.score
    # Judge the number the report shows (one decimal), as coverage's fail_under does.
    return "pass" if value is not None and round(value * 100, 1) >= module.threshold_pct else "fail"


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def totals(modules: Iterable[ModuleCounts]) -> ModuleCounts:
    modules = list(modules)
    return ModuleCounts(path="(all)", threshold_pct=0.0, population=sum(m.population for m in modules),
                        killed=sum(m.killed for m in modules), timeouts=sum(m.timeouts for m in modules),
                        survived=sum(m.survived for m in modules), no_tests=sum(m.no_tests for m in modules),
                        suspicious=sum(m.suspicious for m in modules),
                        not_checked=sum(m.not_checked for m in modules),
                        sampled=any(m.sampled for m in modules))


def metrics_of(modules: list[ModuleCounts], run: Mapping[str, Any]) -> dict[str, Any]:
    all_ = totals(modules)
    low, high = all_.ci
    selected = all_.scored + all_.suspicious + all_.not_checked
    return {
        "mutation_score_pct": _pct(all_.score) if all_.score is not None else 0.0,
        "ci_low_pct": _pct(low), "ci_high_pct": _pct(high),
        "killed": all_.killed, "survived": all_.survived, "timeouts": all_.timeouts,
        "no_tests": all_.no_tests, "suspicious": all_.suspicious, "not_checked": all_.not_checked,
        "mutants_total": int(run.get("mutants_total", all_.population)), "mutants_selected": selected,
        "mutants_run": int(run.get("mutants_run", 0)), "mutants_cached": selected - int(run.get("mutants_run", 0)),
        "sampled": 1 if all_.sampled else 0, "modules_judged": len(modules),
    }


def _row(outcome: Mapping[str, Any]) -> list[Any]:
    return [outcome["file"], outcome.get("line"), outcome["mutant"], outcome.get("diff", "")]


def evidence_of(modules: list[ModuleCounts], outcomes: list[Mapping[str, Any]],
                run: Mapping[str, Any]) -> dict[str, Any]:
    """JSON evidence: per-module counts, every non-killed mutant, two tables."""
    by_bucket: dict[str, list[Mapping[str, Any]]] = {}
    for outcome in sorted(outcomes, key=lambda o: (o["file"], o.get("line") or 0, o["mutant"])):
        if outcome["bucket"] != "killed":
            by_bucket.setdefault(outcome["bucket"], []).append(dict(outcome))
    survivors = by_bucket.get("survived", [])
    mode = str(run.get("judge", "point"))
    module_rows = [[m.path, m.threshold_pct, m.population, m.killed, m.timeouts, m.survived, m.no_tests,
                    _pct(m.score), _pct(m.ci[0]), _pct(m.ci[1]), verdict_of(m, mode=mode)] for m in modules]
    tables = [{"title": "Mutation score per module",
               "columns": ["module", "threshold %", "mutants", "killed", "timeouts", "survived", "no tests",
                           "score %", "ci low %", "ci high %", "verdict"],
               "rows": module_rows}]
    chosen = run.get("test_selection") or {}
    if chosen.get("modules"):
        tables.append({"title": "Tests per mutated module"
                                + (f" (not from coverage contexts: {chosen['note']})" if chosen.get("note") else ""),
                       "columns": ["module", "tests from", "tests"],
                       "rows": [[m["path"], m["source"], m["tests"]] for m in chosen["modules"]]})
    if survivors:
        shown = survivors[:SHOWN_SURVIVORS]
        tables.append({"title": f"Surviving mutants (first {len(shown)} of {len(survivors)})",
                       "columns": ["file", "line", "mutant", "diff"], "rows": [_row(s) for s in shown]})
    failures = [{"title": f"{m.path}: {verdict_of(m, mode=mode)}",
                 "detail": f"score {_pct(m.score)} % (interval {_pct(m.ci[0])}-{_pct(m.ci[1])} %) "
                           f"against {m.threshold_pct:g} %; {m.survived} survived, {m.no_tests} without tests"}
                for m in modules if verdict_of(m, mode=mode) in ("fail", "no mutants")]
    return {
        "modules": [asdict(m) for m in modules],
        "survivors": survivors,
        "timeouts": by_bucket.get("timeout", []),
        "no_tests": by_bucket.get("no_tests", []),
        "suspicious": by_bucket.get("suspicious", []) + by_bucket.get("not_checked", []),
        "deselected_tests": list(run.get("deselected_tests", [])),
        "run": {k: v for k, v in run.items() if k != "shard_parts"},
        "shard_parts": shard_parts(modules, run),
        "tables": tables,
        "failures": failures,
        "files": [run["log"]] if run.get("log") else [],
    }


def shard_parts(modules: list[ModuleCounts], run: Mapping[str, Any]) -> dict[str, Any]:
    """Per-shard counts a result carries, so later merges can replace a shard."""
    if run.get("shard_parts"):
        return dict(run["shard_parts"])
    index = str(run.get("shard", "1/1")).partition("/")[0]
    return {index: {"modules": [asdict(m) for m in modules], "mutants_run": int(run.get("mutants_run", 0)),
                    "deselected_tests": list(run.get("deselected_tests", []))}}


def incomplete(result: GateResult, have: Iterable[int], count: int) -> GateResult:
    """A result holding only some shards: never a verdict (no score), but
    carrying its counts so that merging the remaining shards completes it."""
    have = sorted(have)
    missing = [i for i in range(1, count + 1) if i not in have]
    summary = (f"{'shard' if len(have) == 1 else 'shards'} {', '.join(map(str, have))} of {count} only ({result.metrics.get('mutants_selected', 0)} "
               f"mutants, {result.metrics.get('mutation_score_pct', 0):.1f} % so far): merge shards "
               f"{', '.join(map(str, missing))} for a verdict")
    return result.with_(status=Status.ERROR, score=None, summary=summary,
                        remediation="Run every shard and fold them together with `readiness merge`.")


def _broken(gate: Any, result: GateResult) -> GateResult:
    return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity,
                      summary=f"a mutation shard did not finish: {result.status.value}: {result.summary}",
                      evidence={"failures": [{"title": str(result.evidence.get("run", {}).get("shard", "?")),
                                              "detail": result.summary}]})


def merge_shards(gate: Any, results: list[GateResult]) -> GateResult:
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
    count, runs = 0, []
    for result in results:
        run = result.evidence.get("run")
        if not run or "modules" not in result.evidence:
            return _broken(gate, result)
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
            return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity,
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
    merged = gate.result_of(list(modules.values()), [o for i in sorted(outcomes) for o in outcomes[i]], run)
    merged = merged.with_(duration_s=sum(r.duration_s for r in results))
    return merged if len(parts) == count else incomplete(merged, parts, count)


def _added(a: ModuleCounts, b: ModuleCounts) -> ModuleCounts:
    return ModuleCounts(path=a.path, threshold_pct=a.threshold_pct, population=a.population,
                        killed=a.killed + b.killed, timeouts=a.timeouts + b.timeouts,
                        survived=a.survived + b.survived, no_tests=a.no_tests + b.no_tests,
                        suspicious=a.suspicious + b.suspicious, not_checked=a.not_checked + b.not_checked,
                        sampled=a.sampled or b.sampled)
