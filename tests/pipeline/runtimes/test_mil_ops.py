"""Every op in the interpreter's support table, against a numpy/PyTorch reference.

Each case builds a one-op MIL program with coremltools' builder, runs it
through `MilInterpreter` and compares with the reference. A table entry
without a case fails `test_every_supported_op_has_a_case`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.runtimes.mil_ops import SUPPORTED_OPS, Source, unsupported

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

from pipeline.runtimes.mil_interpreter import MilInterpreter  # noqa: E402

RNG = np.random.default_rng(0)
A = RNG.standard_normal((2, 3, 4)).astype(np.float32)
B = RNG.standard_normal((2, 3, 4)).astype(np.float32)
POS = (np.abs(A) + 0.5).astype(np.float32)
M = RNG.standard_normal((2, 4, 5)).astype(np.float32)
IDX = np.array([[0, 2], [1, 1]], np.int32)
Y4 = RNG.standard_normal((1, 4, 3, 5)).astype(np.float32)


def _t(fn, x):
    return fn(torch.from_numpy(np.asarray(x))).numpy()


def _softmax(x, axis=-1):
    return _t(lambda t: torch.softmax(t, axis), x)


# op -> (inputs, build(**vars) -> var, reference(**inputs) -> array)
CASES = {
    "add": ({"x": A, "y": B}, lambda x, y: mb.add(x=x, y=y), lambda x, y: x + y),
    "sub": ({"x": A, "y": B}, lambda x, y: mb.sub(x=x, y=y), lambda x, y: x - y),
    "mul": ({"x": A, "y": B}, lambda x, y: mb.mul(x=x, y=y), lambda x, y: x * y),
    "real_div": ({"x": A, "y": POS}, lambda x, y: mb.real_div(x=x, y=y), lambda x, y: x / y),
    "floor_div": ({"x": A * 5, "y": POS}, lambda x, y: mb.floor_div(x=x, y=y), lambda x, y: np.floor(x / y)),
    "mod": ({"x": A * 5, "y": POS}, lambda x, y: mb.mod(x=x, y=y), lambda x, y: np.mod(x, y)),
    "pow": ({"x": POS, "y": B}, lambda x, y: mb.pow(x=x, y=y), lambda x, y: np.power(x, y)),
    "maximum": ({"x": A, "y": B}, lambda x, y: mb.maximum(x=x, y=y), np.maximum),
    "minimum": ({"x": A, "y": B}, lambda x, y: mb.minimum(x=x, y=y), np.minimum),
    "equal": ({"x": A, "y": A}, lambda x, y: mb.equal(x=x, y=y), np.equal),
    "not_equal": ({"x": A, "y": B}, lambda x, y: mb.not_equal(x=x, y=y), np.not_equal),
    "less": ({"x": A, "y": B}, lambda x, y: mb.less(x=x, y=y), np.less),
    "less_equal": ({"x": A, "y": B}, lambda x, y: mb.less_equal(x=x, y=y), np.less_equal),
    "greater": ({"x": A, "y": B}, lambda x, y: mb.greater(x=x, y=y), np.greater),
    "greater_equal": ({"x": A, "y": B}, lambda x, y: mb.greater_equal(x=x, y=y), np.greater_equal),
    "logical_and": ({"x": A, "y": B}, lambda x, y: mb.logical_and(x=mb.greater(x=x, y=0.0), y=mb.greater(x=y, y=0.0)),
                    lambda x, y: (x > 0) & (y > 0)),
    "logical_or": ({"x": A, "y": B}, lambda x, y: mb.logical_or(x=mb.greater(x=x, y=0.0), y=mb.greater(x=y, y=0.0)),
                   lambda x, y: (x > 0) | (y > 0)),
    "logical_xor": ({"x": A, "y": B}, lambda x, y: mb.logical_xor(x=mb.greater(x=x, y=0.0), y=mb.greater(x=y, y=0.0)),
                    lambda x, y: (x > 0) ^ (y > 0)),
    "logical_not": ({"x": A}, lambda x: mb.logical_not(x=mb.greater(x=x, y=0.0)), lambda x: ~(x > 0)),
    "select": ({"x": A, "y": B}, lambda x, y: mb.select(cond=mb.greater(x=x, y=y), a=x, b=y), np.maximum),
    "select_scalar_branches": ({"x": A}, lambda x: mb.select(cond=mb.greater(x=x, y=0.0), a=1.0, b=-1.0),
                               lambda x: np.where(x > 0, 1.0, -1.0)),
    "abs": ({"x": A}, lambda x: mb.abs(x=x), np.abs),
    "exp": ({"x": A}, lambda x: mb.exp(x=x), np.exp),
    "exp2": ({"x": A}, lambda x: mb.exp2(x=x), np.exp2),
    "log": ({"x": POS}, lambda x: mb.log(x=x), np.log),
    "sqrt": ({"x": POS}, lambda x: mb.sqrt(x=x), np.sqrt),
    "rsqrt": ({"x": POS}, lambda x: mb.rsqrt(x=x), lambda x: 1 / np.sqrt(x + 1e-12)),
    "inverse": ({"x": POS}, lambda x: mb.inverse(x=x), lambda x: 1 / (x + 1e-4)),
    "square": ({"x": A}, lambda x: mb.square(x=x), np.square),
    "sign": ({"x": A}, lambda x: mb.sign(x=x), np.sign),
    "floor": ({"x": A * 3}, lambda x: mb.floor(x=x), np.floor),
    "ceil": ({"x": A * 3}, lambda x: mb.ceil(x=x), np.ceil),
    "round": ({"x": A * 3}, lambda x: mb.round(x=x), np.round),
    "clip": ({"x": A}, lambda x: mb.clip(x=x, alpha=-0.5, beta=0.5), lambda x: np.clip(x, -0.5, 0.5)),
    "tanh": ({"x": A}, lambda x: mb.tanh(x=x), np.tanh),
    "sin": ({"x": A}, lambda x: mb.sin(x=x), np.sin),
    "cos": ({"x": A}, lambda x: mb.cos(x=x), np.cos),
    "sigmoid": ({"x": A}, lambda x: mb.sigmoid(x=x), lambda x: _t(torch.sigmoid, x)),
    "relu": ({"x": A}, lambda x: mb.relu(x=x), lambda x: np.maximum(x, 0)),
    "leaky_relu": ({"x": A}, lambda x: mb.leaky_relu(x=x, alpha=0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "softplus": ({"x": A}, lambda x: mb.softplus(x=x), lambda x: _t(torch.nn.functional.softplus, x)),
    "silu": ({"x": A * 4}, lambda x: mb.silu(x=x), lambda x: _t(torch.nn.functional.silu, x)),
    "gelu": ({"x": A}, lambda x: mb.gelu(x=x), lambda x: _t(torch.nn.functional.gelu, x)),
    "erf": ({"x": A}, lambda x: mb.erf(x=x), lambda x: _t(torch.erf, x)),
    "cast": ({"x": A * 3}, lambda x: mb.cast(x=x, dtype="int32"), lambda x: x.astype(np.int32)),
    "identity": ({"x": A}, lambda x: mb.identity(x=x), lambda x: x),
    "matmul": ({"x": A, "y": M}, lambda x, y: mb.matmul(x=x, y=y), lambda x, y: x @ y),
    "linear": ({"x": A}, lambda x: mb.linear(x=x, weight=M[0].T.copy(), bias=np.arange(5, dtype=np.float32)),
               lambda x: x @ M[0] + np.arange(5)),
    "einsum": ({"x": A}, lambda x: mb.einsum(values=(mb.expand_dims(x=x, axes=[0]), Y4), equation="nchw,nwhu->nchu"),
               lambda x: np.einsum("nchw,nwhu->nchu", x[None], Y4)),
    "softmax": ({"x": A}, lambda x: mb.softmax(x=x, axis=-1), _softmax),
    "layer_norm": ({"x": A}, lambda x: mb.layer_norm(x=x, axes=[-1], epsilon=1e-5),
                   lambda x: _t(lambda t: torch.nn.functional.layer_norm(t, (4,), eps=1e-5), x)),
    "l2_norm": ({"x": A}, lambda x: mb.l2_norm(x=x, epsilon=1e-12),  # rank 3: the whole tensor
                lambda x: x / np.sqrt(np.sum(x**2))),
    "scaled_dot_product_attention": (
        {"x": A, "y": B}, lambda x, y: mb.scaled_dot_product_attention(query=x, key=y, value=y),
        lambda x, y: _t(lambda q: torch.nn.functional.scaled_dot_product_attention(
            q, torch.from_numpy(y), torch.from_numpy(y)), x)),
    "reduce_mean": ({"x": A}, lambda x: mb.reduce_mean(x=x, axes=[-1], keep_dims=True),
                    lambda x: x.mean(-1, keepdims=True)),
    "reduce_sum": ({"x": A}, lambda x: mb.reduce_sum(x=x, axes=[1]), lambda x: x.sum(1)),
    "reduce_max": ({"x": A}, lambda x: mb.reduce_max(x=x, axes=[2]), lambda x: x.max(2)),
    "reduce_min": ({"x": A}, lambda x: mb.reduce_min(x=x, axes=[2]), lambda x: x.min(2)),
    "reduce_prod": ({"x": A}, lambda x: mb.reduce_prod(x=x, axes=[2]), lambda x: x.prod(2)),
    "reduce_argmax": ({"x": A}, lambda x: mb.reduce_argmax(x=x, axis=-1), lambda x: x.argmax(-1)),
    "reduce_argmin": ({"x": A}, lambda x: mb.reduce_argmin(x=x, axis=-1), lambda x: x.argmin(-1)),
    "reduce_l2_norm": ({"x": A}, lambda x: mb.reduce_l2_norm(x=x, axes=[-1]), lambda x: np.sqrt((x**2).sum(-1))),
    "reduce_log_sum_exp": ({"x": A}, lambda x: mb.reduce_log_sum_exp(x=x, axes=[-1]),
                           lambda x: _t(lambda t: torch.logsumexp(t, -1), x)),
    "cumsum": ({"x": A}, lambda x: mb.cumsum(x=x, axis=1), lambda x: np.cumsum(x, 1)),
    "topk": ({"x": A}, lambda x: mb.topk(x=x, k=2)[0], lambda x: -np.sort(-x, -1)[..., :2]),
    "reshape": ({"x": A}, lambda x: mb.reshape(x=x, shape=[6, 4]), lambda x: x.reshape(6, 4)),
    "transpose": ({"x": A}, lambda x: mb.transpose(x=x, perm=[2, 0, 1]), lambda x: x.transpose(2, 0, 1)),
    "expand_dims": ({"x": A}, lambda x: mb.expand_dims(x=x, axes=[1]), lambda x: x[:, None]),
    "squeeze": ({"x": A[:, :1]}, lambda x: mb.squeeze(x=x, axes=[1]), lambda x: x[:, 0]),
    "concat": ({"x": A, "y": B}, lambda x, y: mb.concat(values=[x, y], axis=2),
               lambda x, y: np.concatenate([x, y], 2)),
    "stack": ({"x": A, "y": B}, lambda x, y: mb.stack(values=[x, y], axis=0), lambda x, y: np.stack([x, y])),
    "split": ({"x": A}, lambda x: mb.split(x=x, num_splits=2, axis=2)[1], lambda x: x[:, :, 2:]),
    "tile": ({"x": A}, lambda x: mb.tile(x=x, reps=[1, 2, 1]), lambda x: np.tile(x, (1, 2, 1))),
    "pad": ({"x": A}, lambda x: mb.pad(x=x, pad=[0, 0, 1, 1, 0, 2]), lambda x: np.pad(x, ((0, 0), (1, 1), (0, 2)))),
    "slice_by_index": ({"x": A}, lambda x: mb.slice_by_index(x=x, begin=[0, 1, 0], end=[2, 3, 3]),
                       lambda x: x[:, 1:3, 0:3]),
    "slice_by_index_squeeze": ({"x": A}, lambda x: mb.slice_by_index(
        x=x, begin=[0, 2, 0], end=[2, 0, 4], squeeze_mask=[False, True, False]), lambda x: x[:, 2, :]),
    "slice_by_size": ({"x": A}, lambda x: mb.slice_by_size(x=x, begin=[0, 1, 1], size=[1, 2, 3]),
                      lambda x: x[:1, 1:3, 1:4]),
    "gather": ({"x": A}, lambda x: mb.gather(x=x, indices=IDX, axis=1), lambda x: x[:, IDX]),
    "gather_along_axis": ({"x": A}, lambda x: mb.gather_along_axis(
        x=x, indices=np.zeros((2, 3, 1), np.int32), axis=2), lambda x: x[:, :, :1]),
    "gather_nd": ({"x": A}, lambda x: mb.gather_nd(x=x, indices=np.array([[0, 1], [1, 2]], np.int32)),
                  lambda x: x[[0, 1], [1, 2]]),
    "fill": ({"x": A}, lambda x: mb.add(x=x, y=mb.fill(shape=[2, 3, 4], value=2.0)), lambda x: x + 2),
    "fill_like": ({"x": A}, lambda x: mb.fill_like(ref_tensor=x, value=3.0), lambda x: np.full_like(x, 3.0)),
    "shape": ({"x": A}, lambda x: mb.shape(x=x), lambda x: np.array(x.shape)),
    "range_1d": ({"x": A}, lambda x: mb.range_1d(start=0.0, step=1.0, end=mb.cast(
        x=mb.gather(x=mb.shape(x=x), indices=2, axis=0), dtype="fp32")), lambda x: np.arange(4, dtype=np.float32)),
    "band_part": ({"x": A}, lambda x: mb.band_part(x=x, lower=-1, upper=0),
                  lambda x: np.tril(x)),
    "flatten2d": ({"x": A}, lambda x: mb.flatten2d(x=x, axis=1), lambda x: x.reshape(2, 12)),
    "reverse": ({"x": A}, lambda x: mb.reverse(x=x, axes=[2]), lambda x: x[:, :, ::-1]),
    "argsort": ({"x": A}, lambda x: mb.argsort(x=x, axis=-1), lambda x: np.argsort(-x, -1)),
    "non_zero": ({"x": A}, lambda x: mb.non_zero(x=mb.greater(x=x, y=0.0)), lambda x: np.argwhere(x > 0)),
    "one_hot": ({"x": A}, lambda x: mb.one_hot(indices=mb.reduce_argmax(x=x, axis=-1), one_hot_vector_size=4),
                lambda x: np.eye(4)[x.argmax(-1)]),
    "reshape_like": ({"x": A}, lambda x: mb.reshape_like(x=mb.reshape(x=x, shape=[24]), ref_tensors=(x,),
                                                         begins=(0,), ends=(3,), end_masks=(True,)),
                     lambda x: x),
    "batch_norm": ({"x": A}, lambda x: mb.batch_norm(x=x, mean=np.full(3, 0.5, np.float32),
                                                     variance=np.full(3, 2.0, np.float32), epsilon=1e-5),
                   lambda x: (x - 0.5) / np.sqrt(2.0 + 1e-5)),
    "instance_norm": ({"x": A}, lambda x: mb.instance_norm(x=x, epsilon=1e-5),
                      lambda x: _t(lambda t: torch.nn.functional.instance_norm(t, eps=1e-5), x)),
    "slice_update": ({"x": A, "y": B}, lambda x, y: mb.slice_update(
        x=x, update=mb.slice_by_index(x=y, begin=[0, 0, 1], end=[2, 2, 4], stride=[1, 1, 2]),
        begin=[0, 1, 0], end=[2, 3, 4], stride=[1, 1, 2]),
                     lambda x, y: np.concatenate([x[:, :1], np.stack([y[:, :2, 1], x[:, 1:3, 1], y[:, :2, 3],
                                                                      x[:, 1:3, 3]], -1), x[:, 3:]], 1)),
}


def _program(inputs, build):
    specs = [mb.TensorSpec(shape=v.shape) for v in inputs.values()]
    keys = list(inputs)
    # mb.program reads the argument count from the signature: no *args.
    if len(keys) == 1:
        def main(a):
            return build(**{keys[0]: a})
    else:
        def main(a, b):
            return build(**{keys[0]: a, keys[1]: b})
    prog = mb.program(input_specs=specs, opset_version=ct.target.iOS18)(main)
    names = list(prog.functions["main"].inputs)
    return MilInterpreter.from_function(prog.functions["main"]), dict(zip(names, inputs.values()))


def test_every_supported_op_has_a_case():
    # compressed weights and state ops have their cases in test_mil_compressed_ops.py
    from tests.pipeline.runtimes.test_mil_ops_vision import CASES as VISION_CASES

    elsewhere = {op for op, source in SUPPORTED_OPS.items() if source in (Source.CONSTEXPR, Source.STATE)}
    covered = {name.split("_scalar")[0].replace("_index_squeeze", "_index") for name in CASES}
    assert set(SUPPORTED_OPS) - {"const"} - elsewhere == covered | {op for op, *_ in VISION_CASES.values()}


@pytest.mark.parametrize("op_type", sorted(CASES))
def test_supported_op_matches_reference(op_type):
    inputs, build, reference = CASES[op_type]
    interp, feed = _program(inputs, build)
    (out,) = interp.run(feed).values()
    want = reference(*inputs.values())
    assert out.shape == np.shape(want)
    np.testing.assert_allclose(np.asarray(out, np.float64), np.asarray(want, np.float64), rtol=1e-5, atol=1e-5)
    ops = {op.op_type for op in interp._function.operations}
    assert op_type.split("_scalar")[0].replace("_index_squeeze", "_index") in ops


def test_numpy_kernels_cover_ops_without_value_inference():
    from coremltools.converters.mil.mil.operation import Operation
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    for name, source in SUPPORTED_OPS.items():
        if source is Source.VALUE_INFERENCE:
            cls = list(SSAOpRegistry.core_ops[name].values())[-1]
            assert cls.value_inference is not Operation.value_inference, name


def test_unsupported_lists_only_unknown_ops_sorted():
    assert unsupported(["add", "while_loop", "crop_resize", "add"]) == ("crop_resize", "while_loop")


def test_fp16_program_rounds_every_fp16_output():
    x = np.array([[1.0 + 2**-12, 70000.0, 3.0]], np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3))], opset_version=ct.target.iOS18)
    def prog(x):
        h = mb.cast(x=x, dtype="fp16")
        return mb.cast(x=mb.mul(x=h, y=np.float16(1.0)), dtype="fp32")

    out = list(MilInterpreter.from_function(prog.functions["main"]).run({"x": x}).values())[0]
    assert out[0, 0] == 1.0  # 1 + 2^-12 is not representable in fp16
    assert math.isinf(out[0, 1])  # above 65504
    assert out[0, 2] == 3.0
