"""MACs, peak activations, weights and fp16 share counted from committed converted tiny students.

The fixtures (tests/fixtures/parity/good) are the tiny student converted to
Core ML fp32/fp16 and ONNX at lengths 8 and 16. Its architecture fixes every
count, and torch's own FlopCounterMode on the eager model gives the same.
"""

from __future__ import annotations

import pytest

from pipeline.perf.mil_cost import CostError, MilProgram
from pipeline.perf.onnx_cost import OnnxGraph
from tests.fixtures.parity.build import case_dir
from tests.fixtures.parity.models import TINY, tiny_student

GOOD = case_dir(None)
PER_TOKEN_WEIGHT_MACS = TINY.n_layers * (TINY.d_model * TINY.n_heads * TINY.d_head * 2  # q, o
                                         + TINY.d_model * TINY.n_kv_heads * TINY.d_head * 2  # k, v
                                         + 3 * TINY.d_model * TINY.d_ff) + TINY.d_model * TINY.vocab_size
ATTENTION_PER_PAIR = TINY.n_layers * TINY.n_heads * TINY.d_head * 2  # q.k and p.v per (query, key) pair


@pytest.fixture(scope="module")
def programs() -> dict:
    return {"coreml_fp32": {k: MilProgram.load(GOOD / f"{k}_fp32.mlpackage") for k in ("prefill", "decode")},
            "coreml_fp16": {k: MilProgram.load(GOOD / f"{k}_fp16.mlpackage") for k in ("prefill", "decode")},
            "onnx_fp32": {k: OnnxGraph.load(GOOD / f"{k}.onnx") for k in ("prefill", "decode")}}


@pytest.mark.parametrize("target", ["coreml_fp32", "coreml_fp16", "onnx_fp32"])
@pytest.mark.parametrize("length", [8, 16])
def test_prefill_macs_follow_the_architecture(programs, target: str, length: int) -> None:
    cost = programs[target]["prefill"].cost(length)
    assert cost.weight_macs == PER_TOKEN_WEIGHT_MACS * length
    assert cost.activation_macs == ATTENTION_PER_PAIR * length * length
    assert cost.uncounted == ()


@pytest.mark.parametrize("target", ["coreml_fp32", "coreml_fp16", "onnx_fp32"])
def test_decode_weight_macs_stay_flat_and_only_attention_grows_with_the_cache(programs, target: str) -> None:
    short, long = programs[target]["decode"].cost(8), programs[target]["decode"].cost(64)
    assert short.weight_macs == long.weight_macs == PER_TOKEN_WEIGHT_MACS
    assert long.activation_macs - short.activation_macs == ATTENTION_PER_PAIR * (64 - 8)


def test_counts_equal_torch_flop_counter_on_the_eager_model() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = tiny_student(0)
    ids = torch.zeros((1, 16), dtype=torch.int32)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.prefill(ids)
    assert counter.get_total_flops() == 2 * OnnxGraph.load(GOOD / "prefill.onnx").cost(16).macs


def test_peak_activations_halve_in_fp16_and_grow_with_the_length(programs) -> None:
    fp32, fp16 = programs["coreml_fp32"]["prefill"], programs["coreml_fp16"]["prefill"]
    assert fp16.cost(16).peak_activation_bytes * 2 == pytest.approx(fp32.cost(16).peak_activation_bytes, rel=0.01)
    assert fp32.cost(16).peak_activation_bytes > fp32.cost(8).peak_activation_bytes
    # the largest live tensors are the attention scores: at least one layer's [1, heads, T, T] float32
    assert fp32.cost(16).peak_activation_bytes >= TINY.n_heads * 16 * 16 * 4


def test_fp16_share_counts_the_ops_that_keep_float16_outputs(programs) -> None:
    assert programs["coreml_fp16"]["prefill"].cost(8).fp16_pct == 100.0
    assert programs["coreml_fp32"]["prefill"].cost(8).fp16_pct == 0.0


def test_weight_bytes_by_dtype_hold_the_parameters_at_their_precision(programs) -> None:
    params = sum(p.numel() for p in tiny_student(0).parameters())
    fp32 = programs["coreml_fp32"]["prefill"].weight_bytes()
    fp16 = programs["coreml_fp16"]["prefill"].weight_bytes()
    onnx = programs["onnx_fp32"]["prefill"].weight_bytes()
    assert fp32["fp32"] >= 4 * params and onnx["fp32"] >= 4 * params
    assert fp16["fp16"] >= 2 * params and fp16.get("fp32", 0) < 1000
    assert fp32["fp32"] == pytest.approx(2 * fp16["fp16"], rel=0.01)


def test_a_length_the_package_does_not_enumerate_is_a_cost_error_naming_it(programs) -> None:
    with pytest.raises(CostError, match=r"input 'input_ids' enumerates no shape with length 12"):
        programs["coreml_fp32"]["prefill"].cost(12)


def test_an_unreadable_model_is_a_cost_error_naming_the_file(tmp_path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CostError, match=r"broken.onnx: cannot read the ONNX model"):
        OnnxGraph.load(bad)
    with pytest.raises(CostError, match=r"no such Core ML package"):
        MilProgram.load(tmp_path / "missing.mlpackage")
