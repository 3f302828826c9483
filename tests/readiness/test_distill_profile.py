"""The distill profile reproduces the earlier project's formula on its inputs.

The earlier report (shared seeds, 002) shows 95.7 % of tests passing, 36.9 %
line coverage, branch coverage "0.0 %" (a key coverage.py never writes),
4,505 TODOs of which 0 blocking, and TODOs present in critical paths. Its
headline 53.6 cannot be reproduced from those inputs: its own component
breakdown (28.7 + 11.1 + 25 + 0) adds up to 64.8, and it used the raw pass
rate for test health. Fed through the stated formula the inputs give 62.1.
"""

from __future__ import annotations

import pytest

from gates.result import GateResult, Status
from readiness.distill_profile import score_distill


def _r(name: str, status: Status = Status.PASS, **metrics: float) -> GateResult:
    return GateResult(name=name, status=status, score=0.5, metrics=metrics)


def _seed_inputs(branch_pct: float = 0.0) -> dict[str, GateResult]:
    return {
        "suite_health": _r("suite_health", Status.FAIL, unit_pass_pct=95.7, integration_pass_pct=95.7),
        "mutation": _r("mutation", Status.FAIL, mutation_score_pct=0.0),
        "coverage": _r("coverage", Status.FAIL, line_pct=36.9, branch_pct=branch_pct),
        "hygiene": _r("hygiene", todo_total=4505, todo_blocking=0, todo_critical=33, todo_blocking_critical=0),
    }


def test_formula_on_the_seed_report_inputs() -> None:
    score = score_distill(_seed_inputs())
    parts = {c.name: c.score for c in score.components}
    assert parts["test_health"] == pytest.approx(0.4 * 95.7 + 0.4 * 95.7)
    assert parts["coverage"] == pytest.approx(0.6 * 36.9)
    assert parts["todo_blocker_ratio"] == pytest.approx(100.0)
    assert parts["critical_path_health"] == pytest.approx(50.0)
    expected = 0.30 * 76.56 + 0.30 * 22.14 + 0.25 * 100 + 0.15 * 50
    assert score.value == pytest.approx(expected)
    assert round(score.value, 1) == 62.1
    assert score.band == "mostly ready"


def test_really_measured_branch_coverage_moves_the_score() -> None:
    assert score_distill(_seed_inputs(branch_pct=80.0)).value > score_distill(_seed_inputs()).value


def test_blocking_todo_in_critical_path_zeroes_critical_path_health() -> None:
    inputs = _seed_inputs()
    inputs["hygiene"] = _r("hygiene", todo_total=10, todo_blocking=1, todo_critical=1, todo_blocking_critical=1)
    parts = {c.name: c.score for c in score_distill(inputs).components}
    assert parts["critical_path_health"] == 0.0
    assert parts["todo_blocker_ratio"] == pytest.approx(90.0)


def test_unmeasured_inputs_count_as_zero_and_are_named() -> None:
    inputs = _seed_inputs()
    inputs["suite_health"] = _r("suite_health", Status.ERROR)  # e.g. pytest missing
    score = score_distill(inputs)
    health = next(c for c in score.components if c.name == "test_health")
    assert health.score == 0.0
    assert any("unit_pass_pct" in n for n in health.notes)


def test_no_todos_at_all_is_full_blocker_ratio() -> None:
    inputs = _seed_inputs()
    inputs["hygiene"] = _r("hygiene", todo_total=0, todo_blocking=0, todo_critical=0, todo_blocking_critical=0)
    parts = {c.name: c.score for c in score_distill(inputs).components}
    assert parts["todo_blocker_ratio"] == 100.0 and parts["critical_path_health"] == 100.0
