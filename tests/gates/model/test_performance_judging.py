"""Judging the performance evidence: intervals against budgets, findings, the status order.

Timing entries are written by hand here: the judging is a pure function of
them, so every outcome is tested without timing anything.
"""

from __future__ import annotations

import pytest

from gates.model.performance_judging import Outcome, cache_reprojection, checks, findings, judge, limit_for


def entry(decode=(1.0, 0.9, 1.2), prefill_rate=(5000.0, 4000.0, 6000.0), growth=None, size=4_800_000,
          status="measured") -> dict:
    est = lambda m, lo, hi: {"median": m, "low": lo, "high": hi, "trials": 9, "confidence": 0.96}  # noqa: E731
    rows = [{"phase": "decode", "T": 64, "ms": est(0.5, 0.4, 0.6)},
            {"phase": "decode", "T": 512, "ms": est(*decode)},
            {"phase": "prefill", "T": 64, "tokens_per_s": est(*prefill_rate)}]
    timing = {"status": status, "rows": rows if status == "measured" else [],
              "reason": "Core ML prediction needs macOS",
              "decode_growth": est(*growth) if growth else None}
    return {"target": "onnx", "precision": "fp32", "package_bytes": size, "timing": timing, "cost": []}


def outcome(budget: str, limit, **kw) -> Outcome:
    [check] = checks({budget: limit}, {"onnx_fp32": entry(**kw)})
    return check.outcome


@pytest.mark.parametrize("decode,result", [((12.0, 11.0, 14.0), Outcome.MISSED),  # the whole interval is over
                                           ((9.0, 8.0, 11.0), Outcome.UNDECIDED),  # the limit is inside it
                                           ((6.0, 5.0, 9.5), Outcome.MET)])
def test_a_latency_budget_is_judged_on_the_interval_never_the_median_alone(decode, result) -> None:
    assert outcome("max_decode_ms", 10.0, decode=decode) is result


def test_max_decode_ms_is_judged_at_the_longest_cache() -> None:
    [check] = checks({"max_decode_ms": 0.8}, {"onnx_fp32": entry(decode=(1.0, 0.9, 1.2))})
    assert check.where == "decode at T=512" and check.outcome is Outcome.MISSED  # T=64 alone would meet it


@pytest.mark.parametrize("rate,result", [((900.0, 800.0, 990.0), Outcome.MISSED), ((1100.0, 950.0, 1200.0),
                                         Outcome.UNDECIDED), ((1500.0, 1000.0, 2000.0), Outcome.MET)])
def test_a_throughput_floor_is_missed_only_when_the_whole_interval_is_below(rate, result) -> None:
    assert outcome("min_prefill_tokens_per_s", 1000.0, prefill_rate=rate) is result


def test_size_is_judged_as_shown_two_decimals_of_mb() -> None:
    assert outcome("max_package_mb", 4.8, size=4_804_999) is Outcome.MET  # shows 4.80
    assert outcome("max_package_mb", 4.8, size=4_805_001) is Outcome.MISSED  # shows 4.81


def test_decode_growth_budget_reads_the_paired_ratio() -> None:
    assert outcome("max_decode_growth", 3.0, growth=(10.0, 8.5, 29.0)) is Outcome.MISSED
    assert outcome("max_decode_growth", 3.0, growth=None) is Outcome.UNJUDGED


def test_a_budget_table_names_targets_and_a_number_applies_to_every_target() -> None:
    assert limit_for({"onnx_fp32": 5.0}, "onnx_fp32") == 5.0 and limit_for({"onnx_fp32": 5.0}, "coreml_fp16") is None
    assert limit_for(5, "coreml_fp16") == 5.0
    targets = {"torch": entry(), "onnx_fp32": entry(), "coreml_fp16": entry(status="not_evaluable")}
    judged = checks({"max_decode_ms": 50.0}, targets)
    assert [(c.target, c.outcome) for c in judged] == [("onnx_fp32", Outcome.MET), ("coreml_fp16", Outcome.UNJUDGED)]
    assert judged[1].detail == "Core ML prediction needs macOS"


def test_status_order_fail_then_error_then_not_evaluable_then_warn() -> None:
    targets = {"onnx_fp32": entry()}
    missed = checks({"max_decode_ms": 0.1}, targets)
    undecided = checks({"max_decode_ms": 1.1}, targets)
    assert judge(missed, [], targets, []).status == "fail"
    assert judge(undecided, [], targets, []).status == "warn"
    assert judge([], [], {"onnx_fp32": {**entry(), "timing": {"status": "error", "rows": []}}}, []).status == "error"
    assert judge([], [], targets, ["coreml_fp16"]).status == "not_evaluable"
    assert judge([], [], {"torch": entry()}, []).status == "not_evaluable"  # nothing converted: nothing measured
    assert judge([], [], targets, []).status == "pass"
    assert judge([], [{"title": "t", "detail": "d"}], targets, []).status == "warn"


def _cost(weight_64: int, weight_512: int) -> dict:
    return {"cost": [{"phase": "decode", "T": 64, "macs": 0, "weight_macs": weight_64, "activation_macs": 65 * 256},
                     {"phase": "decode", "T": 512, "macs": 0, "weight_macs": weight_512,
                      "activation_macs": 513 * 256}]}


def test_flat_decode_weight_macs_are_no_finding_growing_ones_are() -> None:
    assert cache_reprojection(_cost(1000, 1000)) is None
    why = cache_reprojection(_cost(1000, 1000 + 448 * 4096))
    assert "+4,096 per cached token" in why and "attention over the cache costs 256" in why
    assert [f["title"] for f in findings({"onnx_fp32": _cost(1000, 1000 + 448)})] == \
        ["onnx_fp32: decode re-projects its cache every step"]


def test_a_decode_that_re_projects_its_cache_is_found_in_the_exported_graph(tmp_path) -> None:
    """The seeded defect (tiny and narrow, for speed): exported to ONNX and counted from the graph."""
    import torch

    from pipeline import to_onnx
    from pipeline.adapter import ModuleAdapter
    from pipeline.perf.onnx_cost import OnnxGraph
    from tests.fixtures.models.perf_defects import ReprojectingCacheStudent
    from tests.fixtures.parity.models import TINY, tiny_student

    model = ReprojectingCacheStudent(TINY, width=64)
    model.load_state_dict(tiny_student(0).state_dict())
    adapter = ModuleAdapter(model)
    caches = [torch.randn(1, TINY.n_kv_heads, 4, TINY.d_head) for _ in range(2 * TINY.n_layers)]
    path = to_onnx.export_decode_onnx(adapter.decode_module(), [torch.zeros(1, 1, dtype=torch.int32),
                                                                torch.tensor([4], dtype=torch.int32), *caches],
                                      input_names=adapter.decode_input_names(),
                                      output_names=adapter.decode_output_names(), out_path=tmp_path / "decode.onnx",
                                      cache_range=(1, 79))
    graph = OnnxGraph.load(path)
    rows = [{"phase": "decode", "T": t, **{k: getattr(graph.cost(t), k) for k in ("macs", "weight_macs",
                                                                                 "activation_macs")}}
            for t in (8, 64)]
    # every cache tensor (2 per layer) goes through [d_head x 64] and back: 2 * 64 * d_head MACs per row per head
    per_token = 2 * TINY.n_layers * TINY.n_kv_heads * 2 * 64 * TINY.d_head
    assert rows[1]["weight_macs"] - rows[0]["weight_macs"] == per_token * (64 - 8)
    assert "re-projects its whole cache" in cache_reprojection({"cost": rows})
