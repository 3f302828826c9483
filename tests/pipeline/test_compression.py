"""Compressed packages: what each kind stores, what it leaves dense, and what it costs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from pipeline.compression import KINDS, CompressionError, compress_package, conversion_pass, package_bytes
from pipeline.runtimes.mil_interpreter import MilInterpreter
from pipeline.runtimes.mil_package import load_package
from tests.fixtures.parity.build import case_dir
from tests.fixtures.parity.models import reference_and_converted

FP16 = case_dir(None) / "prefill_fp16.mlpackage"
STORED_AS = {"int8": "constexpr_blockwise_shift_scale", "int4_block32": "constexpr_blockwise_shift_scale",
             "prune50": "constexpr_sparse_to_dense", "palettize4": "constexpr_lut_to_dense"}


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    """kind -> CompressionReport, each compressed once per module."""
    folder, done = tmp_path_factory.mktemp("compressed"), {}

    def get(kind):
        if kind not in done:
            done[kind] = compress_package(FP16, kind, folder / f"{kind}.mlpackage")
        return done[kind]
    return get


def _constexpr_ops(path) -> Counter:
    return Counter(op.op_type for op in load_package(path).function.operations if op.op_type.startswith("constexpr"))


@pytest.mark.parametrize("kind", ["int8", "int4_block32", "prune50"])
def test_each_kind_stores_the_large_parameters_compressed_and_the_package_shrinks(kind, compressed):
    report = compressed(kind)
    # the tiny student's embedding and LM head pass coremltools' 2048-element threshold; its
    # 32x32 projections do not and stay fp16
    assert report.compressed == ("p_model_embed_weight_to_fp16", "p_model_lm_head_weight_to_fp16")
    assert "p_model_blocks_0_attn_q_proj_weight_to_fp16" in report.skipped
    assert _constexpr_ops(report.path) == Counter({STORED_AS[kind]: 2})
    assert report.size_bytes == package_bytes(report.path) < package_bytes(FP16)
    assert not list(report.path.parent.glob("*.partial.mlpackage"))


def test_buffers_stay_dense_even_when_they_are_large(compressed):
    report = compressed("int8")
    function = load_package(report.path).function
    consts = {op.outputs[0].name for op in function.operations if op.op_type == "const"}
    # the rotary tables and the causal mask are values the program computes with
    assert {"b_model_rope_cos_to_fp16", "b_model_causal_to_fp16"} <= consts


def test_int4_block32_logits_stay_close_to_pytorch(compressed):
    report = compressed("int4_block32")
    model = reference_and_converted(None)[0]
    ids = np.random.default_rng(0).integers(0, 512, (1, 16), dtype=np.int32)
    with torch.no_grad():
        want = model.prefill(torch.from_numpy(ids))[0].numpy()
    got = MilInterpreter.load(report.path).run({"input_ids": ids})["logits"].astype(np.float32)
    assert np.abs(got - want).max() / np.abs(want).max() < 0.2
    assert np.abs(got - want).max() > 1e-2  # lossy: int4 is not fp16


def test_palettize4_stores_one_lut_per_16_channels_and_an_override_its_own(tmp_path):
    import coremltools.optimize.coreml as cto

    two_bit = cto.OpPalettizerConfig(mode="kmeans", nbits=2, granularity="per_grouped_channel", group_size=16)
    report = compress_package(FP16, "palettize4", tmp_path / "pal4.mlpackage",
                              overrides={"p_model_lm_head_weight": two_bit})
    luts = {op.name: op.inputs["lut"].val.shape for op in load_package(report.path).function.operations
            if op.op_type == "constexpr_lut_to_dense"}
    # 512 rows / 16 per LUT; 16 entries for 4 bits, 4 for the 2-bit LM head
    assert luts == {"p_model_embed_weight_to_fp16_palettized": (32, 1, 16, 1),
                    "p_model_lm_head_weight_to_fp16_palettized": (32, 1, 4, 1)}


def test_unknown_kind_and_unreadable_source_are_refused(tmp_path):
    with pytest.raises(ValueError, match="compression 'int3' is not one of int8, int4_block32"):
        compress_package(FP16, "int3", tmp_path / "x.mlpackage")
    with pytest.raises(CompressionError, match="int8 compression of missing.mlpackage failed"):
        compress_package(tmp_path / "missing.mlpackage", "int8", tmp_path / "x.mlpackage")
    assert not (tmp_path / "x.mlpackage").exists()


def test_conversion_pass_names_the_graph_pass_and_skips_buffers():
    name, config = conversion_pass("palettize6", ["p_embed", "b_causal", "p_head"])
    assert name == "compression::palettize_weights"
    assert config.op_name_configs == {"b_causal": None}
    assert config.global_config.nbits == 6 and set(KINDS) == {"int8", "int4_block32", "palettize4",
                                                              "palettize6", "prune50"}
