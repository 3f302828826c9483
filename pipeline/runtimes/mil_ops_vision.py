"""Kernels for the MIL ops of convolutional, vision and audio models.

coremltools gives none of these a `value_inference()`, so the interpreter
needs its own. Each kernel follows the MIL op's own definition (padding
types, `exclude_padding_from_average`, `align_corners` and
`half_pixel_centers`, the five sampling modes of `resize_bilinear`) rather
than PyTorch's, because a converted program is held to what Core ML
computes: a conversion that drops `align_corners` must show up as a
difference, not be papered over by a kernel that guesses PyTorch's intent.
Convolutions and pooling run through torch's CPU kernels on explicitly
padded inputs; interpolation is written out per axis in numpy. `cumsum`
(audio front ends) is here too: coremltools' own evaluation of it fails
whenever `exclusive` is set.

`KERNELS` maps op type -> kernel `f(a) -> value`, as in `mil_ops`; every
entry is tested against PyTorch in tests/pipeline/runtimes/test_mil_ops_vision.py.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _tensor(value: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value, np.float32))


def _ints(value: Any, n: int, default: int) -> list[int]:
    if value is None:
        return [default] * n
    return [int(v) for v in np.atleast_1d(value)]


def _pads(a: dict, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
          dilations: Sequence[int]) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis for MIL's pad_type: valid, same, same_lower, custom."""
    pad_type = str(a.get("pad_type", "valid"))
    if pad_type == "custom":
        flat = _ints(a.get("pad"), 2 * len(spatial), 0)
        return [(flat[2 * i], flat[2 * i + 1]) for i in range(len(spatial))]
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    pads = []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin = total // 2 if pad_type == "same" else total - total // 2  # same_lower: the extra one first
        pads.append((begin, total - begin))
    return pads


def _torch_pad(pads: Sequence[tuple[int, int]]) -> list[int]:
    """F.pad's order: the last axis first."""
    return [p for begin_end in reversed(pads) for p in begin_end]


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _conv(a: dict) -> np.ndarray:
    x, w = _tensor(a["x"]), _tensor(a["weight"])
    n = x.dim() - 2
    strides, dilations = _ints(a.get("strides"), n, 1), _ints(a.get("dilations"), n, 1)
    pads = _pads(a, x.shape[2:], w.shape[2:], strides, dilations)
    x = F.pad(x, _torch_pad(pads))
    bias = _tensor(a["bias"]) if a.get("bias") is not None else None
    return _CONV[n](x, w, bias, stride=strides, dilation=dilations, groups=int(a.get("groups", 1))).numpy()


