"""Export, conversion and the contract of a `kind = "module"` model, on small modules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.contract import ContractError
from pipeline.export_checks import Finding
from pipeline.module_artifacts import ModuleBuildOptions, build_module_artifacts
from pipeline.module_contract import load_module_contract, validate_module_contract
from pipeline.module_convert import coreml_cases, image_input_sizes
from pipeline.module_export import export_module
from pipeline.module_inputs import model_inputs, random_inputs
from pipeline.module_io import DimDecl, ImageDecl, InputDecl, ModuleIO, OutputDecl, OutputKind
from pipeline.module_model import ModuleModel

IO = ModuleIO(dims=(DimDecl(name="B", values=(1, 2)), DimDecl(name="T", values=(16, 32))),
              inputs=(InputDecl(name="spectrogram", dtype="float32", shape=("B", 1, 8, "T")),),
              outputs=(OutputDecl(name="position", kind=OutputKind.REGRESSION),
                       OutputDecl(name="frames"))).validate()


class Net(nn.Module):
    """conv, transposed conv, nearest upsampling and pooling: the vision ops of the interpreter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.head = nn.Linear(4, 2)

    def forward(self, spectrogram):
        h = torch.relu(self.up(torch.relu(self.conv(spectrogram))))
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
        frames = nn.functional.avg_pool2d(h, 2).mean(1)
        return self.head(h.amax(dim=(2, 3))), frames


def model(module: nn.Module = None, io: ModuleIO = IO, names=("position", "frames"), by_name=True) -> ModuleModel:
    return ModuleModel(module=(module or Net()).eval(), io=io, output_names=names, by_name=by_name)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("module_arts")
    return build_module_artifacts(model(), ModuleBuildOptions(), out), out


def test_every_shape_case_exports_and_converts_and_the_contract_loads(built):
    arts, _ = built
    assert arts.errors == {}
    assert [(r.shape, r.status) for r in arts.export.rows] == [
        ("B=1,T=16", "ok"), ("B=1,T=32", "ok"), ("B=2,T=16", "ok"), ("B=2,T=32", "ok")]
    assert arts.export.inputs[0].shape == ("B", 1, 8, "T")
    assert set(arts.coreml) == {"fp32", "fp16"} and arts.onnx.is_file()
    contract = load_module_contract(arts.contract_path)
    assert contract.doc["kind"] == "module" and contract.doc["gates_ok"] is True
    assert contract.case("B=2,T=32")["outputs"] == {"position": [2, 2], "frames": [2, 8, 32]}


def test_the_mil_interpreter_matches_eager_on_every_case(built):
    from pipeline.runtimes.mil_interpreter import MilInterpreter

    arts, _ = built
    interp, net = MilInterpreter.load(arts.coreml["fp32"]), model()
    for case in IO.cases():
        feed = random_inputs(IO, case, seed=3)
        got, want = interp.run(feed), net.run(feed)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_a_second_build_reuses_the_packages(built):
    arts, out = built
    again = build_module_artifacts(model(), ModuleBuildOptions(), out)
    assert set(again.reused) == {"coreml:fp32", "coreml:fp16", "onnx"}
    assert again.decompositions == arts.decompositions == {"fp32": "none", "fp16": "none"}


def test_both_precisions_convert_from_one_decomposition(tmp_path, monkeypatch):
    """Decomposing the program costs as much as converting it: once per table, not per precision."""
    from pipeline import module_convert

    tables: list[str] = []
    decompose = module_convert.decomposed
    monkeypatch.setattr(module_convert, "decomposed", lambda program, table: tables.append(table)
                        or decompose(program, table))
    arts = build_module_artifacts(model(), ModuleBuildOptions(targets=("coreml",)), tmp_path)
    assert arts.errors == {} and set(arts.coreml) == {"fp32", "fp16"}
    assert tables == ["none"]


class Branchy(Net):
    def forward(self, spectrogram):
        if spectrogram.sum() > 0:  # data-dependent control flow: torch.export refuses it
            return super().forward(spectrogram)
        return super().forward(-spectrogram)


def test_a_module_that_cannot_export_fails_every_case_with_the_exporters_words():
    bundle = export_module(model(Branchy()))
    assert bundle.program is None and "export" in bundle.errors
    assert {r.finding for r in bundle.rows} == {Finding.EXPORT_FAILED}
    assert all(r.reason.startswith("export failed: ") for r in bundle.rows)


def test_an_image_input_converts_to_a_core_ml_image_at_batch_one(tmp_path):
    io = ModuleIO(dims=(DimDecl(name="B", values=(1, 2)),),
                  inputs=(InputDecl(name="image", dtype="float32", shape=("B", 3, 8, 8),
                                    image=ImageDecl(scale=1 / 255, bias=(-0.5,))),)).validate()
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    arts = build_module_artifacts(model(net, io, ("logits",), by_name=False), ModuleBuildOptions(precisions=("fp32",),
                                                                                   targets=("coreml",)), tmp_path)
    assert [c.label for c in coreml_cases(io)] == ["B=1"]
    assert image_input_sizes(arts.coreml["fp32"]) == {"image": ((8, 8),)}
    from pipeline.runtimes.mil_interpreter import MilInterpreter

    pixels = random_inputs(io, coreml_cases(io)[0], seed=0)
    got = MilInterpreter.load(arts.coreml["fp32"]).run(pixels)["logits"]
    with torch.no_grad():
        want = net(torch.from_numpy(model_inputs(io, pixels)["image"])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # the package scales pixels itself


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(gates_ok=True, validation=[{**d["validation"][0], "status": "failed"}] + d["validation"][1:]),
     "gates_ok is true but a shape case did not validate"),
    (lambda d: d.update(cases=d["cases"][:-1]), "not every combination of the dimensions"),
    (lambda d: d["inputs"][0].update(shape=["B", 1, 8, "W"]), "uses dimension 'W', which is not declared"),
    (lambda d: d.update(schema_version=2), "newer than this harness understands"),
    (lambda d: d.update(kind="decoder"), "'module' was expected"),
])
def test_an_inconsistent_module_contract_is_refused(built, change, words):
    arts, _ = built
    doc = json.loads(arts.contract_path.read_text())
    change(doc)
    with pytest.raises(ContractError, match=words):
        validate_module_contract(doc, arts.contract_path)
