"""GateResult round-trips through JSON and rejects nonsense."""

from __future__ import annotations

import pytest

from gates.result import GateResult, Severity, Status


def test_round_trip_keeps_every_field() -> None:
    result = GateResult(name="parity", status=Status.WARN, severity=Severity.WARNING, score=0.75,
                        summary="fp16 at T=512 close to tolerance", metrics={"max_abs_err": 2e-3},
                        evidence={"tables": [{"title": "t", "columns": ["T"], "rows": [[512]]}]},
                        remediation="check fp16", duration_s=1.5, cached=True)
    assert GateResult.from_dict(result.to_dict()) == result


def test_score_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="outside 0..1"):
        GateResult(name="x", status=Status.PASS, score=1.2)


@pytest.mark.parametrize("data", [{}, {"name": "x"}, {"name": "x", "status": "great"},
                                  {"name": "x", "status": "pass", "score": "high"}])
def test_malformed_result_is_a_clear_value_error(data: dict) -> None:
    with pytest.raises(ValueError):
        GateResult.from_dict(data)


def test_only_pass_and_warn_count_as_passed() -> None:
    assert {s for s in Status if s.passed} == {Status.PASS, Status.WARN}


def test_results_serialise_to_strict_json_and_read_back_equal() -> None:
    import json

    import numpy as np

    result = GateResult(name="p", status=Status.FAIL, score=0.0,
                        metrics={"max_abs_err": float("nan"), "ratio": np.float32(0.5), "n": np.int64(3)},
                        evidence={"rows": [(1, 2.0)], "worst": float("inf")})
    data = result.to_dict()
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN literal
    assert data["metrics"] == {"max_abs_err": "nan", "ratio": 0.5, "n": 3}
    assert data["evidence"] == {"rows": [[1, 2.0]], "worst": "inf"}
    assert result.normalised().to_dict() == data
