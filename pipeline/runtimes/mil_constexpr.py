"""Compressed weights: the `constexpr_*` ops of iOS16 and iOS18, materialised once.

`coremltools.optimize.coreml` stores a compressed weight as a small chain of
`constexpr_*` ops over packed constants; Core ML expands them when it loads
the model. The interpreter does the same: `materialise(op_type, args)`
turns one op's constant inputs into its dense output(s), in program order,
once per loaded package, so a compressed program runs at the speed of a plain
one. The semantics follow the MIL op definitions:

- iOS16 (opset 7): `constexpr_affine_dequantize` (scale * (q - zero_point),
  scale and zero point scalars or vectors along `axis`), `constexpr_cast`
  (fp16 -> fp32), `constexpr_lut_to_dense` (indices bit-packed LSB first in
  bytes, one flat LUT, an explicit `shape`), `constexpr_sparse_to_dense`
  (a bit-packed mask, LSB first, and the non-zero values in row-major order);
- iOS18 (opset 9): `constexpr_blockwise_shift_scale` (scale * (data - offset)
  with the block size per axis implied by data.shape / scale.shape),
  `constexpr_lut_to_dense` (unpacked indices, one LUT per block of the
  leading axes, optional vector palettization along `vector_axis`),
  `constexpr_sparse_to_dense` (a uint1 mask shaped like the output),
  `constexpr_lut_to_sparse` and `constexpr_sparse_blockwise_shift_scale`
  (the sparse-to-sparse halves of joint compression; two outputs each: the
  mask and the values), and `constexpr_cast`.

Sub-byte types (int4, uint1..uint6) arrive from coremltools' loader already
unpacked, one element per numpy byte. The same op name has different inputs
in the two opsets; the iOS16 form is the one with a `shape` input.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np


def _unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """`count` unsigned nbits-wide values packed LSB first into bytes (iOS16 layout)."""
    bits = np.unpackbits(np.asarray(packed).astype(np.uint8).ravel(), bitorder="little")
    if bits.size < count * nbits:
        raise ValueError(f"{bits.size} packed bits cannot hold {count} values of {nbits} bits")
    weights = (1 << np.arange(nbits)).astype(np.int64)
    return bits[:count * nbits].reshape(count, nbits).astype(np.int64) @ weights


def _along(param: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A scalar or vector parameter shaped to broadcast along `axis` of a rank-`rank` tensor."""
    param = np.asarray(param, np.float32)
    if param.ndim == 0:
        return param
    shape = [1] * rank
    shape[axis % rank] = param.size
    return param.reshape(shape)


def affine_dequantize(a: dict) -> np.ndarray:
    """iOS16: scale * (quantized_data - zero_point) along `axis`."""
    q = np.asarray(a["quantized_data"])
    axis = int(a["axis"])
    zero = _along(a["zero_point"], q.ndim, axis)
    return _along(a["scale"], q.ndim, axis) * (q.astype(np.float32) - zero)


def _cast(a: dict) -> np.ndarray:
    if str(a["output_dtype"]) != "fp32":
        raise ValueError(f"constexpr_cast to {a['output_dtype']!r}: only fp32 exists")
    return np.asarray(a["source_val"], np.float32)


def _lut_to_dense_ios16(a: dict) -> np.ndarray:
    lut = np.asarray(a["lut"]).ravel()
    nbits = int(round(math.log2(lut.size)))
    shape = tuple(int(d) for d in np.atleast_1d(a["shape"]))
    indices = _unpack_bits(a["indices"], nbits, int(np.prod(shape)))
    return lut[indices].reshape(shape)


def _sparse_to_dense_ios16(a: dict) -> np.ndarray:
    shape = tuple(int(d) for d in np.atleast_1d(a["shape"]))
    count = int(np.prod(shape))
    mask: np.ndarray = _unpack_bits(a["mask"], 1, count).astype(bool)
    return _scatter(np.asarray(a["nonzero_data"]), mask.reshape(shape))


