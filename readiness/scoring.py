"""From gate results to component scores, one weighted score and a band.

A component is fed by one or more gates and carries a weight. Its score is
the mean of its gates' scores (0..100), where a gate that is `error`,
`not_evaluable`, skipped because a need failed, or missing counts as 0 and is
named in the component's notes: never silently dropped. Only gates turned off
by configuration leave a component, and a component left with no gate leaves
the score; the remaining weights renormalise.

The `distill` profile reproduces the earlier project's formula (see
docs/scoring.md): 0.30 test health + 0.30 coverage + 0.25 TODO blocker ratio
+ 0.15 critical-path health, fed with correctly measured inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from gates.result import GateResult, Status

DEFAULT_COMPONENTS: Mapping[str, tuple[float, tuple[str, ...]]] = {
    "model": (25.0, ("environment", "checkpoint", "semantics", "export", "conversion", "contract")),
    "parity": (20.0, ("parity",)),
    "tests": (20.0, ("suite_health",)),
    "coverage": (15.0, ("coverage",)),
    "mutation": (10.0, ("mutation",)),
    "hygiene": (5.0, ("hygiene",)),
    "tokenizer": (5.0, ("tokenizer",)),
    # Listed with its score but weighted 0: latency depends on the machine and its load, so it
    # must not move the readiness score; budgets make it a blocker instead (docs/scoring.md).
    "performance": (0.0, ("performance",)),
}

BANDS: tuple[tuple[float, str], ...] = (
    (80.0, "production ready"), (60.0, "mostly ready"), (40.0, "partial"), (0.0, "not ready"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """One weighted part of the score, 0..100 (None when nothing fed it)."""

    name: str
    weight: float
    score: float | None
    gates: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "weight": self.weight, "score": self.score,
                "gates": list(self.gates), "notes": list(self.notes)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """The weighted score and the components behind it."""

    value: float
    band: str
    components: tuple[Component, ...]
    lost_points: Mapping[str, float] = field(default_factory=dict)


def band(score: float) -> str:
    """The readiness band of a 0..100 score."""
    for floor, name in BANDS:
        if score >= floor:
            return name
    return BANDS[-1][1]


def is_off(result: GateResult | None) -> bool:
    """Turned off by configuration or the command line: outside the score."""
    return result is not None and result.status is Status.OFF


def gate_points(result: GateResult | None) -> tuple[float, str | None]:
    """A gate's contribution (0..100) and, when it counts as 0, why."""
    if result is None:
        return 0.0, "missing: counted as 0"
    if result.status in (Status.ERROR, Status.NOT_EVALUABLE, Status.SKIPPED):
        return 0.0, f"{result.status.value}: counted as 0"
    if result.score is None:
        return 0.0, f"{result.status.value} without a score: counted as 0"
    return 100.0 * result.score, None


def score_components(results: Mapping[str, GateResult],
                     components: Mapping[str, tuple[float, Sequence[str]]] = DEFAULT_COMPONENTS) -> Score:
    """Weighted score over the components that have a configured gate."""
    built: list[Component] = []
    lost: dict[str, float] = {}
    for name, (weight, gate_names) in components.items():
        active = [g for g in gate_names if not is_off(results.get(g))]
        if not active:
            built.append(Component(name=name, weight=weight, score=None, gates=tuple(gate_names),
                                   notes=("every gate turned off: left out of the score",)))
            continue
        points, notes = [], []
        for gate in active:
            value, note = gate_points(results.get(gate))
            points.append(value)
            if note:
                notes.append(f"{gate}: {note}")
        notes += [f"{g}: turned off" for g in gate_names if g not in active]
        built.append(Component(name=name, weight=weight, score=sum(points) / len(points),
                               gates=tuple(gate_names), notes=tuple(notes)))
        for gate, value in zip(active, points):
            lost[gate] = lost.get(gate, 0.0) + weight * (100.0 - value) / len(active)
    total_weight = sum(c.weight for c in built if c.score is not None)
    if total_weight <= 0:
        return Score(value=0.0, band=band(0.0), components=tuple(built))
    value = sum(c.weight * c.score for c in built if c.score is not None) / total_weight
    lost = {g: pts / total_weight for g, pts in lost.items()}
    return Score(value=value, band=band(value), components=tuple(built), lost_points=lost)
