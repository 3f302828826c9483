"""The clean-ups before Core ML conversion: aliases dropped, static `-1` spelled out, maths unchanged."""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim, export

from pipeline.conversion_passes import drop_aliases, fill_view_dims, prepare


class FullSlice(torch.nn.Module):
    """A full-range slice (`x[..., :d]`, like Phi-3's rotary split) decomposes to aten.alias."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1]] * 2.0


class HeadsView(torch.nn.Module):
    """transformers' `view(*input_shape, -1, head_dim)` on a dynamic length."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], -1, 4).transpose(1, 2)


def _targets(program) -> list[str]:
    return [str(n.target) for n in program.graph_module.graph.nodes if n.op == "call_function"]


def test_alias_nodes_are_replaced_by_their_input() -> None:
    x = torch.randn(1, 5, 8)
    program = export(FullSlice(), (x,)).run_decompositions({})
    assert "aten.alias.default" in _targets(program)  # what coremltools 9.0 refuses
    cleaned = drop_aliases(program)
    assert "aten.alias.default" not in _targets(cleaned)
    assert torch.equal(cleaned.module()(x), x * 2.0)


def test_a_static_minus_one_is_written_in_and_a_dynamic_one_kept() -> None:
    x = torch.randn(1, 6, 8)
    program = export(HeadsView(), (x,), dynamic_shapes=({1: Dim("T", min=2, max=32)},)).run_decompositions({})
    views = [n for n in program.graph_module.graph.nodes if str(n.target) == "aten.view.default"]
    assert any(-1 in list(n.args[1]) for n in views)
    fill_view_dims(program)
    shapes = [list(n.args[1]) for n in views]
    assert all(-1 not in s for s in shapes) and any(s[2:] == [2, 4] for s in shapes), shapes
    y = torch.randn(1, 11, 8)
    assert torch.equal(program.module()(y), HeadsView()(y))


def test_prepared_full_slice_converts_to_core_ml() -> None:
    ct = pytest.importorskip("coremltools")
    import numpy as np

    x = torch.randn(1, 5, 8)
    program = export(FullSlice(), (x,)).run_decompositions({})
    inputs = [ct.TensorType(name="x", shape=(1, 5, 8), dtype=np.float32)]
    with pytest.raises(Exception, match="alias"):
        ct.convert(program, inputs=inputs, convert_to="milinternal")
    ct.convert(prepare(export(FullSlice(), (x,)).run_decompositions({})), inputs=inputs, convert_to="milinternal")


class TanhGelu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x, approximate="tanh") + torch.nn.functional.gelu(x * 0.5)


def test_a_tanh_gelu_converts_as_tanh_gelu_and_an_exact_one_stays_one_op(tmp_path) -> None:
    ct = pytest.importorskip("coremltools")
    import numpy as np

    from pipeline.conversion_passes import decompositions
    from pipeline.runtimes.mil_interpreter import MilInterpreter

    x = torch.linspace(-4, 4, 64).reshape(1, 64)
    program = prepare(export(TanhGelu(), (x,)).run_decompositions(decompositions()))
    assert _targets(program).count("aten.gelu.default") == 1  # the exact one
    model = ct.convert(program, inputs=[ct.TensorType(name="x", shape=(1, 64), dtype=np.float32)],
                       outputs=[ct.TensorType(name="y")], convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    model.save(str(tmp_path / "gelu.mlpackage"))
    got = MilInterpreter.load(tmp_path / "gelu.mlpackage").run({"x": x.numpy()})["y"]
    # without the decomposition coremltools converts the tanh GELU as an exact one: ~4.7e-4 off
    assert np.abs(got - TanhGelu()(x).numpy()).max() < 1e-6
