"""Regression rules, the `baseline` and `trend` keys, and `diff` between two assessments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from readiness.history.regression import (
    DEFAULT_RULES,
    Rule,
    compare,
    diff,
    first_run,
    parse_rules,
    rule_for,
    ship_blockers,
    trend,
)
from tests.fixtures.history.documents import assessment, gate

# --- rules ----------------------------------------------------------------------------------

def test_absolute_tolerance_allows_a_drop_of_exactly_the_tolerance() -> None:
    rule = Rule(metric="score", max_drop=2.0)
    assert not rule.violated(before=85.1, after=83.1)  # 2.0000000000000xx in floats
    assert rule.violated(before=85.1, after=83.0)


def test_relative_tolerance_is_percent_of_the_baseline_value() -> None:
    rule = Rule(metric="coverage.line_pct", max_drop_pct=5.0)
    assert not rule.violated(before=80.0, after=76.0)
    assert rule.violated(before=80.0, after=75.9)


def test_any_worsening_from_zero_breaks_a_relative_tolerance() -> None:
    assert Rule(metric="g.x", max_drop_pct=50.0).violated(before=0.0, after=-0.1)


def test_lower_is_better_rules_flag_rises_not_drops() -> None:
    rule = Rule(metric="parity.max_abs_err", max_drop=1e-4, higher_is_better=False)
    assert rule.violated(before=1e-5, after=2e-4)
    assert not rule.violated(before=2e-4, after=1e-6)


def test_with_both_tolerances_a_change_must_stay_within_both() -> None:
    rule = Rule(metric="g.x", max_drop=10.0, max_drop_pct=1.0)
    assert rule.violated(before=100.0, after=98.0)  # within 10, beyond 1 %
    assert not Rule(metric="g.x", max_drop=10.0, max_drop_pct=1.0).violated(before=100.0, after=99.5)


def test_exact_rule_beats_a_pattern_and_the_first_pattern_wins() -> None:
    exact = Rule(metric="coverage.score", max_drop=0.5)
    rules = (*DEFAULT_RULES, Rule(metric="cov*.score", max_drop=0.2), exact)
    assert rule_for("coverage.score", rules) is exact
    assert rule_for("parity.score", rules).max_drop == 0.05
    assert rule_for("parity.max_abs_err", rules) is None


values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
tolerances = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@given(before=values, after=values, max_drop=tolerances)
def test_lower_is_better_mirrors_higher_is_better(before: float, after: float, max_drop: float) -> None:
    up = Rule(metric="g.x", max_drop=max_drop)
    down = Rule(metric="g.x", max_drop=max_drop, higher_is_better=False)
    assert down.violated(before=before, after=after) == up.violated(before=-before, after=-after)


@given(before=values, gain=st.floats(min_value=0, max_value=1e6), max_drop=tolerances,
       pct=st.floats(min_value=0, max_value=100))
def test_an_improvement_never_regresses(before: float, gain: float, max_drop: float, pct: float) -> None:
    rule = Rule(metric="g.x", max_drop=max_drop, max_drop_pct=pct)
    assert not rule.violated(before=before, after=before + gain)


@pytest.mark.parametrize("data, message", [
    ({"metric": "coverage", "max_drop": 1}, r"rules\[0\].metric: 'coverage' must be"),
    ({"metric": "g.x"}, r"rules\[0\].max_drop: rule 'g.x' sets neither"),
    ({"metric": "g.x", "max_drop": "1"}, r"rules\[0\].max_drop: expected a number"),
    ({"metric": "g.x", "max_drop": -1}, r"rules\[0\].max_drop: -1.0 must be a number >= 0"),
    ({"metric": "g.x", "max_drop_pct": True}, r"rules\[0\].max_drop_pct: expected a number"),
    ({"metric": "g.x", "max_drop": 1, "higher_is_better": "no"}, r"rules\[0\].higher_is_better"),
    ({"metric": "g.x", "max_drop": 1, "direction": "up"}, r"rules\[0\].direction: unknown"),
    ({"max_drop": 1}, r"rules\[0\].metric: expected a string"),
    ("g.x", r"rules\[0\]: expected a table"),
])
def test_bad_rules_are_refused_with_the_key_named(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules([data])  # type: ignore[list-item]


def test_a_rule_parsed_from_config_matches_the_documented_form() -> None:
    rule = Rule.from_dict({"metric": "coverage.line_pct", "max_drop": 1.0, "max_drop_pct": None,
                           "higher_is_better": True})
    assert rule == Rule(metric="coverage.line_pct", max_drop=1.0)


# --- compare -> the `baseline` key -------------------------------------------------------

def test_first_run_says_so_and_carries_the_policy() -> None:
    for policy in ("pass", "fail"):
        result = compare(assessment(), None, first_run_policy=policy)
        assert result["first_run"] is True and result["policy"] == policy
        assert "No baseline" in result["message"] and "'demo'" in result["message"]
    assert ship_blockers(first_run("pass")) == []
    assert ship_blockers(first_run("fail")) == [first_run("fail")["message"]]


def test_an_unknown_first_run_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="'maybe' is not a valid FirstRunPolicy"):
        compare(assessment(), None, first_run_policy="maybe")


def test_unchanged_assessment_has_zero_deltas_and_no_regressions() -> None:
    result = compare(assessment(), assessment(), source="history:3")
    assert result["source"] == "history:3" and result["first_run"] is False
    assert result["score_delta"] == 0.0 and result["regressions"] == []
    assert result["gates"]["coverage"] == {
        "status_before": "pass", "status_after": "pass", "score_delta": 0.0, "regressed": False,
        "metrics": {"line_pct": {"before": 91.0, "after": 91.0, "delta": 0.0}}}
    assert ship_blockers(result) == []


def test_overall_score_dropping_more_than_two_points_regresses() -> None:
    result = compare(assessment(score=82.5), assessment(score=85.0))
    assert result["score_delta"] == -2.5
    [item] = result["regressions"]
    assert (item["gate"], item["metric"], item["before"], item["after"], item["delta"]) == \
        (None, "score", 85.0, 82.5, -2.5)
    assert "readiness score dropped 2.5 (85 → 82.5)" in item["message"]
    assert compare(assessment(score=83.0), assessment(score=85.0))["regressions"] == []


def test_a_gate_score_dropping_more_than_five_hundredths_regresses() -> None:
    base = assessment(gates=[gate("parity", score=0.90)])
    assert compare(assessment(gates=[gate("parity", score=0.85)]), base)["regressions"] == []
    result = compare(assessment(gates=[gate("parity", score=0.84)]), base)
    assert [r["metric"] for r in result["regressions"]] == ["score"]
    assert result["gates"]["parity"]["regressed"] is True
    assert result["gates"]["parity"]["score_delta"] == -0.06


def test_user_rule_on_a_gate_metric_catches_a_drop_the_defaults_ignore() -> None:
    rules = parse_rules([{"metric": "coverage.line_pct", "max_drop": 1.0}])
    current = assessment(gates=[gate("coverage", line_pct=89.0), gate("parity")])
    assert compare(current, assessment())["regressions"] == []
    [item] = compare(current, assessment(), rules)["regressions"]
    assert (item["gate"], item["metric"], item["delta"]) == ("coverage", "line_pct", -2.0)
    assert item["rule"] == "coverage.line_pct: max_drop=1"


def test_a_gate_that_passed_and_now_errors_is_a_status_regression_once() -> None:
    current = assessment(gates=[gate("coverage", status="error", score=None), gate("parity")])
    result = compare(current, assessment())
    assert [(r["gate"], r["metric"], r["before"], r["after"]) for r in result["regressions"]] == \
        [("coverage", "status", "pass", "error")]
    assert compare(current, assessment(), status_regressions=False)["regressions"][0]["message"] \
        == "coverage.score was 0.9 in the baseline and is not measured now"


def test_a_gate_that_disappeared_is_a_regression_and_a_new_gate_is_not() -> None:
    current = assessment(gates=[gate("parity"), gate("hygiene")])
    result = compare(current, assessment())
    assert [(r["gate"], r["after"]) for r in result["regressions"]] == [("coverage", None)]
    assert result["gates"]["hygiene"]["status_before"] is None
    assert result["gates"]["coverage"]["status_after"] is None


def test_a_gate_that_failed_before_and_still_fails_adds_no_status_regression() -> None:
    base = assessment(gates=[gate("coverage", status="fail", score=0.4)])
    current = assessment(gates=[gate("coverage", status="fail", score=0.4)])
    assert compare(current, base)["regressions"] == []


def test_non_numeric_metrics_get_no_delta() -> None:
    base = assessment(gates=[gate("parity", backend="ort")])
    result = compare(assessment(gates=[gate("parity", backend="coreml")]), base)
    assert result["gates"]["parity"]["metrics"]["backend"] == \
        {"before": "ort", "after": "coreml", "delta": None}


def test_baseline_records_where_it_came_from() -> None:
    result = compare(assessment(), assessment(generated_at="2026-11-01T00:00:00Z", commit="old"),
                     source="file:base.json")
    assert (result["source"], result["generated_at"], result["commit"], result["score"]) == \
        ("file:base.json", "2026-11-01T00:00:00Z", "old", 85.0)


def test_a_history_entry_is_unwrapped_and_names_its_source() -> None:
    entry = {"id": 7, "score": 85.0, "document": assessment(gates=[gate("coverage", score=0.95)])}
    result = compare(assessment(gates=[gate("coverage", score=0.8)]), entry)
    assert result["source"] == "history:7"
    assert [(r["gate"], r["metric"]) for r in result["regressions"]] == [("coverage", "score")]


# --- trend ----------------------------------------------------------------------------------

def test_trend_is_oldest_first_from_entries_or_documents() -> None:
    late = assessment(generated_at="2026-11-23T12:00:00+01:00", score=70.0, ship=False)
    early = assessment(generated_at="2026-11-23T10:30:00Z", score=80.0,
                       components={"tests": 100.0, "coverage": None})
    points = trend([{"id": 2, "document": late}, early])
    assert points == [
        {"generated_at": "2026-11-23T10:30:00Z", "score": 80.0, "verdict_ship": True,
         "components": {"tests": 100.0, "coverage": None}},
        {"generated_at": "2026-11-23T12:00:00+01:00", "score": 70.0, "verdict_ship": False,
         "components": {"tests": 90.0, "coverage": 80.0}},
    ]
    assert trend([]) == []


def test_a_point_without_a_readable_time_is_the_newest() -> None:
    current = {**assessment(score=60.0), "generated_at": "now"}
    points = trend([current, assessment(generated_at="2026-11-23T10:30:00Z")])
    assert [p["score"] for p in points] == [85.0, 60.0]


# --- diff -----------------------------------------------------------------------------------

def test_diff_classifies_better_worse_same_new_and_gone() -> None:
    a = assessment(score=80.0, gates=[
        gate("coverage", score=0.8, line_pct=90.0, duration_s=10.0),
        gate("parity", score=0.9, max_abs_err=1e-5, backend="ort"),
        gate("hygiene", score=1.0)])
    b = assessment(score=84.0, gates=[
        gate("coverage", score=0.9, line_pct=88.0, duration_s=5.0),
        gate("parity", score=0.9, max_abs_err=1e-3, backend="coreml", shapes=4),
        gate("tokenizer", score=1.0)])
    result = diff(a, b)
    assert result["score"] == {"before": 80.0, "after": 84.0, "delta": 4.0, "change": "better"}
    by_gate = {g["name"]: g for g in result["gates"]}
    assert list(by_gate) == ["coverage", "parity", "tokenizer", "hygiene"]
    cov = {m["metric"]: m["change"] for m in by_gate["coverage"]["metrics"]}
    assert by_gate["coverage"]["score"]["change"] == "better"
    assert cov == {"duration_s": "better", "line_pct": "worse"}
    par = {m["metric"]: m["change"] for m in by_gate["parity"]["metrics"]}
    assert par == {"backend": "changed", "max_abs_err": "worse", "shapes": "new"}
    assert by_gate["parity"]["score"]["change"] == "same"
    assert (by_gate["tokenizer"]["status_change"], by_gate["hygiene"]["status_change"]) == ("new", "gone")
    assert result["counts"] == {"better": 2, "worse": 2, "same": 1, "changed": 1, "new": 2, "gone": 1}


def test_diff_status_changes_follow_pass_warn_fail() -> None:
    pairs = [("pass", "fail", "worse"), ("fail", "warn", "better"), ("pass", "warn", "worse"),
             ("fail", "error", "changed"), ("error", "pass", "better"), ("pass", "skipped", "worse")]
    for before, after, change in pairs:
        a = assessment(gates=[gate("g", status=before)])
        b = assessment(gates=[gate("g", status=after)])
        assert diff(a, b)["gates"][0]["status_change"] == change, (before, after)


def test_diff_takes_the_direction_from_a_rule_before_the_name() -> None:
    a = assessment(gates=[gate("g", widgets=3.0)])
    b = assessment(gates=[gate("g", widgets=5.0)])
    assert diff(a, b)["gates"][0]["metrics"][0]["change"] == "changed"
    rules = (Rule(metric="g.widgets", max_drop=1, higher_is_better=False),)
    assert diff(a, b, rules)["gates"][0]["metrics"][0]["change"] == "worse"


def test_a_malformed_gates_list_is_refused_with_its_position() -> None:
    bad = assessment()
    bad["gates"] = [{"status": "pass"}]
    with pytest.raises(ValueError, match=r"gates\[0\]"):
        diff(bad, assessment())


def test_malformed_tables_inside_a_document_count_as_empty() -> None:
    odd = {**assessment(gates=[{**gate("coverage"), "metrics": [1, 2]}]), "git": "x",
           "verdict": None, "project": "demo", "components": "none"}
    assert compare(assessment(), odd)["gates"]["coverage"]["metrics"]["line_pct"]["before"] is None
    assert trend([odd])[0]["verdict_ship"] is False and trend([odd])[0]["components"] == {}
    assert diff(odd, assessment())["verdict"]["before"] is None


# --- partial assessments ------------------------------------------------------------------

FULL = assessment(score=70.0, gates=[gate("coverage", score=0.9, line_pct=90.0), gate("parity", score=0.9),
                                     gate("mutation", score=0.8)])


def test_a_partial_run_is_not_compared_with_a_full_baseline_on_the_overall_score() -> None:
    # --gate coverage: 90 over one gate against 70 over three is not a rise of 20
    current = assessment(score=90.0, gates=[gate("coverage", score=0.9, line_pct=90.0),
                                            gate("parity", "skipped", None), gate("mutation", "skipped", None)],
                         left_out=["parity", "mutation"])
    baseline = compare(current, FULL)
    assert baseline["partial"] is True and baseline["score_delta"] is None
    assert set(baseline["gates"]) == {"coverage"}  # left-out gates are neither deltas nor lost evidence
    assert baseline["regressions"] == []


def test_a_selected_gate_of_a_partial_run_still_regresses_against_the_baseline() -> None:
    current = assessment(score=10.0,
                         gates=[gate("coverage", score=0.5, line_pct=50.0), gate("parity", "skipped", None)],
                         left_out=["parity", "mutation"])
    found = compare(current, FULL)["regressions"]
    assert [(r["gate"], r["metric"]) for r in found] == [("coverage", "score")]


def test_a_full_run_against_a_forced_partial_baseline_compares_no_overall_score() -> None:
    partial_baseline = assessment(score=99.0, gates=[gate("coverage", score=0.9)], left_out=["parity", "mutation"])
    baseline = compare(FULL, partial_baseline)
    assert baseline["partial"] is True and baseline["score_delta"] is None and baseline["regressions"] == []


def test_first_run_policy_fail_blocks_a_full_run_but_not_a_partial_one() -> None:
    full = compare(FULL, None, first_run_policy="fail")
    partial = compare(assessment(left_out=["parity"]), None, first_run_policy="fail")
    assert ship_blockers(full) == [full["message"]]
    assert partial["partial"] is True and ship_blockers(partial) == []


def test_trend_leaves_partial_assessments_out() -> None:
    rows = [assessment(generated_at="2026-11-20T10:00:00Z", score=70.0),
            assessment(generated_at="2026-11-21T10:00:00Z", score=100.0, left_out=["parity"]),
            assessment(generated_at="2026-11-22T10:00:00Z", score=72.0)]
    assert [p["score"] for p in trend(rows)] == [70.0, 72.0]


def test_diff_with_a_partial_side_says_partial_instead_of_a_score_change() -> None:
    partial = assessment(score=100.0,
                         gates=[gate("coverage", score=0.9, line_pct=90.0), gate("parity", "skipped", None)],
                         left_out=["parity", "mutation"])
    result = diff(FULL, partial)
    assert result["score"]["change"] == "partial" and result["score"]["delta"] is None
    assert result["partial"] == {"before": False, "after": True}
    assert [g["name"] for g in result["gates"]] == ["coverage"]


# --- measured intervals (the performance gate's latencies) ---------------------------------

LATENCY = Rule(metric="performance.*_decode_ms_T*", max_drop_pct=20.0, higher_is_better=False)
SIZE = Rule(metric="performance.*_package_mb", max_drop_pct=10.0, higher_is_better=False)


def _perf(ms: float, low: float, high: float, mb: float = 4.8) -> dict:
    return assessment(gates=[gate("performance", onnx_fp32_decode_ms_T512=ms, onnx_fp32_package_mb=mb,
                                  intervals={"onnx_fp32_decode_ms_T512": [low, high]})])


def _regressed(before: dict, after: dict) -> list[str]:
    return [r["metric"] for r in compare(after, before, [LATENCY, SIZE])["regressions"]]


def test_a_slower_median_inside_overlapping_intervals_is_noise_not_a_regression() -> None:
    # median +60 %, but the new fastest trial (0.30) is within 20 % of the baseline's slowest (0.40)
    assert _regressed(_perf(0.25, 0.22, 0.40), _perf(0.40, 0.30, 0.90)) == []
    # judged on the medians alone, the same rule would call it a regression
    assert LATENCY.violated(before=0.25, after=0.40)


def test_a_latency_whose_whole_interval_is_slower_beyond_the_tolerance_regresses() -> None:
    before, after = _perf(0.25, 0.22, 0.30), _perf(0.50, 0.40, 0.60)  # 0.40 > 0.30 * 1.2
    found = compare(after, before, [LATENCY, SIZE])["regressions"]
    assert [r["metric"] for r in found] == ["onnx_fp32_decode_ms_T512"]
    assert "beyond its interval" in found[0]["message"] and "[0.4–0.6]" in found[0]["message"]


def test_interval_edges_allow_exactly_the_tolerance() -> None:
    assert _regressed(_perf(0.25, 0.2, 0.25), _perf(0.4, 0.3, 0.5)) == []  # 0.3 is 0.25 + 20 %
    assert _regressed(_perf(0.25, 0.2, 0.25), _perf(0.4, 0.3001, 0.5)) == ["onnx_fp32_decode_ms_T512"]


def test_package_growth_has_no_interval_and_is_judged_on_its_value() -> None:
    assert _regressed(_perf(0.25, 0.2, 0.3, mb=4.8), _perf(0.25, 0.2, 0.3, mb=5.28)) == []  # +10 %
    assert _regressed(_perf(0.25, 0.2, 0.3, mb=4.8), _perf(0.25, 0.2, 0.3, mb=5.3)) == ["onnx_fp32_package_mb"]


def test_a_throughput_rule_compares_the_lower_end_of_the_baseline_with_the_upper_end_of_now() -> None:
    rule = Rule(metric="performance.*_prefill_rate_T*", max_drop_pct=10.0)
    doc = lambda med, lo, hi: assessment(gates=[gate("performance", onnx_fp32_prefill_rate_T64=med,  # noqa: E731
                                                     intervals={"onnx_fp32_prefill_rate_T64": [lo, hi]})])
    assert compare(doc(800, 700, 1000), doc(1000, 900, 1100), [rule])["regressions"] == []  # 800 vs 900 - 10 %
    assert [r["metric"] for r in compare(doc(600, 500, 620), doc(1000, 900, 1100), [rule])["regressions"]] == \
        ["onnx_fp32_prefill_rate_T64"]


def test_the_documented_performance_rules_parse_and_judge_on_intervals() -> None:
    import re
    import tomllib
    from pathlib import Path

    page = Path(__file__).resolve().parents[3] / "docs" / "gates" / "performance.md"
    block = next(b for b in re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)
                 if b.startswith("[history]"))
    rules = parse_rules(tomllib.loads(block)["history"]["rules"])
    noisy, slower = _perf(0.30, 0.25, 0.45), _perf(0.60, 0.58, 0.70)
    assert compare(noisy, _perf(0.25, 0.22, 0.40), rules)["regressions"] == []
    assert [r["metric"] for r in compare(slower, _perf(0.25, 0.22, 0.40), rules)["regressions"]] == \
        ["onnx_fp32_decode_ms_T512"]
    grown = _perf(0.25, 0.22, 0.40, mb=5.4)
    assert [r["metric"] for r in compare(grown, _perf(0.25, 0.22, 0.40), rules)["regressions"]] == \
        ["onnx_fp32_package_mb"]
