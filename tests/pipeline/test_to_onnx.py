"""ONNX through the dynamo exporter: checked, named, with dynamic T / T_cache axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.to_onnx import OnnxError, export_prefill_onnx, read_onnx
from tests.fixtures.export import built


def test_prefill_onnx_is_named_checked_and_dynamic_in_T():
    info = read_onnx(built.good_artifacts().onnx_model("prefill"))
    assert info.opset >= 17
    assert [t.name for t in info.outputs] == list(built.good_adapter().prefill_output_names())
    assert info.inputs[0].shape == (1, "T") and info.inputs[0].dtype == "int32"


def test_decode_onnx_shares_one_cache_axis_and_runs_in_onnxruntime():
    import onnxruntime as ort

    path = built.good_artifacts().onnx_model("decode")
    info = read_onnx(path)
    assert {t.shape for t in info.inputs[2:]} == {(1, 2, "T_cache", 8)}
    assert {t.shape for t in info.outputs[1:]} == {(1, 2, "T_cache+1", 8)}
    feeds = {"input_ids": np.zeros((1, 1), np.int32), "position": np.array([5], np.int32)}
    feeds.update({t.name: np.zeros((1, 2, 5, 8), np.float32) for t in info.inputs[2:]})
    outputs = ort.InferenceSession(str(path)).run(None, feeds)
    assert outputs[1].shape == (1, 2, 6, 8)


def test_corrupt_onnx_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(OnnxError, match="bad.onnx: onnx.checker rejected it"):
        read_onnx(bad)
    with pytest.raises(OnnxError, match="no such ONNX file"):
        read_onnx(tmp_path / "absent.onnx")


def test_failed_export_raises_and_leaves_nothing(tmp_path):
    class Broken(torch.nn.Module):
        def forward(self, input_ids):
            raise RuntimeError("boom in forward")

    with pytest.raises(OnnxError, match="ONNX export to p.onnx failed"):
        export_prefill_onnx(Broken(), torch.zeros(1, 8, dtype=torch.int32), output_names=("logits",),
                            out_path=tmp_path / "p.onnx", min_length=2, max_length=16)
    assert list(tmp_path.iterdir()) == []


def test_weights_are_written_beside_the_model_and_nothing_else_is_left(tmp_path):
    import onnx

    from pipeline.to_onnx import is_complete

    adapter = built.good_adapter()
    ids = torch.zeros(1, 8, dtype=torch.int32)
    path = export_prefill_onnx(adapter.prefill_module(), ids, output_names=adapter.prefill_output_names(),
                               out_path=tmp_path / "p.onnx", min_length=2, max_length=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.onnx", "p.onnx.data"]  # no staging folder
    model = onnx.load(str(path), load_external_data=False)
    locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"p.onnx.data"}
    eager = adapter.prefill_module()(ids)[0].detach().numpy()
    import onnxruntime as ort

    ran = ort.InferenceSession(str(path)).run(["logits"], {"input_ids": ids.numpy()})[0]
    np.testing.assert_allclose(ran, eager, rtol=1e-4, atol=1e-4)
    assert is_complete(path)
    (tmp_path / "p.onnx.data").unlink()
    assert not is_complete(path)  # a model whose weights are gone is built again, not reused
    assert not is_complete(tmp_path / "absent.onnx")


def _sources(monkeypatch, refuse_programs: bool = False) -> list[str]:
    """What each torch.onnx.export call was given: "program" or "module" (a program refused when asked)."""
    seen: list[str] = []
    export = torch.onnx.export

    def recording(model, *args, **kwargs):
        program = isinstance(model, torch.export.ExportedProgram)
        seen.append("program" if program else "module")
        if program and refuse_programs:
            raise RuntimeError("the exporter refuses this program")
        return export(model, *args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", recording)
    return seen


def test_the_built_artifacts_export_onnx_from_the_programs_already_made(monkeypatch, tmp_path):
    """The export step traced prefill (dynamic T) and decode (dynamic T_cache): ONNX takes those
    programs, not a second trace of the module, and still names its dims T and T_cache."""
    from pipeline.artifacts import BuildOptions, build_artifacts

    seen = _sources(monkeypatch)
    adapter = built.good_adapter()
    arts = build_artifacts(adapter, BuildOptions(targets=("onnx",), lengths=(8, 16), primary_length=8), tmp_path)
    assert arts.errors == {} and seen == ["program", "program"]
    prefill, decode = read_onnx(arts.onnx_model("prefill")), read_onnx(arts.onnx_model("decode"))
    assert prefill.inputs[0].shape == (1, "T") and {t.shape for t in decode.inputs[2:]} == {(1, 2, "T_cache", 8)}


def test_a_program_the_exporter_refuses_is_exported_from_the_module(monkeypatch, tmp_path):
    import onnxruntime as ort

    adapter = built.good_adapter()
    ids = torch.zeros(1, 8, dtype=torch.int32)
    program = torch.export.export(adapter.prefill_module(), (ids,),
                                  dynamic_shapes=({1: torch.export.Dim("T", min=2, max=16)},))
    seen = _sources(monkeypatch, refuse_programs=True)
    path = export_prefill_onnx(adapter.prefill_module(), ids, output_names=adapter.prefill_output_names(),
                               out_path=tmp_path / "p.onnx", min_length=2, max_length=16, program=program)
    assert seen == ["program", "module"]
    ran = ort.InferenceSession(str(path)).run(["logits"], {"input_ids": ids.numpy()})[0]
    np.testing.assert_allclose(ran, adapter.prefill_module()(ids)[0].detach().numpy(), rtol=1e-4, atol=1e-4)
