"""The MIL interpreter on the committed tiny-student packages and small programs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.runtimes.base import InputShapeError, NotEvaluable, UnsupportedOps
from pipeline.runtimes.mil_interpreter import MilInterpreter
from tests.fixtures.parity.build import case_dir
from tests.fixtures.parity.models import reference_and_converted

GOOD = case_dir(None)


@pytest.fixture(scope="module")
def student():
    return reference_and_converted(None)[0]


@pytest.fixture(scope="module")
def prefill32():
    return MilInterpreter.load(GOOD / "prefill_fp32.mlpackage")


@pytest.fixture(scope="module")
def prefill16():
    return MilInterpreter.load(GOOD / "prefill_fp16.mlpackage")


@pytest.fixture(scope="module")
def decode32():
    return MilInterpreter.load(GOOD / "decode_fp32.mlpackage")


def ids(length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 512, (1, length), dtype=np.int32)


def reference(student, x: np.ndarray) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        return tuple(t.numpy() for t in student.prefill(torch.from_numpy(x)))


@pytest.mark.parametrize("length", [8, 16])
def test_fp32_prefill_matches_pytorch_to_1e_5_at_each_enumerated_length(prefill32, student, length):
    x = ids(length)
    out = prefill32.run({"input_ids": x})
    for name, want in zip(prefill32.output_names, reference(student, x)):
        assert out[name].shape == want.shape
        assert np.abs(out[name] - want).max() <= 1e-5, name


def test_fp16_program_is_evaluated_at_fp16_precision(prefill16, prefill32, student):
    x = ids(16)
    want = reference(student, x)[0]
    err16 = np.abs(prefill16.run({"input_ids": x})["logits"].astype(np.float32) - want).max()
    err32 = np.abs(prefill32.run({"input_ids": x})["logits"] - want).max()
    assert 1e-4 < err16 < 2e-2  # fp16 storage shows, but stays small
    assert err32 < err16 / 100


def test_fp16_weights_are_held_at_half_the_bytes_and_compute_as_if_widened(prefill16, monkeypatch):
    from pipeline.runtimes import mil_interpreter

    held = [v for v in prefill16._consts.values() if isinstance(v, np.ndarray) and v.size >= 1024]
    assert held and all(v.dtype == np.float16 for v in held)  # the weights, not float32 copies
    monkeypatch.setattr(mil_interpreter, "HALF_CONST_MIN", 10**12)  # every const held as float32
    widened = MilInterpreter.load(GOOD / "prefill_fp16.mlpackage")
    assert all(v.dtype != np.float16 for v in widened._consts.values() if isinstance(v, np.ndarray))
    x = ids(16, seed=3)
    for name, value in prefill16.run({"input_ids": x}).items():
        np.testing.assert_array_equal(value, widened.run({"input_ids": x})[name])


def test_decode_threads_the_cache_like_pytorch(decode32, student):
    x = ids(8)
    with torch.no_grad():
        caches = student.prefill(torch.from_numpy(x))[1:]
        want = student.decode(torch.tensor([[3]], dtype=torch.int32), torch.tensor([8], dtype=torch.int32), *caches)
    names = [c.name for c in decode32.inputs[2:]]
    feed = {"input_ids": np.array([[3]], np.int32), "position": np.array([8], np.int32),
            **{n: c.numpy() for n, c in zip(names, caches)}}
    out = decode32.run(feed)
    for name, w in zip(decode32.output_names, want):
        assert np.abs(out[name] - w.numpy()).max() <= 1e-5, name
    assert out["k_cache_0_out"].shape[2] == 9


def test_a_length_the_package_does_not_enumerate_is_refused(prefill32):
    with pytest.raises(InputShapeError, match=r"\[1, 12\].*one of \[1, 8\], \[1, 16\]"):
        prefill32.run({"input_ids": ids(12)})


def test_a_cache_longer_than_the_range_is_refused(decode32):
    caches = {c.name: np.zeros((1, 2, 100, 8), np.float32) for c in decode32.inputs[2:]}
    with pytest.raises(InputShapeError, match="1..79"):
        decode32.run({"input_ids": np.array([[1]], np.int32), "position": np.array([100], np.int32), **caches})


def test_missing_or_unknown_inputs_are_refused(prefill32):
    with pytest.raises(InputShapeError, match="do not match"):
        prefill32.run({"ids": ids(8)})


def test_no_state_leaks_from_one_run_into_the_next(prefill32):
    first = prefill32.run({"input_ids": ids(8, seed=1)})
    prefill32.run({"input_ids": ids(16, seed=2)})
    again = prefill32.run({"input_ids": ids(8, seed=1)})
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    # and every var is back to its loaded state (no value, symbolic length)
    out_var = prefill32._function.outputs[0]
    assert out_var._sym_val is None
    assert not isinstance(out_var.shape[1], int)


def test_the_package_is_loaded_once_not_per_call(monkeypatch):
    from pipeline.runtimes import mil_package

    calls = []
    real = mil_package.load_package
    monkeypatch.setattr("pipeline.runtimes.mil_interpreter.load_package",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    interp = MilInterpreter.load(GOOD / "prefill_fp32.mlpackage")
    for length in (8, 16, 8):
        interp.run({"input_ids": ids(length)})
    assert calls == [1]


def test_trace_returns_every_non_const_op_in_program_order(prefill32):
    out, records = prefill32.trace({"input_ids": ids(8)})
    assert [r.name for r in records] == [op.name for op in prefill32._function.operations
                                         if op.op_type != "const"]
    assert any(r.op_type == "softmax" for r in records)
    last = {n: v for r in records for n, v in zip(r.output_names, r.outputs)}
    np.testing.assert_array_equal(last["logits"], out["logits"])


def test_unsupported_ops_are_named_and_not_evaluable():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 2, 8, 8))], opset_version=ct.target.iOS18)
    def prog(x):
        return mb.space_to_depth(x=mb.relu(x=x), block_size=2)

    with pytest.raises(UnsupportedOps, match="space_to_depth") as info:
        MilInterpreter.from_function(prog.functions["main"])
    assert isinstance(info.value, NotEvaluable) and info.value.op_types == ("space_to_depth",)


def test_a_missing_package_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such Core ML package"):
        MilInterpreter.load(tmp_path / "absent.mlpackage")


def test_a_run_holds_only_live_values_and_a_trace_keeps_every_output() -> None:
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb

    steps, shape = 24, (1, 256, 1024)  # one activation: 1 MiB

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=ct.target.iOS18)
    def prog(x):
        for _ in range(steps):
            x = mb.add(x=x, y=np.float32(1.0))
        return x

    interp = MilInterpreter.from_function(prog.functions["main"])
    live: list[int] = []
    evaluate = interp._evaluate

    def measuring(step, values, states, owned=None):  # bytes of activations held when each op runs
        live.append(sum(v.nbytes for k, v in values.items()
                        if isinstance(v, np.ndarray) and k not in interp._consts))
        return evaluate(step, values, states, owned)

    interp._evaluate = measuring  # type: ignore[method-assign]
    x = np.zeros(shape, np.float32)
    out = next(iter(interp.run({"x": x}).values()))
    np.testing.assert_array_equal(out, x + steps)
    assert max(live) <= 2 * x.nbytes  # the input and one intermediate, never the chain
    outputs, records = interp.trace({"x": x})
    assert len(records) == steps and all(r.outputs[0].nbytes == x.nbytes for r in records)


# --- writing over a dying input ---------------------------------------------------------------

def _attention_like(shape):
    """matmul -> scale -> reshape -> + mask -> softmax -> matmul: the scores are the big array."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    heads, t, d = shape

    @mb.program(input_specs=[mb.TensorSpec(shape=(heads, t, d)), mb.TensorSpec(shape=(heads, t, d))],
                opset_version=ct.target.iOS18)
    def prog(q, k):
        scores = mb.matmul(x=q, y=k, transpose_y=True)
        scores = mb.mul(x=scores, y=np.float32(d ** -0.5))
        scores = mb.reshape(x=scores, shape=[1, heads, t, t])
        scores = mb.add(x=scores, y=np.triu(np.full((t, t), -1e4, np.float32), 1))
        probs = mb.softmax(x=scores, axis=-1)
        return mb.matmul(x=mb.reshape(x=probs, shape=[heads, t, t]), y=k)

    return prog


