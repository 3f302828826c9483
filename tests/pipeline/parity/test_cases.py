"""Inputs, reference caching and folding used by the parity gate."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.parity.cases import CachedRuntime, Comparison, input_ids, worst


def test_text_inputs_tile_the_token_stream_to_the_length():
    ids = input_ids("text", 7, vocab=100, seed=0, text_ids=[5, 6, 7])
    assert ids.dtype == np.int32 and ids.tolist() == [[5, 6, 7, 5, 6, 7, 5]]


def test_random_inputs_are_seeded_and_differ_per_length_and_seed():
    a = input_ids("random", 16, vocab=50, seed=0)
    assert np.array_equal(a, input_ids("random", 16, vocab=50, seed=0))
    assert not np.array_equal(a, input_ids("random", 16, vocab=50, seed=1))
    assert a.max() < 50 and a.shape == (1, 16)


def test_unknown_sources_and_missing_text_are_errors():
    with pytest.raises(ValueError, match="unknown input source"):
        input_ids("images", 4, vocab=10, seed=0)
    with pytest.raises(ValueError, match="token ids"):
        input_ids("text", 4, vocab=10, seed=0)


class _Counting:
    def __init__(self):
        self.calls = 0

    def run(self, inputs):
        self.calls += 1
        return {"y": inputs["x"] * 2}


def test_cached_reference_runs_once_per_distinct_input():
    inner = _Counting()
    cached = CachedRuntime(inner)
    x = np.arange(4, dtype=np.float32)
    cached.run({"x": x})
    cached.run({"x": x.copy()})
    cached.run({"x": x + 1})
    assert inner.calls == 2


def _row(value, output="logits", source="random", step=0, misses=()):
    return Comparison(phase="prefill", source=source, length=8, step=step, output=output,
                      metrics={"max_abs": value, "cosine": 1 - value, "nan_count": 0, "inf_count": 0},
                      misses=tuple(misses))


def test_worst_keeps_the_worst_value_in_each_direction_and_every_miss():
    folded = worst([_row(0.1), _row(0.3, source="text", misses=["max_abs 0.3"])], lambda r: r.output)
    entry = folded["logits"]
    assert entry["metrics"]["max_abs"] == 0.3 and entry["metrics"]["cosine"] == pytest.approx(0.7)
    assert entry["runs"] == 2 and entry["misses"] == ["logits (text): max_abs 0.3"]


def test_a_spilled_reference_runs_once_and_reads_back_equal_from_disk(tmp_path) -> None:

    calls = []

    class Reference:
        def run(self, inputs):
            calls.append(inputs["input_ids"].copy())
            ids = inputs["input_ids"].astype(np.float32)
            return {"logits": np.repeat(ids[..., None], 3, -1) * 0.5, "k_cache_0": ids[None] + 1}

    cached = CachedRuntime(Reference(), spill=tmp_path / "refs")
    a, b = np.arange(6, dtype=np.int32)[None], np.arange(1, 7, dtype=np.int32)[None]
    first = cached.run({"input_ids": a})
    again = cached.run({"input_ids": a.copy()})
    other = cached.run({"input_ids": b})
    assert len(calls) == 2  # the same input content is run once
    assert list(again) == ["logits", "k_cache_0"] and isinstance(again["logits"], np.memmap)
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])
    assert not np.array_equal(other["logits"], first["logits"])
    assert len(list((tmp_path / "refs").glob("ref_*/*.npy"))) == 4
