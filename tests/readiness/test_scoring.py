"""Components, renormalisation, counting non-evidence as 0, bands."""

from __future__ import annotations

import pytest

from gates.result import GateResult, Status
from readiness.scoring import band, score_components


def _r(name: str, status: Status, score: float | None = None, off: bool = False) -> GateResult:
    return GateResult(name=name, status=Status.OFF if off else status, score=score)


COMPONENTS = {"a": (60.0, ("g1",)), "b": (40.0, ("g2",))}


def test_weighted_mean_of_components() -> None:
    score = score_components({"g1": _r("g1", Status.PASS, 1.0), "g2": _r("g2", Status.FAIL, 0.5)}, COMPONENTS)
    assert score.value == pytest.approx(0.6 * 100 + 0.4 * 50)


def test_weights_renormalise_over_configured_components() -> None:
    results = {"g1": _r("g1", Status.PASS, 0.9), "g2": _r("g2", Status.SKIPPED, off=True)}
    score = score_components(results, COMPONENTS)
    assert score.value == pytest.approx(90.0)
    assert [c.score for c in score.components] == [pytest.approx(90.0), None]


@pytest.mark.parametrize("status", [Status.ERROR, Status.NOT_EVALUABLE, Status.SKIPPED])
def test_non_evidence_counts_as_zero_and_is_named(status: Status) -> None:
    score = score_components({"g1": _r("g1", Status.PASS, 1.0), "g2": _r("g2", status)}, COMPONENTS)
    assert score.value == pytest.approx(60.0)
    notes = score.components[1].notes
    assert any("g2" in n and status.value in n for n in notes)


def test_missing_gate_counts_as_zero() -> None:
    score = score_components({"g1": _r("g1", Status.PASS, 1.0)}, COMPONENTS)
    assert score.value == pytest.approx(60.0)
    assert any("missing" in n for n in score.components[1].notes)


def test_lost_points_name_the_costliest_gate() -> None:
    score = score_components({"g1": _r("g1", Status.PASS, 1.0), "g2": _r("g2", Status.FAIL, 0.0)}, COMPONENTS)
    assert max(score.lost_points, key=score.lost_points.get) == "g2"
    assert score.lost_points["g2"] == pytest.approx(40.0)


@pytest.mark.parametrize("value,expected", [(0, "not ready"), (39.99, "not ready"), (40, "partial"),
                                            (59.9, "partial"), (60, "mostly ready"), (80, "production ready"),
                                            (100, "production ready")])
def test_bands(value: float, expected: str) -> None:
    assert band(value) == expected


def test_performance_is_listed_in_the_default_score_but_weighs_nothing() -> None:
    from readiness.scoring import DEFAULT_COMPONENTS

    tests_only = {"suite_health": _r("suite_health", Status.PASS, 0.9)}
    with_perf = {**tests_only, "performance": _r("performance", Status.WARN, 0.2)}
    components = {n: c for n, c in DEFAULT_COMPONENTS.items() if n in ("tests", "performance")}
    before, after = score_components(tests_only, components), score_components(with_perf, components)
    assert after.value == before.value == pytest.approx(90.0)
    perf = next(c for c in after.components if c.name == "performance")
    assert perf.weight == 0.0 and perf.score == pytest.approx(20.0)
    assert after.lost_points.get("performance", 0.0) == 0.0  # never named as what capped the score
