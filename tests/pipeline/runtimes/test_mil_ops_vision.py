"""The vision and audio ops of the interpreter (`mil_ops_vision`) against PyTorch.

Each case builds a one-op MIL program the way the converter writes that op
and compares the interpreter's output with the PyTorch function the op came
from. `CASES` joins the support-table check of test_mil_ops.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

from pipeline.runtimes.mil_interpreter import MilInterpreter  # noqa: E402
from pipeline.runtimes.mil_ops_vision import KERNELS  # noqa: E402

RNG = np.random.default_rng(1)
X = RNG.standard_normal((2, 4, 9, 11)).astype(np.float32)
X1D = RNG.standard_normal((2, 4, 13)).astype(np.float32)
W = RNG.standard_normal((6, 2, 3, 3)).astype(np.float32)  # groups=2
W1D = RNG.standard_normal((5, 4, 3)).astype(np.float32)
WT = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)  # conv_transpose: [C_in, C_out, kH, kW]
BIAS6 = RNG.standard_normal(6).astype(np.float32)
BIAS3 = RNG.standard_normal(3).astype(np.float32)


def _t(x):
    return torch.from_numpy(np.asarray(x))


def _conv_custom(x):
    return mb.conv(x=x, weight=W, bias=BIAS6, strides=[2, 1], pad_type="custom", pad=[1, 2, 0, 1],
                   dilations=[1, 2], groups=2)


def _conv_custom_ref(x):
    padded = F.pad(_t(x), [0, 1, 1, 2])
    return F.conv2d(padded, _t(W), _t(BIAS6), stride=[2, 1], dilation=[1, 2], groups=2).numpy()


# name -> (op type, input, build(x) -> var, reference(x) -> array)
CASES = {
    "conv": ("conv", X, _conv_custom, _conv_custom_ref),
    "conv_same": ("conv", X, lambda x: mb.conv(x=x, weight=W, pad_type="same", groups=2),
                  lambda x: F.conv2d(_t(x), _t(W), padding="same", groups=2).numpy()),
    "conv_1d_valid": ("conv", X1D, lambda x: mb.conv(x=x, weight=W1D, strides=[2], pad_type="valid"),
                      lambda x: F.conv1d(_t(x), _t(W1D), stride=2).numpy()),
    "conv_transpose": ("conv_transpose", X, lambda x: mb.conv_transpose(
        x=x, weight=WT, bias=BIAS3, pad_type="custom", pad=[1, 1, 1, 1], output_shape=[2, 3, 18, 22],
        strides=[2, 2]), lambda x: F.conv_transpose2d(_t(x), _t(WT), _t(BIAS3), stride=2, padding=1,
                                                       output_padding=1).numpy()),
    "conv_transpose_valid": ("conv_transpose", X, lambda x: mb.conv_transpose(x=x, weight=WT, strides=[2, 2]),
                             lambda x: F.conv_transpose2d(_t(x), _t(WT), stride=2).numpy()),
    "max_pool": ("max_pool", X, lambda x: mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom",
                                                      pad=[1, 1, 1, 1], ceil_mode=True),
                 lambda x: F.max_pool2d(_t(x), 3, 2, padding=1, ceil_mode=True).numpy()),
    "avg_pool_exclude_padding": ("avg_pool", X, lambda x: mb.avg_pool(
        x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1],
        exclude_padding_from_average=True), lambda x: F.avg_pool2d(_t(x), 3, 2, padding=1,
                                                                   count_include_pad=False).numpy()),
    "avg_pool_include_padding": ("avg_pool", X, lambda x: mb.avg_pool(
        x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1],
        exclude_padding_from_average=False), lambda x: F.avg_pool2d(_t(x), 3, 2, padding=1,
                                                                    count_include_pad=True).numpy()),
    "avg_pool_1d_valid": ("avg_pool", X1D, lambda x: mb.avg_pool(x=x, kernel_sizes=[2], strides=[2],
                                                                 pad_type="valid"),
                          lambda x: F.avg_pool1d(_t(x), 2, 2).numpy()),
    "l2_pool": ("l2_pool", X, lambda x: mb.l2_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
                lambda x: F.lp_pool2d(_t(x), 2, 2, 2).numpy()),
    "upsample_bilinear_align_corners": ("upsample_bilinear", X, lambda x: mb.upsample_bilinear(
        x=x, scale_factor_height=2.0, scale_factor_width=3.0, align_corners=True),
        lambda x: F.interpolate(_t(x), scale_factor=(2, 3), mode="bilinear", align_corners=True).numpy()),
    "upsample_bilinear": ("upsample_bilinear", X, lambda x: mb.upsample_bilinear(
        x=x, scale_factor_height=2.0, scale_factor_width=3.0, align_corners=False),
        lambda x: F.interpolate(_t(x), scale_factor=(2, 3), mode="bilinear", align_corners=False).numpy()),
    "upsample_nearest_neighbor": ("upsample_nearest_neighbor", X, lambda x: mb.upsample_nearest_neighbor(
        x=x, scale_factor_height=2, scale_factor_width=3),
        lambda x: F.interpolate(_t(x), scale_factor=(2, 3), mode="nearest").numpy()),
    "resize_bilinear": ("resize_bilinear", X, lambda x: mb.resize_bilinear(
        x=x, target_size_height=14, target_size_width=5, sampling_mode="UNALIGN_CORNERS"),
        lambda x: F.interpolate(_t(x), size=(14, 5), mode="bilinear", align_corners=False).numpy()),
    "resize_bilinear_strict_align": ("resize_bilinear", X, lambda x: mb.resize_bilinear(
        x=x, target_size_height=14, target_size_width=5, sampling_mode="STRICT_ALIGN_CORNERS"),
        lambda x: F.interpolate(_t(x), size=(14, 5), mode="bilinear", align_corners=True).numpy()),
    "resize_nearest_neighbor": ("resize_nearest_neighbor", X, lambda x: mb.resize_nearest_neighbor(
        x=x, target_size_height=20, target_size_width=7),
        lambda x: F.interpolate(_t(x), size=(20, 7), mode="nearest").numpy()),
    "resize": ("resize", X, lambda x: mb.resize(x=x, shape=np.array([14, 5], np.int32),
                                                resized_dims=np.uint32(2), sampling_mode="UNALIGN_CORNERS"),
               lambda x: F.interpolate(_t(x), size=(14, 5), mode="bilinear", align_corners=False).numpy()),
    "resize_nearest_mode": ("resize", X, lambda x: mb.resize(x=x, shape=np.array([20, 7], np.int32),
                                                             resized_dims=np.uint32(2),
                                                             interpolation_mode="NEAREST_NEIGHBOR"),
                            lambda x: F.interpolate(_t(x), size=(20, 7), mode="nearest").numpy()),
    # ops coremltools evaluates itself, in the modes the vision models here use
    "pad_reflect": ("pad", X, lambda x: mb.pad(x=x, pad=[0, 0, 0, 0, 1, 2, 2, 1], mode="reflect"),
                    lambda x: F.pad(_t(x), [2, 1, 1, 2], mode="reflect").numpy()),
    "pad_replicate": ("pad", X, lambda x: mb.pad(x=x, pad=[0, 0, 0, 0, 1, 0, 0, 3], mode="replicate"),
                      lambda x: F.pad(_t(x), [0, 3, 1, 0], mode="replicate").numpy()),
    "cumsum_reverse_exclusive": ("cumsum", X, lambda x: mb.cumsum(x=x, axis=-1, reverse=True, exclusive=True),
                                 lambda x: (torch.flip(torch.cumsum(torch.flip(_t(x), [-1]), -1), [-1])
                                            - _t(x)).numpy()),
}


def _run(x: np.ndarray, build, opset=ct.target.iOS18) -> np.ndarray:
    prog = mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=opset)(lambda a: build(a))
    interp = MilInterpreter.from_function(prog.functions["main"])
    (name,) = prog.functions["main"].inputs
    (out,) = interp.run({name: x}).values()
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_vision_op_matches_pytorch(case):
    op_type, x, build, reference = CASES[case]
    prog = mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS18)(
        lambda a: build(a))
    assert op_type in {op.op_type for op in prog.functions["main"].operations}
    got, want = _run(x, build), reference(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_every_vision_kernel_has_a_case():
    assert set(KERNELS) <= {op for op, *_ in CASES.values()}


def test_upsample_bilinear_defaults_to_align_corners_as_mil_defines_it():
    """MIL's upsample_bilinear aligns corners unless told otherwise; PyTorch does not.
    A conversion that drops the flag must therefore differ from PyTorch."""
    got = _run(X, lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2.0, scale_factor_width=2.0))
    aligned = F.interpolate(_t(X), scale_factor=2, mode="bilinear", align_corners=True).numpy()
    unaligned = F.interpolate(_t(X), scale_factor=2, mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(got, aligned, rtol=1e-5, atol=1e-5)
    assert np.abs(got - unaligned).max() > 0.05


def test_upsample_bilinear_half_pixel_centers_off_samples_asymmetrically():
    got = _run(X, lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2.0, scale_factor_width=2.0,
                                                 align_corners=False, half_pixel_centers=False))
    want = F.interpolate(_t(X), scale_factor=2, mode="bilinear", align_corners=False).numpy()
    assert np.abs(got - want).max() > 0.01  # a different grid, not PyTorch's
    np.testing.assert_allclose(got[..., ::2, ::2], X, rtol=1e-6, atol=1e-6)  # even outputs sit on inputs


def test_fp16_conv_rounds_its_output_and_overflows_past_65504():
    big = np.full((1, 1, 4, 4), 300.0, np.float32)
    weight = np.full((1, 1, 3, 3), 30.0, np.float16)

    def build(x):
        h = mb.cast(x=x, dtype="fp16")
        return mb.cast(x=mb.conv(x=h, weight=weight, pad_type="valid"), dtype="fp32")

    out = _run(big, build)
    assert np.isinf(out).all()  # 9 * 300 * 30 = 81000 > 65504
