"""Which MIL ops the interpreter evaluates, and numpy kernels for those that
coremltools cannot evaluate itself.

Most MIL op classes carry a `value_inference()` the converter uses for
constant folding; the interpreter calls it. A few ops a transformer needs lack
one (`silu`, `gather_nd`, ...), and a few have one that is exact but far too
slow for real tensors (`erf` and exact `gelu` call `math.erf` per element):
those get a kernel here. Every entry of `SUPPORTED_OPS` is tested against a
numpy or PyTorch reference (tests/pipeline/runtimes/test_mil_ops.py); an op
outside the table makes the program not evaluable rather than guessed at.

A kernel takes the operation, whose input vars already hold concrete values
(`op.x.val`), and returns the output value (or a tuple of them), computed in
float32 whatever the declared dtype: the interpreter rounds to fp16 storage.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Callable

import numpy as np
import torch


class Source(str, enum.Enum):
    """Where an op's evaluation comes from."""

    VALUE_INFERENCE = "value_inference"  # coremltools' own op.value_inference()
    NUMPY = "numpy"  # a kernel in this module
    CONST = "const"  # materialised once at load


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


def _silu(op: Any) -> np.ndarray:
    x = np.asarray(op.x.val, np.float32)
    return x / (1.0 + np.exp(-x))


def _gelu(op: Any) -> np.ndarray:
    x = np.asarray(op.x.val, np.float32)
    mode = op.mode.val if op.mode is not None else "EXACT"
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    return 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2))))


def _erf_op(op: Any) -> np.ndarray:
    return _erf(np.asarray(op.x.val))


def _select(op: Any) -> np.ndarray:
    # coremltools' version types the result from `a` and `b` only, so a
    # tensor `cond` with scalar branches comes back as a "scalar".
    return np.where(np.asarray(op.cond.val), np.asarray(op.a.val), np.asarray(op.b.val))


def _gather_nd(op: Any) -> np.ndarray:
    x, idx = np.asarray(op.x.val), np.asarray(op.indices.val).astype(np.int64)
    batch = getattr(op, "batch_dims", None)
    batch_dims = int(batch.val) if batch is not None else 0
    if batch_dims:
        lead = x.shape[:batch_dims]
        flat_x = x.reshape((-1,) + x.shape[batch_dims:])
        flat_i = idx.reshape((-1,) + idx.shape[batch_dims:])
        out = [flat_x[b][tuple(np.moveaxis(flat_i[b], -1, 0))] for b in range(flat_x.shape[0])]
        return np.stack(out).reshape(lead + out[0].shape)
    return x[tuple(np.moveaxis(idx, -1, 0))]


def _one_hot(op: Any) -> np.ndarray:
    idx = np.asarray(op.indices.val).astype(np.int64)
    depth = int(op.one_hot_vector_size.val)
    axis = int(op.axis.val) if op.axis is not None else -1
    on = op.on_value.val if op.on_value is not None else 1
    off = op.off_value.val if op.off_value is not None else 0
    hot = np.arange(depth) == idx[..., None]
    out = np.where(hot, on, off)
    return np.moveaxis(out, -1, axis if axis >= 0 else out.ndim + axis)


def _reshape_like(op: Any) -> np.ndarray:
    x = np.asarray(op.x.val)
    shape = []
    # begins, ends and end_masks are tuples of scalar vars, one per ref tensor.
    for ref, begin, end, mask in zip(op.ref_tensors, op.begins, op.ends, op.end_masks):
        dims = np.asarray(ref.val).shape
        shape.extend(dims[int(begin.val):] if bool(mask.val) else dims[int(begin.val):int(end.val)])
    return x.reshape(shape)


def _norm_affine(op: Any, x: np.ndarray, axes: tuple[int, ...], mean: Any, var: Any) -> np.ndarray:
    out = (x - mean) / np.sqrt(var + np.float32(op.epsilon.val if op.epsilon is not None else 1e-5))
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    if op.gamma is not None:
        out = out * np.asarray(op.gamma.val, np.float32).reshape(shape)
    if op.beta is not None:
        out = out + np.asarray(op.beta.val, np.float32).reshape(shape)
    return out


def _batch_norm(op: Any) -> np.ndarray:
    x = np.asarray(op.x.val, np.float32)
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    mean = np.asarray(op.mean.val, np.float32).reshape(shape)
    var = np.asarray(op.variance.val, np.float32).reshape(shape)
    return _norm_affine(op, x, (), mean, var)


def _instance_norm(op: Any) -> np.ndarray:
    x = np.asarray(op.x.val, np.float32)
    axes = tuple(range(2, x.ndim))
    return _norm_affine(op, x, axes, x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True))


KERNELS: dict[str, Callable[[Any], Any]] = {
    "silu": _silu,
    "gelu": _gelu,
    "erf": _erf_op,
    "gather_nd": _gather_nd,
    "select": _select,
    "one_hot": _one_hot,
    "reshape_like": _reshape_like,
    "batch_norm": _batch_norm,
    "instance_norm": _instance_norm,
}

# Ops evaluated through coremltools' value_inference(), each covered by a test.
_VALUE_INFERENCE_OPS = (
    # elementwise arithmetic and comparison
    "add", "sub", "mul", "real_div", "floor_div", "mod", "pow", "maximum", "minimum",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_not", "logical_xor",
    # elementwise unary
    "abs", "exp", "exp2", "log", "sqrt", "rsqrt", "inverse", "square", "sign", "floor", "ceil",
    "round", "clip", "tanh", "sin", "cos", "sigmoid", "relu", "leaky_relu", "softplus",
    "cast", "identity",
    # linear algebra and normalisation
    "matmul", "linear", "einsum", "softmax", "layer_norm", "l2_norm",
    "scaled_dot_product_attention",
    # reductions
    "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_argmax",
    "reduce_argmin", "reduce_l2_norm", "reduce_log_sum_exp", "cumsum", "topk",
    # shape and indexing
    "reshape", "transpose", "expand_dims", "squeeze", "concat", "stack", "split", "tile", "pad",
    "slice_by_index", "slice_by_size", "gather", "gather_along_axis", "fill", "fill_like",
    "shape", "range_1d", "band_part", "flatten2d", "reverse", "argsort", "non_zero",
)

SUPPORTED_OPS: dict[str, Source] = {
    "const": Source.CONST,
    **{name: Source.VALUE_INFERENCE for name in _VALUE_INFERENCE_OPS},
    **{name: Source.NUMPY for name in KERNELS},
}


def unsupported(op_types: set[str] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The op types among `op_types` the interpreter cannot evaluate, sorted."""
    return tuple(sorted(t for t in set(op_types) if t not in SUPPORTED_OPS))
