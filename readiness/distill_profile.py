"""The `distill` scoring profile: the earlier project's formula, fed correctly.

    score = 0.30 test health + 0.30 coverage + 0.25 TODO blocker ratio
            + 0.15 critical-path health
    test health   = 0.4 unit pass % + 0.4 integration pass % + 0.2 mutation %
    coverage      = 0.6 line % + 0.4 branch %
    blocker ratio = (1 - blocking TODOs / max(total TODOs, 1)) * 100
    critical-path = 100 when no TODO sits in a critical path, 50 when some
                    do, 0 when one there is marked blocking

Inputs come from the suite_health, mutation, coverage and hygiene metrics.
Unlike the original, an input that was not measured (pytest missing, branch
coverage off, no integration tests, mutation not run) is not a number: it
counts as 0 and the component says which input was missing.
"""

from __future__ import annotations

from typing import Mapping

from gates.result import GateResult
from readiness.scoring import Component, Score, band

WEIGHTS = {"test_health": 30.0, "coverage": 30.0, "todo_blocker_ratio": 25.0,
           "critical_path_health": 15.0}


def _metric(results: Mapping[str, GateResult], gate: str, metric: str) -> float | None:
    result = results.get(gate)
    if result is None or not result.status.passed and result.status.value != "fail":
        return None
    value = result.metrics.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _weighted(parts: list[tuple[float, str, str, float | None]]) -> tuple[float, tuple[str, ...]]:
    total, notes = 0.0, []
    for weight, gate, metric, value in parts:
        if value is None:
            notes.append(f"{gate}.{metric} not measured: counted as 0")
        else:
            total += weight * value
    return total, tuple(notes)


def tests_health(results: Mapping[str, GateResult]) -> tuple[float, tuple[str, ...]]:
    return _weighted([(0.4, "suite_health", "unit_pass_pct", _metric(results, "suite_health", "unit_pass_pct")),
                      (0.4, "suite_health", "integration_pass_pct",
                       _metric(results, "suite_health", "integration_pass_pct")),
                      (0.2, "mutation", "mutation_score_pct", _metric(results, "mutation", "mutation_score_pct"))])


def coverage(results: Mapping[str, GateResult]) -> tuple[float, tuple[str, ...]]:
    return _weighted([(0.6, "coverage", "line_pct", _metric(results, "coverage", "line_pct")),
                      (0.4, "coverage", "branch_pct", _metric(results, "coverage", "branch_pct"))])


def todo_blocker_ratio(results: Mapping[str, GateResult]) -> tuple[float, tuple[str, ...]]:
    total = _metric(results, "hygiene", "todo_total")
    blocking = _metric(results, "hygiene", "todo_blocking")
    if total is None or blocking is None:
        return 0.0, ("hygiene TODO counts not measured: counted as 0",)
    return (1.0 - blocking / max(total, 1.0)) * 100.0, ()


def critical_path_health(results: Mapping[str, GateResult]) -> tuple[float, tuple[str, ...]]:
    in_critical = _metric(results, "hygiene", "todo_critical")
    blocking = _metric(results, "hygiene", "todo_blocking_critical")
    if in_critical is None or blocking is None:
        return 0.0, ("hygiene critical-path counts not measured: counted as 0",)
    if blocking > 0:
        return 0.0, ()
    return (50.0 if in_critical > 0 else 100.0), ()


PARTS = {"test_health": (tests_health, ("suite_health", "mutation")),
         "coverage": (coverage, ("coverage",)),
         "todo_blocker_ratio": (todo_blocker_ratio, ("hygiene",)),
         "critical_path_health": (critical_path_health, ("hygiene",))}


def score_distill(results: Mapping[str, GateResult]) -> Score:
    """The distill-profile score of these results."""
    components = []
    for name, (measure, gates) in PARTS.items():
        value, notes = measure(results)
        components.append(Component(name=name, weight=WEIGHTS[name], score=value, gates=gates, notes=notes))
    value = sum(c.weight * (c.score or 0.0) for c in components) / sum(WEIGHTS.values())
    lost = {c.name: c.weight * (100.0 - (c.score or 0.0)) / 100.0 for c in components}
    return Score(value=value, band=band(value), components=tuple(components), lost_points=lost)
