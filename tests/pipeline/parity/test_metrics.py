"""Parity metrics, thresholds and the judging function."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

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
from tests.pipeline.parity.whole_tensor import whole_tensor_metrics

ROOT = Path(__file__).resolve().parents[3]
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


@pytest.mark.parametrize("block", [50, 120, 1 << 22])  # one row per block, rows split across blocks, one block
def test_metrics_over_blocks_of_rows_equal_the_whole_tensor_at_once(monkeypatch: pytest.MonkeyPatch, block: int):
    from pipeline.parity import metrics

    ref = RNG.standard_normal((2, 37, 50)).astype(np.float32)
    cand = (ref + 0.3 * RNG.standard_normal(ref.shape)).astype(np.float32)
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", block)
    got = compare(ref, cand, logits=True)
    for name, want in whole_tensor_metrics(ref, cand).items():
        assert got[name] == pytest.approx(want, rel=1e-5), name
    assert 0 < got["top1_pct"] < 100 and 0 < got["top5_pct"] < 100  # the candidate really differs


def test_a_non_finite_value_in_a_later_block_is_still_counted(monkeypatch: pytest.MonkeyPatch):
    from pipeline.parity import metrics

    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 50)
    cand = LOGITS.copy()
    cand[0, 5, 3] = np.nan
    m = compare(LOGITS, cand, logits=True)
    assert m["nan_count"] == 1 and math.isnan(m["max_abs"]) and math.isnan(m["top1_pct"])


def test_a_non_finite_reference_leaves_only_the_counts(monkeypatch: pytest.MonkeyPatch):
    from pipeline.parity import metrics

    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 50)
    ref = LOGITS.copy()
    ref[0, 5, 1] = np.inf
    m = compare(ref, LOGITS, logits=True)
    assert m["nan_count"] == m["inf_count"] == 0 and math.isnan(m["max_abs"]) and math.isnan(m["kl"])


def test_finite_values_whose_sum_overflows_are_still_compared():
    # the quick "is every value finite" test is a finite sum; 1e308 + 1e308 is not one
    ref = np.array([[1e308, 1e308, 1.0]])
    cand = np.array([[1e308, 1e308, 2.0]])
    m = compare(ref, cand, logits=True)
    assert m["nan_count"] == m["inf_count"] == 0
    assert m["max_abs"] == 1.0 and m["top1_pct"] == 100.0


# A 64 MB reference kept on disk, compared with a candidate in memory: resident MB before and
# after the comparison, the reference still mapped.
MAPPED = textwrap.dedent("""
    import sys
    import numpy as np
    from pipeline.parity.metrics import compare
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((1, 512, 32768), dtype=np.float32)
    np.save(sys.argv[1], ref)
    cand = ref + np.float32(1e-3)
    want = compare(ref, cand, logits=True)
    del ref
    mapped = np.load(sys.argv[1], mmap_mode="r")
    before = rss()
    assert compare(mapped, cand, logits=True) == want
    print(before, rss())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident size from /proc (Linux)")
def test_a_reference_read_from_disk_is_compared_a_block_at_a_time(tmp_path):
    done = subprocess.run([sys.executable, "-c", MAPPED, str(tmp_path / "ref.npy")], cwd=ROOT, capture_output=True,
                          text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    before, after = map(float, done.stdout.split())
    assert after - before < 32  # MB: the 64 MB reference's pages went back block by block
