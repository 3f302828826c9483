"""Parity metrics, thresholds and the judging function."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.parity.metrics import (
    DEFAULT_THRESHOLDS,
    PSNR_CAP_DB,
    compare,
    judge,
    logit_metrics,
    output_group,
    thresholds_for,
)

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((1, 6, 50)).astype(np.float32)


def test_identical_outputs_have_zero_error_and_capped_psnr():
    m = compare(LOGITS, LOGITS.copy(), logits=True)
    assert m["max_abs"] == m["max_rel"] == m["mean_abs"] == 0.0
    assert m["psnr_db"] == PSNR_CAP_DB and m["cosine"] == pytest.approx(1.0)
    assert m["top1_pct"] == 100.0 and m["top5_pct"] == 100.0 and m["kl"] == 0.0
    assert judge(m, DEFAULT_THRESHOLDS["fp32"]) == []


def test_errors_are_measured_against_the_reference():
    ref = np.array([1.0, -2.0, 4.0], np.float32)
    cand = np.array([1.0, -2.5, 4.0], np.float32)
    m = compare(ref, cand)
    assert m["max_abs"] == 0.5 and m["max_rel"] == 0.125
    assert m["mean_abs"] == pytest.approx(0.5 / 3, rel=1e-5)
    rmse = math.sqrt(0.25 / 3)
    assert m["psnr_db"] == pytest.approx(20 * math.log10(4 / rmse), rel=1e-5)
    assert "top1_pct" not in m  # not logits


def test_top_k_agreement_and_kl_see_a_changed_ranking():
    cand = LOGITS.copy()
    cand[0, 0] = -cand[0, 0]  # one position's distribution flipped
    m = logit_metrics(LOGITS, cand)
    assert m["top1_pct"] == pytest.approx(100 * 5 / 6)
    assert m["top5_pct"] < 100.0 and m["kl"] > 0.01


def test_nan_and_inf_are_counted_and_always_fail():
    cand = LOGITS.copy()
    cand[0, 0, 0], cand[0, 1, 1] = np.nan, np.inf
    m = compare(LOGITS, cand, logits=True)
    assert m["nan_count"] == 1 and m["inf_count"] == 1
    misses = judge(m, {})
    assert misses == ["non-finite output (1 NaN, 1 Inf)"]


def test_judge_lists_every_missed_bound_not_just_the_first():
    m = compare(LOGITS, LOGITS + 0.5, logits=True)
    misses = judge(m, DEFAULT_THRESHOLDS["fp32"])
    names = {miss.split()[0] for miss in misses}
    assert {"max_rel", "psnr_db", "cosine"} <= names


def test_judge_uses_the_rounded_value_the_report_shows():
    assert judge({"max_rel": 1.0000001e-4}, {"max_rel": 1e-4}) != []
    rounded = compare(np.array([1.0]), np.array([1.0 + 1.0000001e-4]))
    assert rounded["max_rel"] == 0.0001  # six significant digits
    assert judge(rounded, {"max_rel": 1e-4}) == []


def test_fp16_defaults_are_looser_than_fp32():
    fp32, fp16 = DEFAULT_THRESHOLDS["fp32"], DEFAULT_THRESHOLDS["fp16"]
    assert fp16["max_rel"] > fp32["max_rel"] and fp16["psnr_db"] < fp32["psnr_db"]


def test_threshold_overrides_apply_from_general_to_specific():
    overrides = {"fp16": {"max_rel": 0.05}, "cache": {"max_rel": 0.03}, "fp16.k_cache_0": {"max_rel": 0.01}}
    assert thresholds_for("fp16", "logits", overrides)["max_rel"] == 0.05
    assert thresholds_for("fp16", "v_cache_1", overrides)["max_rel"] == 0.03
    assert thresholds_for("fp16", "k_cache_0", overrides)["max_rel"] == 0.01
    assert thresholds_for("fp32", "logits", overrides) == DEFAULT_THRESHOLDS["fp32"]
    assert output_group("k_cache_3_out") == "cache" and output_group("halt_logits") == "halt_logits"


def test_unknown_metrics_and_precisions_are_rejected():
    with pytest.raises(ValueError, match="unknown parity metric.*max_err"):
        thresholds_for("fp32", "logits", {"logits": {"max_err": 1.0}})
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        thresholds_for("bf16", "logits")  # int8 is a compression kind now


def test_shape_mismatch_is_an_error_not_a_metric():
    with pytest.raises(ValueError, match="shapes differ"):
        compare(np.zeros((1, 2)), np.zeros((1, 3)))