def test_ops_write_over_inputs_nothing_else_sees_and_give_the_same_bits():
    import tracemalloc

    heads, t, d = 4, 256, 8
    interp = MilInterpreter.from_function(_attention_like((heads, t, d)).functions["main"])
    rng = np.random.default_rng(0)
    feed = {"q": rng.standard_normal((heads, t, d), np.float32), "k": rng.standard_normal((heads, t, d), np.float32)}
    kept = {n: v.copy() for n, v in feed.items()}
    traced, _ = interp.trace(feed)  # a trace keeps every op's output: nothing is written over
    tracemalloc.start()
    ran = interp.run(feed)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    scores = heads * t * t * 4
    name = next(iter(ran))
    np.testing.assert_array_equal(ran[name], traced[name])
    assert all(np.array_equal(feed[n], kept[n]) for n in feed)  # the caller's inputs are untouched
    assert peak < 2 * scores  # the scores, scaled, masked and softmaxed in one array (4x without)


def test_an_input_a_live_view_still_sees_is_not_written_over():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 6))], opset_version=ct.target.iOS18)
    def prog(x):
        z = mb.add(x=x, y=np.float32(1.0))  # owned by the run
        view = mb.reshape(x=z, shape=[3, 4])  # shares z's memory and lives on
        w = mb.add(x=z, y=np.float32(10.0))  # z read last here: written over only if nothing sees it
        return mb.add(x=mb.reshape(x=w, shape=[3, 4]), y=view)

    interp = MilInterpreter.from_function(prog.functions["main"])
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    out = next(iter(interp.run({"x": x}).values()))
    np.testing.assert_array_equal(out, ((x + 11) + (x + 1)).reshape(3, 4))


