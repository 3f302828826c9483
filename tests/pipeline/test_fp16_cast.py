"""The lean fp16 cast pass answers as coremltools' own and converts to the same package."""

from __future__ import annotations

from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision

from pipeline import fp16_cast
from pipeline.fp16_cast import PASS, add_fp16_cast, fp16_pipeline, overflows_fp16
from pipeline.to_coreml import convert_program

VALUES = {
    "in range": np.linspace(-65504, 65504, 50, dtype=np.float32).reshape(5, 10),
    "one beyond fp16": np.r_[np.zeros(40), 70000.0].astype(np.float32),
    "negative beyond": np.r_[np.zeros(17), -1e6].astype(np.float32).reshape(2, 9),
    "infinities only": np.array([np.inf, -np.inf, -1e39, 3.0e38, 1.0], np.float32),
    "nan": np.array([np.nan, 1.0, 2.0], np.float32),
    "nan and beyond": np.array([np.nan, 1e5], np.float32),
    "scalar beyond": np.float32(1e5),
    "scalar in range": np.float32(-3.5),
    "just below infinite": np.array([9.9e37], np.float32),
}


def _add_op(value):
    """An `add` op reading `value` as an fp32 const, in a small MIL program."""
    shape = np.shape(value) or (1,)

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)])
    def program(x):
        return mb.add(x=x, y=value)

    return next(op for op in program.functions["main"].operations if op.op_type == "add")


@pytest.mark.parametrize("name", sorted(VALUES))
def test_overflow_check_answers_as_coremltools(monkeypatch, name):
    monkeypatch.setattr(fp16_cast, "PIECE", 7)  # several pieces per array
    op = _add_op(VALUES[name])
    assert add_fp16_cast.fp16_overflow(op) is FP16ComputePrecision.fp16_overflow(op)
    assert overflows_fp16(VALUES[name]) is FP16ComputePrecision.fp16_overflow(op)


def test_the_pass_replaces_coremltools_own_in_its_place():
    default = list(ct.PassPipeline.DEFAULT.passes)
    ours = list(fp16_pipeline(ct.PassPipeline.DEFAULT).passes)
    at = default.index(fp16_cast.COREMLTOOLS_PASS)
    assert ours[at] == PASS and ours[:at] + ours[at + 1:] == default[:at] + default[at + 1:]


class _Scaled(torch.nn.Module):
    """Weights in fp16 range, one const beyond it (that op stays fp32) and a -inf mask (cast)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(16, 16)
        self.register_buffer("mask", torch.tensor([0.0] * 15 + [float("-inf")]))
        self.register_buffer("big", torch.full((16,), 1e5))

    def forward(self, x):
        return torch.softmax(self.linear(x) + self.mask, -1) * self.big


def _files(package: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in package.rglob("*") if p.name in ("model.mlmodel", "weight.bin")}


def test_converted_package_is_byte_identical_to_coremltools_own(tmp_path, monkeypatch):
    torch.manual_seed(0)
    program = torch.export.export(_Scaled().eval(), (torch.randn(2, 16),)).run_decompositions({})
    inputs, outputs = [ct.TensorType(name="x", shape=(2, 16))], [ct.TensorType(name="y")]
    ours = convert_program(program, inputs, outputs, "fp16", "iOS18", tmp_path / "ours.mlpackage", "test")
    theirs = ct.convert(program, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                        minimum_deployment_target=ct.target.iOS18, compute_precision=ct.precision.FLOAT16,
                        skip_model_load=True)
    theirs.save(str(tmp_path / "theirs.mlpackage"))
    mine, reference = _files(ours), _files(tmp_path / "theirs.mlpackage")
    assert set(mine) == {"model.mlmodel", "weight.bin"}
    assert mine == reference
    # the comparison can tell: a check that never sees the 1e5 const gives another package
    monkeypatch.setattr(add_fp16_cast, "fp16_overflow", staticmethod(lambda op: False))
    blind = convert_program(program, inputs, outputs, "fp16", "iOS18", tmp_path / "blind.mlpackage", "test")
    assert _files(blind)["model.mlmodel"] != reference["model.mlmodel"]
