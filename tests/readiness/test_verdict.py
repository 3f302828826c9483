"""Ship rules: vetoes, threshold, regressions, no evidence."""

from __future__ import annotations

from gates.result import GateResult, Severity, Status
from readiness.scoring import score_components
from readiness.verdict import decide

COMPONENTS = {"all": (100.0, ("a", "b"))}


def _r(name: str, status: Status, score: float | None, severity: Severity = Severity.BLOCKER,
       off: bool = False) -> GateResult:
    return GateResult(name=name, status=Status.OFF if off else status, severity=severity, score=score,
                      summary=f"{name} {status.value}")


def _decide(results, threshold=80.0, **kw):
    score = score_components({r.name: r for r in results}, COMPONENTS)
    return decide(results, score, threshold, **kw)


def test_all_passing_above_threshold_ships() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.PASS, 0.9)])
    assert verdict.ship and verdict.reasons == ()


def test_failed_blocker_vetoes_whatever_the_score() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.FAIL, 0.99)])
    assert not verdict.ship
    assert verdict.vetoed_by == ("b",)


def test_not_evaluable_blocker_vetoes() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.NOT_EVALUABLE, None)], threshold=0)
    assert not verdict.ship and "b" in verdict.vetoed_by


def test_failed_warning_gate_does_not_veto() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.FAIL, 0.9, Severity.WARNING)])
    assert verdict.ship


def test_gate_turned_off_by_configuration_does_not_veto() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.SKIPPED, None, off=True)])
    assert verdict.ship


def test_score_under_threshold_names_the_gate_that_capped_it() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.WARN, 0.3, Severity.WARNING)])
    assert not verdict.ship
    assert verdict.capped_by[0] == "b"
    assert any("under the threshold" in r for r in verdict.reasons)


def test_verdict_uses_the_rounding_the_report_shows() -> None:
    # 79.96 is shown as 80.0, so it reaches a threshold of 80
    verdict = _decide([_r("a", Status.PASS, 0.7996), _r("b", Status.PASS, 0.7996)])
    assert verdict.ship


def test_no_evidence_never_ships() -> None:
    verdict = _decide([_r("a", Status.SKIPPED, None, off=True), _r("b", Status.SKIPPED, None, off=True)],
                      threshold=0)
    assert not verdict.ship
    assert any("no gate produced positive evidence" in r for r in verdict.reasons)


def test_regression_blocks_shipping() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.PASS, 1.0)],
                      history_reasons=["regression: coverage.line_pct dropped 10 (90 → 80)"])
    assert not verdict.ship and any("regression" in r for r in verdict.reasons)


def test_a_high_score_that_may_not_ship_is_never_in_a_ready_band() -> None:
    # 99.5 points, but a blocker failed: the band says why, not "production ready"
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.FAIL, 0.99)])
    assert not verdict.ship
    assert verdict.band == "blocked by b"


def test_band_names_the_threshold_or_the_regression_that_held_it_back() -> None:
    under = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.WARN, 0.5, Severity.WARNING)])
    assert under.band == "under the threshold"  # 75, which alone would be "mostly ready"
    regressed = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.PASS, 1.0)],
                        history_reasons=["regression: readiness score dropped 3 (99 → 96)"])
    assert regressed.band == "regressed"


def test_a_shipping_verdict_shows_the_score_band() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.PASS, 0.9)])
    assert verdict.band == "production ready"


def test_a_partial_run_is_never_a_ship_even_when_every_selected_gate_passed() -> None:
    verdict = _decide([_r("a", Status.PASS, 1.0), _r("b", Status.SKIPPED, None, off=True)], partial=True)
    assert not verdict.ship and verdict.partial and verdict.passed
    assert verdict.band == "partial run"
    assert verdict.to_dict()["partial"] is True


def test_a_partial_run_whose_selected_gate_failed_says_what_held_it_back() -> None:
    verdict = _decide([_r("a", Status.FAIL, 0.2), _r("b", Status.SKIPPED, None, off=True)], partial=True)
    assert not verdict.ship and not verdict.passed
    assert verdict.band == "partial run, blocked by a"