def test_consts_and_outputs_are_never_written_over():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    weight = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 6))], opset_version=ct.target.iOS18)
    def prog(x):
        same = mb.identity(x=weight)  # an op whose output is the const's own array
        first = mb.add(x=same, y=x)
        return first, mb.mul(x=first, y=np.float32(2.0))  # `first` is an output and read here

    interp = MilInterpreter.from_function(prog.functions["main"])
    x = np.ones((2, 6), np.float32)
    for _ in range(2):
        first, second = interp.run({"x": x}).values()
        np.testing.assert_array_equal(first, weight + 1)
        np.testing.assert_array_equal(second, (weight + 1) * 2)


def test_fp16_runs_round_in_place_to_the_same_bits_as_a_trace(prefill16):
    feed = {"input_ids": ids(16, seed=3)}
    ran = prefill16.run(feed)
    traced, _ = prefill16.trace(feed)
    assert ran.keys() == traced.keys()
    for name in ran:
        np.testing.assert_array_equal(ran[name], traced[name])


def test_a_scalar_result_is_never_written_over():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS18)
    def prog(x):
        total = mb.reduce_sum(x=x, axes=[0, 1], keep_dims=False)  # stored as a numpy scalar
        return mb.mul(x=total, y=np.float32(2.0))

    for precision in ("fp32", "fp16"):
        program = prog
        if precision == "fp16":
            from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

            PASS_REGISTRY["common::add_fp16_cast"](program)
        interp = MilInterpreter.from_function(program.functions["main"])
        out = next(iter(interp.run({"x": np.ones((2, 3), np.float32)}).values()))
        assert float(out) == 12.0


def test_an_integer_division_is_not_written_over_its_integer_input():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(4,), dtype=ct.converters.mil.mil.types.int32)],
                opset_version=ct.target.iOS18)
    def prog(x):
        doubled = mb.mul(x=x, y=np.int32(2))  # an int32 array the run owns
        return mb.real_div(x=doubled, y=np.int32(3))  # numpy's true division gives float64

    interp = MilInterpreter.from_function(prog.functions["main"])
    feed = {"x": np.arange(4, dtype=np.int32)}
    traced, _ = interp.trace(feed)  # a trace never writes over an input
    out = interp.run(feed)
    assert out.keys() == traced.keys()
    for name in out:
        np.testing.assert_array_equal(out[name], traced[name])
