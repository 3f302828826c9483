"""Fast numpy kernels for the ops that dominate transformer programs.

Going through coremltools' `value_inference()` costs a type inference, a
precondition check and value wrapping per op, and its `linear` multiplies by
a transposed weight view, which BLAS handles badly. Matrix products go
through torch's CPU kernels (float32, on numpy buffers without copies), the
same ones the eager reference uses. The kernels here read
input *values* directly (`a["x"]`), so ops that have one need neither their
vars nor their types touched, which also makes dynamic-shape programs free
of re-typing on the fast path.

A kernel is `f(a, memo) -> value | tuple`: `a` maps the op's input names to
values (tuples for tuple inputs; absent optional inputs are missing), `memo`
is per-op storage that lives as long as the loaded program (e.g. a
contiguous transposed weight). Returning `SLOW` hands the op back to
`value_inference()` for a case the kernel does not cover.

`INTO[op](a, memo, name)` is the same kernel writing its result over input
`name`, which the interpreter hands over only when nothing else can see that
array (its last reader is this op, no const, program input or live view shares
its memory). Same ufuncs, same dtype: bit-equal results, without a second
array of the largest activations (a T=2048 attention's scores). It returns
`SLOW` where the result would not fit in that input (broadcasting, dtype).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from pipeline.runtimes.mil_ops import NUMPY_KERNELS

SLOW = object()
_CAST = {"fp32": np.float32, "fp16": np.float32, "fp64": np.float32, "int32": np.int32, "int64": np.int32,
         "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16, "bool": np.bool_}


def _axes(a: dict, key: str = "axes") -> tuple[int, ...] | None:
    axes = a.get(key)
    return None if axes is None else tuple(int(v) for v in np.atleast_1d(axes))


def _linear(a: dict, memo: dict) -> Any:
    weight = a["weight"]
    if memo.get("key") is not weight:  # weights are consts: wrap once (no copy)
        memo["key"], memo["w"] = weight, _wrapped(weight)
        bias = a.get("bias")
        memo["b"] = _wrapped(bias) if bias is not None else None
    x = torch.from_numpy(np.ascontiguousarray(a["x"], np.float32))
    # a float16 weight is widened for this call only: the program holds it at half the bytes
    w, b = (t.float() if t is not None and t.dtype == torch.float16 else t for t in (memo["w"], memo["b"]))
    return torch.nn.functional.linear(x, w, b).numpy()


def _wrapped(value: Any) -> torch.Tensor:
    """A const as a tensor sharing its memory; float16 stays float16, anything else float32."""
    array = np.asarray(value)
    return torch.from_numpy(np.ascontiguousarray(array, np.float16 if array.dtype == np.float16 else np.float32))


def _matmul(a: dict, memo: dict) -> Any:
    x, y = torch.from_numpy(np.ascontiguousarray(a["x"])), torch.from_numpy(np.ascontiguousarray(a["y"]))
    if a.get("transpose_x"):
        x = x.transpose(-1, -2)
    if a.get("transpose_y"):
        y = y.transpose(-1, -2)
    if x.dtype != y.dtype:  # numpy-style promotion (int32 @ float32)
        x, y = x.float(), y.float()
    return torch.matmul(x, y).numpy()


def _softmax(a: dict, memo: dict) -> Any:
    x = a["x"]
    axis = int(a.get("axis", -1))
    e = np.subtract(x, x.max(axis=axis, keepdims=True))  # one array, worked on in place: at T=2048
    np.exp(e, out=e)  # the scores of every head are the largest activation there is
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax_into(a: dict, memo: dict, name: str) -> Any:
    x = a["x"]
    if name != "x" or x.dtype != np.float32:
        return SLOW
    axis = int(a.get("axis", -1))
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x


def _binary_into(fn: Callable) -> Callable:
    def kernel(a: dict, memo: dict, name: str) -> Any:
        target, other = a[name], a["y" if name == "x" else "x"]
        if (target.dtype != np.float32 or not isinstance(other, (np.ndarray, np.generic))
                or other.dtype != target.dtype  # float32 with float32: the result is float32 too
                or np.broadcast_shapes(target.shape, np.shape(other)) != target.shape):
            return SLOW
        return fn(a["x"], a["y"], out=target)
    return kernel


def _reduce(fn: Callable) -> Callable:
    def kernel(a: dict, memo: dict) -> Any:
        return fn(a["x"], axis=_axes(a), keepdims=bool(a.get("keep_dims", False)))
    return kernel


def _reshape(a: dict, memo: dict) -> Any:
    shape = [int(v) for v in np.atleast_1d(a["shape"])]
    return SLOW if 0 in shape else a["x"].reshape(shape)


def _slice_by_index(a: dict, memo: dict) -> Any:
    x = a["x"]
    n = x.ndim
    begin, end = np.atleast_1d(a["begin"]), np.atleast_1d(a["end"])
    stride = np.atleast_1d(a.get("stride", np.ones(n, np.int32)))
    bmask = np.atleast_1d(a.get("begin_mask", np.zeros(n, bool)))
    emask = np.atleast_1d(a.get("end_mask", np.zeros(n, bool)))
    smask = np.atleast_1d(a.get("squeeze_mask", np.zeros(n, bool)))
    # A squeezed axis takes the single element at `begin`, whatever `end` says.
    index = tuple(int(begin[i]) if smask[i] else
                  slice(None if bmask[i] else int(begin[i]), None if emask[i] else int(end[i]), int(stride[i]))
                  for i in range(n))
    return np.asarray(x[index])


def _slice_by_size(a: dict, memo: dict) -> Any:
    index = tuple(slice(int(b), None if int(s) == -1 else int(b) + int(s))
                  for b, s in zip(np.atleast_1d(a["begin"]), np.atleast_1d(a["size"])))
    return a["x"][index]


def _gather(a: dict, memo: dict) -> Any:
    if int(a.get("batch_dims", 0)):
        return SLOW
    return np.take(a["x"], np.asarray(a["indices"]).astype(np.int64), axis=int(a.get("axis", 0)))


def _concat(a: dict, memo: dict) -> Any:
    if a.get("interleave"):
        return SLOW
    return np.concatenate([np.atleast_1d(v) for v in a["values"]], axis=int(a["axis"]))  # scalars stack


def _split(a: dict, memo: dict) -> Any:
    x, axis = a["x"], int(a["axis"])
    if a.get("split_sizes") is not None:
        cuts = np.cumsum(np.atleast_1d(a["split_sizes"]))[:-1]
        return tuple(np.split(x, cuts, axis=axis))
    return tuple(np.split(x, int(a["num_splits"]), axis=axis))


def _layer_norm(a: dict, memo: dict) -> Any:
    x = a["x"]
    axes = _axes(a) or (-1,)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5)))
    if a.get("gamma") is not None:
        out = out * a["gamma"]
    if a.get("beta") is not None:
        out = out + a["beta"]
    return out


def _squeeze(a: dict, memo: dict) -> Any:
    axes = _axes(a)
    return np.squeeze(a["x"], axis=axes) if axes else np.squeeze(a["x"])


def _binary(fn: Callable) -> Callable:
    return lambda a, memo: fn(a["x"], a["y"])


def _unary(fn: Callable) -> Callable:
    return lambda a, memo: fn(a["x"])


FAST: dict[str, Callable[[dict, dict], Any]] = {
    "add": _binary(np.add), "sub": _binary(np.subtract), "mul": _binary(np.multiply),
    "real_div": _binary(np.divide), "pow": _binary(np.power), "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum), "equal": _binary(np.equal), "not_equal": _binary(np.not_equal),
    "less": _binary(np.less), "less_equal": _binary(np.less_equal), "greater": _binary(np.greater),
    "greater_equal": _binary(np.greater_equal), "logical_and": _binary(np.logical_and),
    "logical_or": _binary(np.logical_or), "logical_not": _unary(np.logical_not),
    "abs": _unary(np.abs), "exp": _unary(np.exp), "log": _unary(np.log), "sqrt": _unary(np.sqrt),
    "tanh": _unary(np.tanh), "sin": _unary(np.sin), "cos": _unary(np.cos), "square": _unary(np.square),
    "relu": _unary(lambda x: np.maximum(x, 0)), "identity": _unary(lambda x: x),
    "sigmoid": _unary(lambda x: 1 / (1 + np.exp(-x))),
    "rsqrt": lambda a, memo: 1 / np.sqrt(a["x"] + np.float32(a.get("epsilon", 1e-12))),
    "select": lambda a, memo: np.where(a["cond"], a["a"], a["b"]),
    "cast": lambda a, memo: np.asarray(a["x"]).astype(_CAST[str(a["dtype"])]),
    "linear": _linear, "matmul": _matmul, "softmax": _softmax, "layer_norm": _layer_norm,
    "reduce_mean": _reduce(np.mean), "reduce_sum": _reduce(np.sum), "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    "reshape": _reshape, "transpose": lambda a, memo: np.transpose(a["x"], [int(p) for p in a["perm"]]),
    "expand_dims": lambda a, memo: np.expand_dims(a["x"], _axes(a)), "squeeze": _squeeze,
    "concat": _concat, "split": _split, "slice_by_index": _slice_by_index, "slice_by_size": _slice_by_size,
    "gather": _gather, "gather_along_axis": lambda a, memo: np.take_along_axis(
        a["x"], np.asarray(a["indices"]).astype(np.int64), axis=int(a.get("axis", 0))),
    "shape": lambda a, memo: np.array(np.shape(a["x"]), np.int32),
    "fill": lambda a, memo: np.full([int(v) for v in np.atleast_1d(a["shape"])], a.get("value", 0.0)),
    "fill_like": lambda a, memo: np.full(np.shape(a["ref_tensor"]), a.get("value", 0.0)),
    "tile": lambda a, memo: np.tile(a["x"], [int(r) for r in a["reps"]]),
    "range_1d": lambda a, memo: np.arange(a["start"], a["end"], a["step"]),
    **{name: (lambda fn: lambda a, memo: fn(a))(fn) for name, fn in NUMPY_KERNELS.items()},
}

INTO: dict[str, Callable[[dict, dict, str], Any]] = {
    "add": _binary_into(np.add), "sub": _binary_into(np.subtract), "mul": _binary_into(np.multiply),
    "real_div": _binary_into(np.divide), "maximum": _binary_into(np.maximum),
    "minimum": _binary_into(np.minimum), "softmax": _softmax_into,
}
DONATABLE: dict[str, tuple[str, ...]] = {op: ("x",) if op == "softmax" else ("x", "y") for op in INTO}

# Inputs a kernel takes as float16 consts without widening them first: `linear` widens its
# weight per call itself, `gather` picks rows (an embedding table) before they are widened.
HALF_NATIVE: dict[str, tuple[str, ...]] = {"linear": ("weight", "bias"), "gather": ("x",)}
