"""Which MIL ops the interpreter evaluates, and numpy kernels for those that
coremltools cannot evaluate itself.

Most MIL op classes carry a `value_inference()` the converter uses for
constant folding; the interpreter calls it. A few ops a transformer needs lack
one (`silu`, `gather_nd`, ...), and a few have one that is exact but far too
slow for real tensors (`erf` and exact `gelu` call `math.erf` per element):
those get a kernel here. Every entry of `SUPPORTED_OPS` is tested against a
numpy or PyTorch reference (tests/pipeline/runtimes/test_mil_ops.py); an op
outside the table makes the program not evaluable rather than guessed at.

A kernel takes the op's input values by input name (`a["x"]`; optional
inputs that are absent are missing) and returns the output value, computed in
float32 whatever the declared dtype: the interpreter rounds to fp16 storage.
`mil_fast` adds kernels for the hot ops that do have a `value_inference()`.
Compressed weights (`constexpr_*`, see `mil_constexpr`) are expanded once at
load; `read_state` and `coreml_update_state` read and write the run's state
(`mil_state`); `slice_update`, the write into a KV cache, is a kernel here.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Callable

import numpy as np
import torch

from pipeline.runtimes import mil_ops_vision
from pipeline.runtimes.mil_constexpr import CONSTEXPR_OPS


class Source(str, enum.Enum):
    """Where an op's evaluation comes from."""

    VALUE_INFERENCE = "value_inference"  # coremltools' own op.value_inference()
    NUMPY = "numpy"  # a kernel in this module
    CONST = "const"  # materialised once at load
    CONSTEXPR = "constexpr"  # a compressed weight, expanded once at load (mil_constexpr)
    STATE = "state"  # reads or writes the session's state (mil_state)


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


def _silu(a: dict) -> np.ndarray:
    x = np.asarray(a["x"], np.float32)
    return x / (1.0 + np.exp(-x))


def _gelu(a: dict) -> np.ndarray:
    x = np.asarray(a["x"], np.float32)
    mode = a.get("mode", "EXACT")
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    return 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2))))


def _select(a: dict) -> np.ndarray:
    # coremltools' version types the result from `a` and `b` only, so a
    # tensor `cond` with scalar branches comes back as a "scalar".
    return np.where(np.asarray(a["cond"]), np.asarray(a["a"]), np.asarray(a["b"]))


def _gather_nd(a: dict) -> np.ndarray:
    x, idx = np.asarray(a["x"]), np.asarray(a["indices"]).astype(np.int64)
    batch_dims = int(a.get("batch_dims", 0))
    if batch_dims:
        lead = x.shape[:batch_dims]
        flat_x = x.reshape((-1,) + x.shape[batch_dims:])
        flat_i = idx.reshape((-1,) + idx.shape[batch_dims:])
        out = [flat_x[b][tuple(np.moveaxis(flat_i[b], -1, 0))] for b in range(flat_x.shape[0])]
        return np.stack(out).reshape(lead + out[0].shape)
    return x[tuple(np.moveaxis(idx, -1, 0))]


def _one_hot(a: dict) -> np.ndarray:
    idx = np.asarray(a["indices"]).astype(np.int64)
    depth = int(a["one_hot_vector_size"])
    axis = int(a.get("axis", -1))
    hot = np.arange(depth) == idx[..., None]
    out = np.where(hot, a.get("on_value", 1), a.get("off_value", 0))
    return np.moveaxis(out, -1, axis if axis >= 0 else out.ndim + axis)


def _reshape_like(a: dict) -> np.ndarray:
    shape: list[int] = []
    # begins, ends and end_masks are tuples of scalars, one per ref tensor.
    for ref, begin, end, mask in zip(a["ref_tensors"], a["begins"], a["ends"], a["end_masks"]):
        dims = np.shape(ref)
        shape.extend(dims[int(begin):] if bool(mask) else dims[int(begin):int(end)])
    return np.asarray(a["x"]).reshape(shape)


def _channel(a: dict, key: str, ndim: int, channels: int) -> np.ndarray | None:
    if a.get(key) is None:
        return None
    shape = [1] * ndim
    shape[1] = channels
    return np.asarray(a[key], np.float32).reshape(shape)


def _normalise(a: dict, x: np.ndarray, mean: Any, var: Any) -> np.ndarray:
    out = (x - mean) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5)))
    gamma, beta = _channel(a, "gamma", x.ndim, x.shape[1]), _channel(a, "beta", x.ndim, x.shape[1])
    out = out * gamma if gamma is not None else out
    return out + beta if beta is not None else out


def _batch_norm(a: dict) -> np.ndarray:
    x = np.asarray(a["x"], np.float32)
    return _normalise(a, x, _channel(a, "mean", x.ndim, x.shape[1]), _channel(a, "variance", x.ndim, x.shape[1]))


def _instance_norm(a: dict) -> np.ndarray:
    x = np.asarray(a["x"], np.float32)
    axes = tuple(range(2, x.ndim))
    return _normalise(a, x, x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True))


def _slice_update(a: dict) -> np.ndarray:
    """x with x[begin:end:stride] (masks as in slice_by_index) replaced by `update`."""
    x = np.array(a["x"])  # a copy: the op is functional, its input stays as it was
    n = x.ndim
    begin, end = np.atleast_1d(a["begin"]), np.atleast_1d(a["end"])
    stride = np.atleast_1d(a["stride"]) if a.get("stride") is not None else np.ones(n, np.int64)
    flags = {key: np.atleast_1d(a[key]) if a.get(key) is not None else np.zeros(n, bool)
             for key in ("begin_mask", "end_mask", "squeeze_mask")}
    index = tuple(int(begin[i]) if flags["squeeze_mask"][i] else
                  slice(None if flags["begin_mask"][i] else int(begin[i]),
                        None if flags["end_mask"][i] else int(end[i]), int(stride[i]))
                  for i in range(n))
    target = x[index]
    update = np.asarray(a["update"])
    if update.size != np.size(target):
        raise ValueError(f"slice_update: an update of shape {list(update.shape)} for a slice of "
                         f"shape {list(np.shape(target))}")
    x[index] = update.reshape(np.shape(target))
    return x


NUMPY_KERNELS: dict[str, Callable[[dict], Any]] = {
    "silu": _silu,
    "gelu": _gelu,
    "erf": lambda a: _erf(np.asarray(a["x"])),
    "select": _select,
    "gather_nd": _gather_nd,
    "one_hot": _one_hot,
    "reshape_like": _reshape_like,
    "batch_norm": _batch_norm,
    "instance_norm": _instance_norm,
    "slice_update": _slice_update,
}
NUMPY_KERNELS.update(mil_ops_vision.KERNELS)  # conv, pooling, upsampling and resizing

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
    **{name: Source.CONSTEXPR for name in CONSTEXPR_OPS},
    "read_state": Source.STATE,
    "coreml_update_state": Source.STATE,
    **{name: Source.VALUE_INFERENCE for name in _VALUE_INFERENCE_OPS},
    **{name: Source.NUMPY for name in NUMPY_KERNELS},
}


def unsupported(op_types: set[str] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The op types among `op_types` the interpreter cannot evaluate, sorted."""
    return tuple(sorted(t for t in set(op_types) if t not in SUPPORTED_OPS))
