"""Counting and evidence for the mutation gate.

Per-module bucket counts are the one record everything else is built from:
`judging` judges them, the report shows them, and `shards` adds the counts
of shards 1/N..N/N together. Only the counts and the non-killed mutants
travel in the evidence, so a merged result needs nothing but the shard
results.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from gates.mutation.interval import wilson_interval

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


class ModuleVerdict(enum.StrEnum):
    """One module's verdict, as the per-module table shows it."""

    PASS = "pass"
    FAIL = "fail"
    NO_MUTANTS = "no mutants"  # a file with nothing to mutate cannot vouch for its tests
    NOT_DRAWN = "not drawn"  # none of its mutants is in this sample or shard

    @property
    def failed(self) -> bool:
        return self in (ModuleVerdict.FAIL, ModuleVerdict.NO_MUTANTS)


def verdict_of(module: ModuleCounts, *, mode: str) -> ModuleVerdict:
    """The module's verdict: its score (or, sampled under "lower_bound", the
    interval's lower bound) against its threshold."""
    if module.population == 0:
        return ModuleVerdict.NO_MUTANTS
    if module.scored == 0:
        return ModuleVerdict.NOT_DRAWN if module.sampled or module.not_checked == 0 else ModuleVerdict.FAIL
    value = module.ci[0] if module.sampled and mode == "lower_bound" else module.score
    # Judge the number the report shows (one decimal), as coverage's fail_under does.
    passed = value is not None and round(value * 100, 1) >= module.threshold_pct
    return ModuleVerdict.PASS if passed else ModuleVerdict.FAIL


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


def evidence_of(modules: list[ModuleCounts], outcomes: Sequence[Mapping[str, Any]],
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
                for m in modules if verdict_of(m, mode=mode).failed]
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
