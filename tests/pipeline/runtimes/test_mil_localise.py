"""Naming the first MIL op that goes wrong, on small hand-built programs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

from pipeline.runtimes.mil_interpreter import MilInterpreter  # noqa: E402
from pipeline.runtimes.mil_localise import first_divergence, first_nonfinite, torch_activations  # noqa: E402


def _overflowing_program():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS18)
    def prog(x):
        h = mb.cast(x=mb.mul(x=x, y=300.0, name="scale"), dtype="fp16", name="to16")
        sq = mb.mul(x=h, y=h, name="square")  # 300^2 * x^2 > 65504
        mean = mb.reduce_mean(x=sq, axes=[-1], keep_dims=True, name="mean")
        return mb.cast(x=mb.real_div(x=h, y=mean, name="norm"), dtype="fp32", name="out")

    return MilInterpreter.from_function(prog.functions["main"])


def test_first_nonfinite_names_the_op_that_overflows_fp16():
    x = np.array([[1.0, 2.0, 0.5, 1.5]], np.float32)
    out, records = _overflowing_program().trace({"x": x})
    assert np.all(out["out"] == 0)  # x / inf: the damage reaches the output as zeros
    found = first_nonfinite(records, {"x": x})
    assert found is not None and found.kind == "inf" and found.op_name == "square"
    assert "65504" in found.detail


def test_first_nonfinite_is_none_for_a_finite_run():
    x = np.full((1, 4), 0.01, np.float32)
    _, records = _overflowing_program().trace({"x": x})
    assert first_nonfinite(records, {"x": x}) is None


def test_inf_flowing_in_from_an_input_is_not_a_new_finding():
    x = np.array([[np.inf, 1.0, 1.0, 1.0]], np.float32)
    _, records = _overflowing_program().trace({"x": x})
    found = first_nonfinite(records, {"x": x})
    assert found is None or found.kind == "nan"  # inf - inf style NaN may appear downstream


def test_first_divergence_matches_names_without_precision_suffixes():
    x = np.array([[0.01, 0.02, 0.03, 0.04]], np.float32)
    _, records = _overflowing_program().trace({"x": x})
    values = {n: v for r in records for n, v in zip(r.output_names, r.outputs)}
    reference = {"scale": values["scale"], "square": values["square"] * 1.5}
    found, matched = first_divergence(records, reference, rel_tol=1e-3)
    assert matched == 2 and found is not None and found.op_name == "square"
    assert first_divergence(records, {"scale": values["scale"]}, rel_tol=1e-3) == (None, 1)


def test_torch_activations_are_keyed_by_exported_node_names():
    class Net(torch.nn.Module):
        def forward(self, x):
            return torch.softmax(x * 2.0, dim=-1)

    acts = torch_activations(Net(), (torch.ones(1, 3),))
    assert "softmax" in acts and np.allclose(acts["softmax"], 1 / 3)


def test_a_renamed_output_is_never_matched_through_its_numbered_op_name():
    from pipeline.runtimes.mil_interpreter import OpRecord

    # the converter named the var after the model's output; the op kept a number that,
    # in the FX graph, belongs to another transpose of the same shape
    record = OpRecord(name="transpose_5", op_type="transpose", input_names=("x",), output_names=("v_cache_0",),
                      outputs=(np.ones((1, 2), np.float32),))
    reference = {"transpose_5": np.full((1, 2), 9.0, np.float32), "v_cache_0": np.ones((1, 2), np.float32)}
    assert first_divergence([record], reference, rel_tol=1e-3) == (None, 1)
    found, _ = first_divergence([record], {"transpose_5": reference["transpose_5"]}, rel_tol=1e-3)
    assert found is None


def test_torch_activations_also_name_the_outputs_as_the_package_does():
    class Net(torch.nn.Module):
        def forward(self, x):
            return x * 2.0, torch.softmax(x, dim=-1)

    acts = torch_activations(Net(), (torch.ones(1, 3),), output_names=("doubled", "probs"))
    assert np.allclose(acts["doubled"], 2.0) and np.allclose(acts["probs"], 1 / 3)
