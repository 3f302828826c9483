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

from gates.base import GateError
from gates.interval import wilson_interval
from gates.result import GateResult, Status

if TYPE_CHECKING:
    from gates.mutation_session import Outcome

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
        "run": dict(run),
        "tables": tables,
        "failures": failures,
        "files": [run["log"]] if run.get("log") else [],
    }


def _shard_index(result: GateResult) -> tuple[int, int]:
    text = str(result.evidence.get("run", {}).get("shard", ""))
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise GateError(f"mutation result {result.summary!r} carries no shard i/N to merge")
    return int(index), int(count)


def merge_shards(gate: Any, results: list[GateResult]) -> GateResult:
    """One result from shard results: counts added, then judged as one run."""
    if not results:
        raise GateError("no mutation shard results to merge")
    broken = [r for r in results if r.status not in (Status.PASS, Status.WARN, Status.FAIL)]
    if broken:
        first = broken[0]
        return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity,
                          summary=f"a mutation shard did not finish: {first.status.value}: {first.summary}",
                          evidence={"failures": [{"title": r.evidence.get("run", {}).get("shard", "?"),
                                                  "detail": r.summary} for r in broken]})
    indices = sorted(_shard_index(r) for r in results)
    count = indices[0][1]
    if any(c != count for _, c in indices) or [i for i, _ in indices] != list(range(1, count + 1)):
        have = ", ".join(f"{i}/{c}" for i, c in indices)
        raise GateError(f"mutation shards do not form one complete partition: have {have}")
    runs = [r.evidence["run"] for r in results]
    for key in ("sample", "seed", "judge", "mutants_total"):
        if len({str(run.get(key)) for run in runs}) > 1:
            raise GateError(f"mutation shards disagree on {key}: {sorted({str(run.get(key)) for run in runs})}")
    modules: dict[str, ModuleCounts] = {}
    for result in results:
        for raw in result.evidence["modules"]:
            m = ModuleCounts(**raw)
            old = modules.get(m.path)
            modules[m.path] = m if old is None else ModuleCounts(
                path=m.path, threshold_pct=m.threshold_pct, population=m.population,
                killed=old.killed + m.killed, timeouts=old.timeouts + m.timeouts,
                survived=old.survived + m.survived, no_tests=old.no_tests + m.no_tests,
                suspicious=old.suspicious + m.suspicious, not_checked=old.not_checked + m.not_checked,
                sampled=old.sampled or m.sampled)
    outcomes = [o for r in results for key in ("survivors", "timeouts", "no_tests", "suspicious")
                for o in r.evidence.get(key, [])]
    run = {**runs[0], "shard": f"merged {count} shards", "mutants_run": sum(int(x.get("mutants_run", 0)) for x in runs),
           "deselected_tests": sorted({t for x in runs for t in x.get("deselected_tests", [])}), "log": ""}
    merged = gate.result_of(list(modules.values()), outcomes, run)
    return merged.with_(duration_s=sum(r.duration_s for r in results))
