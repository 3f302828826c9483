"""Lossy-target metrics: perplexity on text, free-running generation, chained decode logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.parity import lossy
from pipeline.parity.cases import chain_comparison
from pipeline.parity.lossy import agreed_prefix, generation_comparison, greedy_tokens, mean_nll, perplexity_delta_pct
from pipeline.parity.metrics import DEFAULT_THRESHOLDS, thresholds_for

RNG = np.random.default_rng(3)
LOGITS = RNG.standard_normal((1, 12, 20)).astype(np.float32) * 3
IDS = RNG.integers(0, 20, (1, 12)).astype(np.int32)


def test_mean_nll_is_torch_cross_entropy_of_the_next_tokens():
    want = torch.nn.functional.cross_entropy(torch.from_numpy(LOGITS[0, :-1]).double(),
                                             torch.from_numpy(IDS[0, 1:]).long())
    assert mean_nll(LOGITS, IDS) == pytest.approx(float(want), rel=1e-12)


def test_mean_nll_in_blocks_of_rows_is_the_same(monkeypatch):
    want = mean_nll(LOGITS, IDS)
    monkeypatch.setattr(lossy, "BLOCK_ELEMENTS", 3 * LOGITS.shape[-1])  # 11 rows in blocks of 3, 3, 3, 2
    assert mean_nll(LOGITS, IDS) == pytest.approx(want, rel=1e-12)
    monkeypatch.setattr(lossy, "BLOCK_ELEMENTS", 1)  # a row at a time
    assert mean_nll(LOGITS, IDS) == pytest.approx(want, rel=1e-12)


def test_perplexity_delta_is_zero_for_identical_logits_and_grows_with_noise():
    assert perplexity_delta_pct(LOGITS, LOGITS, IDS) == 0.0
    noisy = LOGITS + RNG.standard_normal(LOGITS.shape).astype(np.float32) * 2
    want = 100 * (np.exp(mean_nll(noisy, IDS)) / np.exp(mean_nll(LOGITS, IDS)) - 1)
    assert perplexity_delta_pct(LOGITS, noisy, IDS) == pytest.approx(want)
    with pytest.raises(ValueError, match="at least two tokens"):
        perplexity_delta_pct(LOGITS[:, :1], LOGITS[:, :1], IDS[:, :1])


def test_agreed_prefix_counts_tokens_before_the_first_disagreement():
    assert agreed_prefix([1, 2, 3, 4], [1, 2, 9, 4]) == 2
    assert agreed_prefix([1, 2], [1, 2]) == 2 and agreed_prefix([5], [6]) == 0


class CountingModel:
    """prefill/decode runtime whose next token is (last token + step) % 7; caches count steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def _logits(self, token: int) -> np.ndarray:
        logits = np.zeros((1, 1, 7), np.float32)
        logits[0, 0, (token + self.step) % 7] = 1.0
        return logits

    def run(self, inputs):
        if "position" not in inputs:
            return {"logits": self._logits(int(inputs["input_ids"][0, -1])), "k": np.zeros((1, 1))}
        return {"logits": self._logits(int(inputs["input_ids"][0, 0])), "k_out": inputs["k"] + 1}


def test_greedy_tokens_thread_each_runtimes_own_caches():
    model = CountingModel(1)
    assert greedy_tokens(model, model, np.array([[3]], np.int32), 4, ("k",), ("k_out",)) == [4, 5, 6, 0]


def test_generation_row_is_the_mean_agreed_share_and_judged_against_the_bound():
    ref, cand = CountingModel(1), CountingModel(2)
    prompts = [("text", np.array([[0, 0]], np.int32)), ("random", np.array([[1, 1]], np.int32))]

    def run(model):
        return lambda ids: greedy_tokens(model, model, ids, 4, ("k",), ("k_out",))

    same = generation_comparison(run(ref), run(ref), prompts, 4, lambda o: thresholds_for("int8", o))
    assert same.metrics == {"greedy_match_pct": 100.0} and same.passed
    assert (same.phase, same.output, same.source, same.length) == ("generate", "tokens", "text+random", 2)
    differ = generation_comparison(run(ref), run(cand), prompts, 4, lambda o: thresholds_for("int8", o))
    assert differ.metrics == {"greedy_match_pct": 0.0}
    assert differ.misses == ("greedy_match_pct 0 (needs >= 75)",)


def test_a_decode_chain_of_a_lossy_target_is_judged_on_kl_not_on_single_token_flips():
    ref = [LOGITS[:, i:i + 1] for i in range(3)]
    ref[0] = np.zeros((1, 1, 20), np.float32)
    ref[0][0, 0, :2] = (2.0, 1.99)  # a near tie: a compressed model may pick either
    flipped = [r.copy() for r in ref]
    flipped[0][0, 0, :2] = (1.99, 2.0)
    row = chain_comparison(ref, flipped, lambda o: thresholds_for("int4_block32", o), "logits",
                           phase="decode", source="text", length=12, step=3)
    assert row.metrics["top1_pct"] < 100 and row.passed  # reported, not judged on three tokens
    far = [r + RNG.standard_normal(r.shape).astype(np.float32) * 4 for r in ref]
    bad = chain_comparison(ref, far, lambda o: thresholds_for("int4_block32", o), "logits",
                           phase="decode", source="text", length=12, step=3)
    assert any(m.startswith("kl ") for m in bad.misses)


def test_each_compression_kind_has_default_bounds_on_what_compression_changes():
    for kind in ("int8", "int4_block32", "palettize4", "palettize6", "prune50"):
        assert set(DEFAULT_THRESHOLDS[kind]) == {"top1_pct", "top5_pct", "kl", "ppl_delta_pct", "greedy_match_pct"}
    assert thresholds_for("int4_block32", "logits", {"int4_block32.logits": {"kl": 0.1}})["kl"] == 0.1
    kl = {kind: DEFAULT_THRESHOLDS[kind]["kl"] for kind in ("int8", "palettize6", "palettize4")}
    assert kl["int8"] < kl["palettize6"] < kl["palettize4"]
