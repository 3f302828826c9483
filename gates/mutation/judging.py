"""Judging the mutation counts: one verdict for a run or for merged shards.

`result_of` turns per-module counts into the gate's result; the gate calls it
after a run and `shards.merge_shards` after adding shards up, so a merged
result is judged exactly as one run would have been. `incomplete` marks a
result that holds only some shards: never a verdict of its own.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from gates.mutation.evidence import ModuleCounts, evidence_of, metrics_of, verdict_of
from gates.result import GateResult, Severity, Status


def judge(modules: list[ModuleCounts], *, mode: str) -> tuple[Status, list[str]]:
    """PASS when every judged module reaches its threshold; the modules that did not.

    A sample is judged on the lower bound of its interval (mode "lower_bound"),
    a census on its score, both rounded to the 0.1 % the report shows. A module
    with no mutant at all fails (nothing vouches for its tests); one none of
    whose mutants fell in this sample or shard is not judged.
    """
    verdicts = {m.path: verdict_of(m, mode=mode) for m in modules}
    failed = [path for path, verdict in verdicts.items() if verdict.failed]
    return (Status.FAIL if failed else Status.PASS), failed


def result_of(name: str, severity: Severity, modules: list[ModuleCounts], outcomes: Sequence[Mapping[str, Any]],
              run_info: Mapping[str, Any]) -> GateResult:
    """Judge per-module counts and build the gate's result (one run, or merged shards)."""
    metrics = metrics_of(modules, run_info)
    evidence = evidence_of(modules, outcomes, run_info)
    population = int(run_info.get("mutants_total", sum(m.population for m in modules)))
    tested = sum(m.killed + m.timeouts + m.survived for m in modules)
    if population == 0:
        return GateResult(name=name, status=Status.ERROR, severity=severity, metrics=metrics,
                          evidence=evidence, summary="no mutants were generated: nothing was checked",
                          remediation="Point the critical modules / sources at code with functions to mutate.")
    if tested == 0:
        return GateResult(name=name, status=Status.ERROR, severity=severity, metrics=metrics,
                          evidence=evidence,
                          summary=f"0 killed and 0 survived of {population} mutants: no mutant was tested",
                          remediation="Check that the selected tests import and exercise the mutated code.")
    status, failed = judge(modules, mode=str(run_info.get("judge", "point")))
    score = metrics["mutation_score_pct"] / 100
    summary = _summary(metrics, modules, failed, bool(run_info.get("sampled")))
    remediation = "" if status is Status.PASS else (
        "Add assertions that pin the behaviour the surviving mutants change "
        f"(see the survivors table) in {', '.join(failed)}.")
    return GateResult(name=name, status=status, severity=severity, score=min(1.0, max(0.0, score)),
                      summary=summary, metrics=metrics, evidence=evidence, remediation=remediation)


def _summary(metrics: Mapping[str, Any], modules: list[ModuleCounts], failed: list[str], sampled: bool) -> str:
    head = (f"mutation score {metrics['mutation_score_pct']:.1f} % "
            f"({metrics['killed']} killed, {metrics['timeouts']} timeouts, {metrics['survived']} survived, "
            f"{metrics['no_tests']} without tests)")
    if sampled:
        head += f", 95 % interval {metrics['ci_low_pct']:.1f}-{metrics['ci_high_pct']:.1f} % " \
                f"on {metrics['mutants_selected']} of {metrics['mutants_total']} mutants"
    if failed:
        worst = [m for m in modules if m.path in failed][0]
        head += f"; {len(failed)} module(s) under threshold, e.g. {worst.path} < {worst.threshold_pct:g} %"
    return head


def incomplete(result: GateResult, have: Iterable[int], count: int) -> GateResult:
    """A result holding only some shards: never a verdict (no score), but
    carrying its counts so that merging the remaining shards completes it."""
    held = sorted(have)
    missing = [i for i in range(1, count + 1) if i not in held]
    summary = (f"{'shard' if len(held) == 1 else 'shards'} {', '.join(map(str, held))} of {count} only "
               f"({result.metrics.get('mutants_selected', 0)} mutants, "
               f"{result.metrics.get('mutation_score_pct', 0):.1f} % so far): merge shards "
               f"{', '.join(map(str, missing))} for a verdict")
    return result.with_(status=Status.ERROR, score=None, summary=summary,
                        remediation="Run every shard and fold them together with `readiness merge`.")
