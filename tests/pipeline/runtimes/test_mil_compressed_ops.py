"""Compressed-weight and state ops of the interpreter, against numpy references.

Each `constexpr_*` case builds a one-op MIL program with coremltools' builder
(the iOS16 form under opset iOS16, the iOS18 form under iOS18), adds the
materialised weight to an input so the program has work to do, and compares
the interpreter with a reference written from the op's definition (explicit
loops or bit arithmetic, not the kernels under test), and with coremltools'
own `materialized_val_inference()`: the tool's direct numbers. The state
cases thread one state through several runs, as Core ML's MLState does.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.runtimes.base import InputShapeError
from pipeline.runtimes.mil_ops import SUPPORTED_OPS, Source

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

from pipeline.runtimes.mil_interpreter import MilInterpreter  # noqa: E402

RNG = np.random.default_rng(7)


def pack_lsb_first(values: np.ndarray, nbits: int) -> np.ndarray:
    """Bytes holding `values` nbits each, least significant bit first (the iOS16 layout)."""
    bits = [(int(v) >> b) & 1 for v in values.ravel() for b in range(nbits)]
    bits += [0] * (-len(bits) % 8)
    return np.array([sum(bit << i for i, bit in enumerate(bits[k:k + 8])) for k in range(0, len(bits), 8)],
                    np.uint8)


def blockwise_reference(data, scale, offset=None):
    out = np.zeros(data.shape, np.float64)
    blocks = [d // s for d, s in zip(data.shape, scale.shape)]
    for index in itertools.product(*map(range, data.shape)):
        block = tuple(i // b for i, b in zip(index, blocks))
        shift = 0.0 if offset is None else float(offset[block])
        out[index] = float(scale[block]) * (float(data[index]) - shift)
    return out


def lut_reference(indices, lut, vector_axis=None):
    rank = indices.ndim
    groups, vector = lut.shape[:rank], lut.shape[-1]
    blocks = [d // g for d, g in zip(indices.shape, groups)]
    shape = list(indices.shape)
    if vector > 1:
        shape[vector_axis] *= vector
    out = np.zeros(shape, np.float64)
    for index in itertools.product(*map(range, indices.shape)):
        group = tuple(i // b for i, b in zip(index, blocks))
        entry = lut[group + (int(indices[index]),)]
        for v in range(vector):
            target = list(index)
            if vector > 1:
                target[vector_axis] = index[vector_axis] * vector + v
            out[tuple(target)] = entry[v]
    return out


def sparse_reference(values, mask):
    out = np.zeros(mask.shape, np.float64)
    it = iter(values.ravel())
    for index in itertools.product(*map(range, mask.shape)):  # row-major
        if mask[index]:
            out[index] = next(it)
    return out


def _to_dense(sparse):
    mask, values = sparse  # the sparse-to-sparse ops return (mask, values)
    return mb.constexpr_sparse_to_dense(nonzero_data=values, mask=mask)


Q8 = RNG.integers(-128, 128, (4, 6)).astype(np.int8)
ZP8 = RNG.integers(-3, 4, 4).astype(np.int8)
SCALE4 = RNG.uniform(0.01, 0.1, 4).astype(np.float32)
IDX6 = RNG.integers(0, 64, 24)
LUT64 = RNG.standard_normal(64).astype(np.float32)
IDX2 = RNG.integers(0, 4, 20)
LUT4 = RNG.standard_normal(4).astype(np.float32)
MASK = RNG.random((4, 6)) < 0.5
NZ = RNG.standard_normal(int(MASK.sum())).astype(np.float32)
INT4 = RNG.integers(-8, 8, (4, 64)).astype(np.int8)
SCALE_B = RNG.uniform(0.01, 0.1, (2, 2)).astype(np.float32)  # blocks of 2 rows x 32 columns
OFFSET_B = RNG.integers(-2, 3, (2, 2)).astype(np.int8)
IDX4 = RNG.integers(0, 16, (4, 6)).astype(np.uint8)
LUT_G = RNG.standard_normal((2, 1, 16, 1)).astype(np.float32)  # a LUT per pair of rows
IDX_V = RNG.integers(0, 4, (2, 3)).astype(np.uint8)
LUT_V = RNG.standard_normal((1, 1, 4, 2)).astype(np.float32)  # 2-vectors along axis 0
MASK_S = (RNG.random((4, 64)) < 0.4).astype(np.uint8)
F16 = RNG.standard_normal((4, 6)).astype(np.float16)

# case -> (opset, output shape, build() -> materialised var, reference() -> array)
CASES = {
    "constexpr_affine_dequantize": (
        ct.target.iOS16, (4, 6),
        lambda: mb.constexpr_affine_dequantize(quantized_data=Q8, zero_point=ZP8, scale=SCALE4, axis=0),
        lambda: SCALE4[:, None].astype(np.float64) * (Q8.astype(np.float64) - ZP8[:, None])),
    "constexpr_affine_dequantize_scalar_axis1": (
        ct.target.iOS16, (4, 6),
        lambda: mb.constexpr_affine_dequantize(quantized_data=Q8.view(np.uint8), zero_point=np.uint8(128),
                                               scale=np.float32(0.02), axis=1),
        lambda: 0.02 * (Q8.view(np.uint8).astype(np.float64) - 128)),
    "constexpr_cast": (
        ct.target.iOS16, (4, 6),
        lambda: mb.constexpr_cast(source_val=F16, output_dtype="fp32"), lambda: F16.astype(np.float64)),
    "constexpr_lut_to_dense_ios16_6bit": (
        ct.target.iOS16, (4, 6),
        lambda: mb.constexpr_lut_to_dense(indices=pack_lsb_first(IDX6, 6), lut=LUT64,
                                          shape=np.array([4, 6], np.uint32)),
        lambda: LUT64[IDX6].reshape(4, 6).astype(np.float64)),
    "constexpr_lut_to_dense_ios16_2bit": (
        ct.target.iOS16, (4, 5),
        lambda: mb.constexpr_lut_to_dense(indices=pack_lsb_first(IDX2, 2), lut=LUT4,
                                          shape=np.array([4, 5], np.uint32)),
        lambda: LUT4[IDX2].reshape(4, 5).astype(np.float64)),
    "constexpr_sparse_to_dense_ios16": (
        ct.target.iOS16, (4, 6),
        lambda: mb.constexpr_sparse_to_dense(nonzero_data=NZ, mask=pack_lsb_first(MASK.astype(np.uint8), 1),
                                             shape=np.array([4, 6], np.uint32)),
        lambda: sparse_reference(NZ, MASK)),
    "constexpr_blockwise_shift_scale": (
        ct.target.iOS18, (4, 64),
        lambda: mb.constexpr_blockwise_shift_scale(data=INT4.astype(types.np_int4_dtype), scale=SCALE_B,
                                                   offset=OFFSET_B.astype(types.np_int4_dtype)),
        lambda: blockwise_reference(INT4, SCALE_B, OFFSET_B)),
    "constexpr_blockwise_shift_scale_per_channel": (
        ct.target.iOS18, (4, 6),
        lambda: mb.constexpr_blockwise_shift_scale(data=Q8, scale=SCALE4[:, None]),
        lambda: blockwise_reference(Q8, SCALE4[:, None])),
    "constexpr_lut_to_dense_grouped": (
        ct.target.iOS18, (4, 6),
        lambda: mb.constexpr_lut_to_dense(indices=IDX4.astype(types.np_uint4_dtype), lut=LUT_G),
        lambda: lut_reference(IDX4, LUT_G)),
    "constexpr_lut_to_dense_vector": (
        ct.target.iOS18, (4, 3),
        lambda: mb.constexpr_lut_to_dense(indices=IDX_V.astype(types.np_uint2_dtype), lut=LUT_V,
                                          vector_axis=np.int32(0)),
        lambda: lut_reference(IDX_V, LUT_V, vector_axis=0)),
    "constexpr_sparse_to_dense": (
        ct.target.iOS18, (4, 6),
        lambda: mb.constexpr_sparse_to_dense(nonzero_data=NZ, mask=MASK.astype(types.np_uint1_dtype)),
        lambda: sparse_reference(NZ, MASK)),
    "constexpr_lut_to_sparse": (
        ct.target.iOS18, (4, 6),
        lambda: _to_dense(mb.constexpr_lut_to_sparse(
            indices_mask=MASK.astype(types.np_uint1_dtype),
            indices_nonzero_data=IDX4[MASK].astype(types.np_uint4_dtype), lut=LUT_G)),
        lambda: lut_reference(IDX4, LUT_G) * MASK),
    "constexpr_sparse_blockwise_shift_scale": (
        ct.target.iOS18, (4, 64),
        lambda: _to_dense(mb.constexpr_sparse_blockwise_shift_scale(
            data_mask=MASK_S.astype(types.np_uint1_dtype),
            nonzero_data=INT4[MASK_S != 0].astype(types.np_int4_dtype), scale=SCALE_B,
            offset=OFFSET_B.astype(types.np_int4_dtype))),
        lambda: blockwise_reference(INT4, SCALE_B, OFFSET_B) * MASK_S),
    "constexpr_cast_ios18": (
        ct.target.iOS18, (4, 6),
        lambda: mb.constexpr_cast(source_val=F16, output_dtype="fp32"), lambda: F16.astype(np.float64)),
}


def _op_type(case: str) -> str:
    return next(op for op in sorted(SUPPORTED_OPS, key=len, reverse=True) if case.startswith(op))


def _program(case: str):
    opset, shape, build, _ = CASES[case]

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=opset)
    def prog(x):
        return mb.add(x=x, y=build())

    return prog.functions["main"]


def test_every_constexpr_op_has_a_case():
    wanted = {op for op, source in SUPPORTED_OPS.items() if source is Source.CONSTEXPR}
    assert wanted == {_op_type(case) for case in CASES}
    # iOS16 forms of the ops that exist in both opsets are covered as well
    assert {"constexpr_lut_to_dense_ios16_6bit", "constexpr_sparse_to_dense_ios16", "constexpr_cast"} <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_constexpr_op_matches_reference_and_coremltools(case):
    function = _program(case)
    op_types = [op.op_type for op in function.operations]
    assert _op_type(case) in op_types
    x = RNG.standard_normal(CASES[case][1]).astype(np.float32)
    interp = MilInterpreter.from_function(function)
    (out,) = interp.run({"x": x}).values()
    np.testing.assert_allclose(out - x, CASES[case][3](), rtol=1e-6, atol=1e-6)
    # the materialised weight equals coremltools' own decompression
    add = next(op for op in function.operations if op.op_type == "add")
    producer = add.inputs["y"].op
    want = producer.materialized_val_inference()
    weight = interp.weights[add.inputs["y"].name]
    np.testing.assert_allclose(weight.value, np.asarray(want, np.float64), rtol=0, atol=0)
    assert weight.used_by == (f"add {add.name!r}",)


def test_materialised_weights_are_expanded_once_at_load():
    interp = MilInterpreter.from_function(_program("constexpr_blockwise_shift_scale"))
    assert not any(step.op.op_type.startswith("constexpr_") for step in interp._steps)
    assert [entry.op_type for entry in interp.weights.values()] == ["constexpr_blockwise_shift_scale"]


def test_a_mask_that_disagrees_with_its_values_is_refused_at_load():
    from pipeline.runtimes.mil_constexpr import materialise

    with pytest.raises(ValueError, match="the mask sets 3 elements but 2 values are stored"):
        materialise("constexpr_sparse_to_dense", {"nonzero_data": np.ones(2, np.float32),
                                                  "mask": np.array([1, 1, 1, 0], np.uint8)})


# -- state ---------------------------------------------------------------


def _kv_program():
    """A one-layer cache: read the state, write `x` at rows [pos, pos + 1), return what was read + 1."""

    @mb.program(input_specs=[mb.StateTensorSpec((1, 6, 2), dtype=types.fp16), mb.TensorSpec((1, 1, 2)),
                             mb.TensorSpec((1,), dtype=types.int32)], opset_version=ct.target.iOS18)
    def prog(cache, x, pos):
        held = mb.read_state(input=cache)
        begin = mb.concat(values=[np.array([0], np.int32), pos, np.array([0], np.int32)], axis=0)
        end = mb.concat(values=[np.array([1], np.int32), mb.add(x=pos, y=np.int32(1)),
                                np.array([2], np.int32)], axis=0)
        updated = mb.slice_update(x=held, update=mb.cast(x=x, dtype="fp16"), begin=begin, end=end)
        mb.coreml_update_state(state=cache, value=updated)
        return mb.cast(x=mb.add(x=held, y=np.float16(1)), dtype="fp32")

    return prog.functions["main"]


def test_state_ops_are_in_the_table_and_named_per_state():
    interp = MilInterpreter.from_function(_kv_program())
    reads, writes = interp.state_ops("cache")
    assert reads.startswith("read_state '") and writes.startswith("coreml_update_state '")
    assert " of slice_update '" in writes
    assert SUPPORTED_OPS["read_state"] is Source.STATE
    assert SUPPORTED_OPS["coreml_update_state"] is Source.STATE
    assert SUPPORTED_OPS["slice_update"] is Source.NUMPY


def test_state_threads_through_chained_runs_like_mlstate():
    interp = MilInterpreter.from_function(_kv_program())
    assert {n: (s.shape, s.dtype) for n, s in interp.states.items()} == {"cache": ((1, 6, 2), np.float16)}
    state = interp.make_state()
    reference = np.zeros((1, 6, 2))
    for pos in range(4):
        x = RNG.standard_normal((1, 1, 2)).astype(np.float32)
        (out,) = interp.run({"x": x, "pos": np.array([pos], np.int32)}, state=state).values()
        np.testing.assert_allclose(out, reference.astype(np.float16) + 1, rtol=1e-3)  # read before the write
        reference[0, pos] = x[0, 0]
        np.testing.assert_allclose(state.read_state("cache"), reference.astype(np.float16), rtol=0, atol=0)
    assert state.read_state("cache").dtype == np.float16


def test_two_states_of_one_program_are_independent():
    interp = MilInterpreter.from_function(_kv_program())
    first, second = interp.make_state(), interp.make_state()
    interp.run({"x": np.ones((1, 1, 2), np.float32), "pos": np.array([2], np.int32)}, state=first)
    assert first.read_state("cache")[0, 2].tolist() == [1.0, 1.0]
    assert not second.read_state("cache").any()


def test_write_state_seeds_what_the_program_reads():
    interp = MilInterpreter.from_function(_kv_program())
    state = interp.make_state()
    seeded = np.arange(12, dtype=np.float32).reshape(1, 6, 2)
    state.write_state("cache", seeded)
    (out,) = interp.run({"x": np.zeros((1, 1, 2), np.float32), "pos": np.array([5], np.int32)},
                        state=state).values()
    np.testing.assert_array_equal(out, seeded + 1)
    with pytest.raises(ValueError, match=r"state 'cache' is \[1, 6, 2\]; got a value of shape \[1, 2, 6\]"):
        state.write_state("cache", np.zeros((1, 2, 6)))


def test_a_stateful_program_refuses_to_run_without_state():
    interp = MilInterpreter.from_function(_kv_program())
    with pytest.raises(InputShapeError, match=r"keeps state \(cache\): pass state=interpreter.make_state\(\)"):
        interp.run({"x": np.zeros((1, 1, 2), np.float32), "pos": np.array([0], np.int32)})


def test_a_failed_run_leaves_the_state_as_it_was():
    interp = MilInterpreter.from_function(_kv_program())
    state = interp.make_state()
    with pytest.raises(ValueError, match="slice_update"):  # row 6 is past the cache: nothing to update
        interp.run({"x": np.ones((1, 1, 2), np.float32), "pos": np.array([6], np.int32)}, state=state)
    assert not state.read_state("cache").any()