def _scatter(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A dense tensor shaped like `mask`: `values` in row-major order where it is set."""
    mask = np.asarray(mask) != 0
    values = np.asarray(values).ravel()
    if int(mask.sum()) != values.size:
        raise ValueError(f"the mask sets {int(mask.sum())} elements but {values.size} values are stored")
    dense = np.zeros(mask.shape, values.dtype)
    dense[mask] = values
    return dense


def _repeat_blocks(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`param` with each element repeated over its block so it has `shape`."""
    param = np.asarray(param)
    if param.ndim != len(shape):
        raise ValueError(f"a rank-{param.ndim} scale/offset for rank-{len(shape)} data")
    for axis, (size, blocks) in enumerate(zip(shape, param.shape)):
        if size % blocks:
            raise ValueError(f"axis {axis}: {size} elements do not split into {blocks} blocks")
        if size != blocks:
            param = np.repeat(param, size // blocks, axis=axis)
    return param


def blockwise_shift_scale(data: np.ndarray, scale: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """iOS18: scale * (data - offset), one scale (and offset) per block."""
    data = np.asarray(data).astype(np.float32)
    if offset is not None:
        data = data - _repeat_blocks(np.asarray(offset).astype(np.float32), data.shape)
    return _repeat_blocks(np.asarray(scale, np.float32), data.shape) * data


def lut_to_dense(indices: np.ndarray, lut: np.ndarray, vector_axis: Any = None) -> np.ndarray:
    """iOS18: every index looks up its own block's LUT; vectors fill along `vector_axis`."""
    indices = np.asarray(indices).astype(np.int64)
    lut = np.asarray(lut)
    rank = indices.ndim
    groups, (palettes, vector) = lut.shape[:rank], lut.shape[rank:]
    if lut.ndim != rank + 2:
        raise ValueError(f"a rank-{lut.ndim} LUT for rank-{rank} indices (needs rank + 2)")
    # flat group id of every element: sum over axes of (i // block) * stride
    group = np.zeros(indices.shape, np.int64)
    stride = 1
    for axis in reversed(range(rank)):
        size, count = indices.shape[axis], groups[axis]
        if size % count:
            raise ValueError(f"axis {axis}: {size} indices do not split into {count} LUT blocks")
        coord = (np.arange(size) // (size // count)).reshape([-1 if i == axis else 1 for i in range(rank)])
        group = group + coord * stride
        stride *= count
    if indices.size and (indices.min() < 0 or indices.max() >= palettes):
        raise ValueError(f"an index outside the LUT's {palettes} entries")
    values = lut.reshape(-1, palettes, vector)[group, indices]  # [*indices.shape, vector]
    if vector == 1:
        return values[..., 0]
    axis = int(vector_axis) % rank
    values = np.moveaxis(values, -1, axis + 1)  # [..., D_axis, vector, ...]
    shape = list(indices.shape)
    shape[axis] *= vector
    return values.reshape(shape)


def _lut_to_dense_ios18(a: dict) -> np.ndarray:
    return lut_to_dense(a["indices"], a["lut"], a.get("vector_axis"))


def _vector_mask(mask: np.ndarray, lut: np.ndarray, vector_axis: Any) -> np.ndarray:
    vector = np.asarray(lut).shape[-1]
    return np.repeat(mask, vector, axis=int(vector_axis)) if vector > 1 else mask


def _lut_to_sparse(a: dict) -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(a["indices_mask"])
    dense = lut_to_dense(_scatter(a["indices_nonzero_data"], mask), a["lut"], a.get("vector_axis"))
    out_mask = _vector_mask(mask, a["lut"], a.get("vector_axis"))
    return out_mask, dense[out_mask != 0]


def _sparse_blockwise_shift_scale(a: dict) -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(a["data_mask"])
    dense = blockwise_shift_scale(_scatter(a["nonzero_data"], mask), a["scale"], a.get("offset"))
    return mask, dense[mask != 0]


# op type -> (iOS16 kernel or None, iOS18 kernel or None)
_KERNELS: dict[str, tuple[Callable[[dict], Any] | None, Callable[[dict], Any] | None]] = {
    "constexpr_affine_dequantize": (affine_dequantize, None),
    "constexpr_cast": (_cast, _cast),
    "constexpr_lut_to_dense": (_lut_to_dense_ios16, _lut_to_dense_ios18),
    "constexpr_sparse_to_dense": (_sparse_to_dense_ios16, lambda a: _scatter(a["nonzero_data"], a["mask"])),
    "constexpr_blockwise_shift_scale": (
        None, lambda a: blockwise_shift_scale(a["data"], a["scale"], a.get("offset"))),
    "constexpr_lut_to_sparse": (None, _lut_to_sparse),
    "constexpr_sparse_blockwise_shift_scale": (None, _sparse_blockwise_shift_scale),
}
CONSTEXPR_OPS = tuple(_KERNELS)


def materialise(op_type: str, args: dict) -> Any:
    """The dense value (or the two outputs) of one constexpr op from its constant inputs.

    Where an op exists in both opsets, the iOS16 form is the one with a `shape` input."""
    ios16, ios18 = _KERNELS[op_type]
    kernel = ios16 if "shape" in args or ios18 is None else ios18
    return kernel(args)  # type: ignore[misc]