def _conv_transpose(a: dict) -> np.ndarray:
    """The full transposed convolution, then MIL's begin/end padding cropped off (or the
    requested `output_shape` cut out of it, zero-filled past its end), then the bias."""
    x, w = _tensor(a["x"]), _tensor(a["weight"])
    n = x.dim() - 2
    strides, dilations = _ints(a.get("strides"), n, 1), _ints(a.get("dilations"), n, 1)
    full = _CONV_T[n](x, w, None, stride=strides, dilation=dilations, groups=int(a.get("groups", 1)))
    pad_type = str(a.get("pad_type", "valid"))
    if pad_type == "custom":
        flat = _ints(a.get("pad"), 2 * n, 0)
        pads = [(flat[2 * i], flat[2 * i + 1]) for i in range(n)]
    elif pad_type in ("same", "same_lower"):
        totals = [full.shape[2 + i] - x.shape[2 + i] * strides[i] for i in range(n)]
        pads = [(t // 2, t - t // 2) if pad_type == "same" else (t - t // 2, t // 2) for t in totals]
    else:
        pads = [(0, 0)] * n
    sizes = [full.shape[2 + i] - b - e for i, (b, e) in enumerate(pads)]
    if a.get("output_shape") is not None:
        sizes = [int(v) for v in np.atleast_1d(a["output_shape"])[-n:]]
    out = full
    for i, ((begin, _), size) in enumerate(zip(pads, sizes)):
        axis = 2 + i
        out = out.narrow(axis, begin, min(size, out.shape[axis] - begin))
        short = size - out.shape[axis]
        if short > 0:
            pad = [0, 0] * (out.dim() - axis - 1) + [0, short]
            out = F.pad(out, pad)
    if a.get("bias") is not None:
        out = out + _tensor(a["bias"]).reshape([1, -1] + [1] * n)
    return out.numpy()


_POOL_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_POOL_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _pool_setup(a: dict) -> tuple[torch.Tensor, list[int], list[int], list[tuple[int, int]], int]:
    x = _tensor(a["x"])
    n = x.dim() - 2
    kernel = _ints(a["kernel_sizes"], n, 1)
    strides = _ints(a.get("strides"), n, 1)
    return x, kernel, strides, _pads(a, x.shape[2:], kernel, strides, [1] * n), n


def _max_pool(a: dict) -> np.ndarray:
    x, kernel, strides, pads, n = _pool_setup(a)
    x = F.pad(x, _torch_pad(pads), value=-math.inf)
    return _POOL_MAX[n](x, kernel, strides, ceil_mode=bool(a.get("ceil_mode", False))).numpy()


def _window_sums(x: torch.Tensor, kernel: list[int], strides: list[int], n: int, ceil: bool) -> torch.Tensor:
    """Sum over each window; windows that run off the end in ceil mode sum what they cover."""
    # avg_pool's divisor is the same for a tensor and its mask, so sum/count cancels it.
    return _POOL_AVG[n](x, kernel, strides, ceil_mode=ceil, count_include_pad=True)


def _avg_pool(a: dict) -> np.ndarray:
    x, kernel, strides, pads, n = _pool_setup(a)
    ceil = bool(a.get("ceil_mode", False))
    exclude = bool(a.get("exclude_padding_from_average", False))
    padded = F.pad(x, _torch_pad(pads))
    mask = F.pad(torch.ones_like(x[:1, :1]), _torch_pad(pads), value=0.0 if exclude else 1.0)
    total = _window_sums(padded, kernel, strides, n, ceil)
    count = _window_sums(mask, kernel, strides, n, ceil)
    return (total / count).numpy()


def _l2_pool(a: dict) -> np.ndarray:
    x, kernel, strides, pads, n = _pool_setup(a)
    squares = F.pad(x * x, _torch_pad(pads))
    mean = _POOL_AVG[n](squares, kernel, strides, count_include_pad=True)
    return torch.sqrt(mean * float(np.prod(kernel))).numpy()


# -- interpolation, one axis at a time ---------------------------------------------

def _grid(size_in: int, size_out: int, mode: str) -> np.ndarray:
    """Source coordinates of each output position along one axis (MIL's sampling modes)."""
    i: np.ndarray = np.arange(size_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size_out == 1:
            grid = np.full(1, (size_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            grid = i * (size_in - 1) / (size_out - 1)
    elif mode == "DEFAULT":
        grid = i * ((size_in - size_in / size_out) / (size_out - 1)) if size_out > 1 else np.zeros(1)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, size_in - 1) / size_out
        grid = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        spacing = size_in / size_out
        grid = i * spacing + 0.5 * spacing - 0.5
    elif mode == "ASYMMETRIC":  # align_corners and half_pixel_centers both false
        grid = i * size_in / size_out
    else:
        raise ValueError(f"unknown sampling mode {mode!r}")
    return np.clip(grid, 0, size_in - 1)


def _lerp_axis(x: np.ndarray, axis: int, size_out: int, mode: str) -> np.ndarray:
    grid = _grid(x.shape[axis], size_out, mode)
    low = np.floor(grid).astype(np.int64)
    high = np.minimum(low + 1, x.shape[axis] - 1)
    shape = [1] * x.ndim
    shape[axis] = size_out
    weight = (grid - low).astype(np.float32).reshape(shape)
    return np.take(x, low, axis=axis) * (1 - weight) + np.take(x, high, axis=axis) * weight


def _nearest_axis(x: np.ndarray, axis: int, size_out: int, scale: float | None = None) -> np.ndarray:
    size_in = x.shape[axis]
    step = 1.0 / scale if scale else size_in / size_out
    index = np.minimum(np.floor(np.arange(size_out) * step).astype(np.int64), size_in - 1)
    return np.take(x, index, axis=axis)


def _bilinear(x: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return _lerp_axis(_lerp_axis(x, x.ndim - 2, height, mode), x.ndim - 1, width, mode)


def _scaled(size: int, scale: Any) -> int:
    return int(math.floor(size * float(scale) + 1e-6))  # 2.5000124 * 8 is 20, not 20.0001


def _upsample_bilinear(a: dict) -> np.ndarray:
    x = np.asarray(a["x"], np.float32)
    sh, sw = a.get("scale_factor_height", 1), a.get("scale_factor_width", 1)
    align = bool(a.get("align_corners", True))  # MIL's default, not PyTorch's
    half = a.get("half_pixel_centers")
    half = (not align) if half is None else bool(half)
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "ASYMMETRIC")
    return _bilinear(x, _scaled(x.shape[-2], sh), _scaled(x.shape[-1], sw), mode)


def _resize_bilinear(a: dict) -> np.ndarray:
    x = np.asarray(a["x"], np.float32)
    return _bilinear(x, int(a.get("target_size_height", 1)), int(a.get("target_size_width", 1)),
                     str(a.get("sampling_mode", "DEFAULT")))


def _upsample_nearest(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    sh, sw = float(a.get("scale_factor_height", 1)), float(a.get("scale_factor_width", 1))
    out = _nearest_axis(x, x.ndim - 2, _scaled(x.shape[-2], sh), sh)
    return _nearest_axis(out, x.ndim - 1, _scaled(x.shape[-1], sw), sw)


def _resize_nearest(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    out = _nearest_axis(x, x.ndim - 2, int(a["target_size_height"]))
    return _nearest_axis(out, x.ndim - 1, int(a["target_size_width"]))


def _resize(a: dict) -> np.ndarray:
    """iOS17 `resize`: the last `resized_dims` axes to `shape`'s last entries (0 keeps a size)."""
    x = np.asarray(a["x"])
    dims = int(a["resized_dims"])
    target = [int(v) for v in np.atleast_1d(a["shape"])][-dims:] if dims else []
    linear = str(a.get("interpolation_mode", "LINEAR")) == "LINEAR"
    mode = str(a.get("sampling_mode", "DEFAULT"))
    out = x.astype(np.float32) if linear else x
    for offset, size in enumerate(target):
        axis = x.ndim - dims + offset
        size = size or x.shape[axis]
        out = _lerp_axis(out, axis, size, mode) if linear else _nearest_axis(out, axis, size)
    return out


def _cumsum(a: dict) -> np.ndarray:
    """Running sums; coremltools' own value_inference fails on `exclusive`."""
    x = np.asarray(a["x"])
    axis = int(a.get("axis", 0))
    data = np.flip(x, axis) if a.get("reverse") else x
    out = np.cumsum(data, axis=axis, dtype=np.float32 if x.dtype.kind == "f" else x.dtype)
    if a.get("exclusive"):
        out = out - data
    return np.flip(out, axis) if a.get("reverse") else out


KERNELS: dict[str, Callable[[dict], Any]] = {
    "cumsum": _cumsum,
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "l2_pool": _l2_pool,
    "upsample_bilinear": _upsample_bilinear,
    "upsample_nearest_neighbor": _upsample_nearest,
    "resize_bilinear": _resize_bilinear,
    "resize_nearest_neighbor": _resize_nearest,
    "resize": _resize,
}
