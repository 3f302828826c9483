"""Loading a `kind = "module"` model (a callable or an `hf:` folder) and its eager checks."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gates.engine.spec import ModelKind, ModelSpec
from pipeline import module_checks
from pipeline.adapter import AdapterError
from pipeline.module_io import DimDecl, InputDecl, ModuleIO, OutputDecl
from pipeline.module_model import ModuleModel, load_module_model, name_outputs

IO = ModuleIO(dims=(DimDecl(name="B", values=(1, 3)), DimDecl(name="T", values=(8,))),
              inputs=(InputDecl(name="x", dtype="float32", shape=("B", 4, "T")),)).validate()
_NAMES = itertools.count()


class Twin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(8, 2)

    def forward(self, x):
        h = self.proj(x)
        return h.sum(1), h.mean(1)


def spec_for(tmp_path: Path, source: str, io: ModuleIO = IO, adapter: str | None = None) -> ModelSpec:
    """A project holding `source` as a fresh module, and the model spec naming its `build`."""
    name = f"user_module_{next(_NAMES)}"
    (tmp_path / f"{name}.py").write_text("import torch\nfrom torch import nn\n" + source)
    return ModelSpec(kind=ModelKind.MODULE, module_io=io, adapter=adapter or f"{name}:build")


def test_outputs_are_named_by_the_configuration_first():
    io = ModuleIO(inputs=IO.inputs, dims=IO.dims, outputs=(OutputDecl(name="a"), OutputDecl(name="b")))
    assert name_outputs((torch.ones(1), torch.ones(1)), io, Twin(), "t") == ("a", "b")


def test_outputs_are_named_by_a_mapping_the_module_returns():
    assert name_outputs({"hidden": torch.ones(1), "note": "x", "pooled": torch.ones(1)}, IO, Twin(), "t") == \
        ("hidden", "pooled")


def test_several_unnamed_outputs_are_refused():
    with pytest.raises(AdapterError, match="returns 2 unnamed outputs; name them"):
        name_outputs((torch.ones(1), torch.ones(1)), IO, Twin(), "t")


def test_a_declared_output_the_mapping_lacks_is_refused():
    io = ModuleIO(inputs=IO.inputs, dims=IO.dims, outputs=(OutputDecl(name="logits"),))
    with pytest.raises(AdapterError, match=r"declared outputs \['logits'\] are not among"):
        name_outputs({"hidden": torch.ones(1)}, io, Twin(), "t")


def test_a_callable_module_loads_with_its_output_names_attribute(tmp_path):
    spec = spec_for(tmp_path, "class M(nn.Module):\n"
                              "    output_names = ('total', 'mean')\n"
                              "    def forward(self, inp):\n"
                              "        return inp.sum(1), inp.mean(1)\n"
                              "def build():\n    return M()\n")
    model = load_module_model(spec, tmp_path)
    assert model.output_names == ("total", "mean") and model.by_name is False  # `inp` is not `x`: positional
    assert model.entry()(torch.ones(3, 4, 8))[0].shape == (3, 8)


def test_a_module_failing_on_the_declared_shapes_is_refused_with_the_shape(tmp_path):
    spec = spec_for(tmp_path, "def build():\n    return nn.Linear(3, 2)\n")
    with pytest.raises(AdapterError, match=r"failed on inputs of the declared shapes \(B=1,T=8\)"):
        load_module_model(spec, tmp_path)


def test_model_args_reach_the_callable(tmp_path):
    spec = spec_for(tmp_path, "def build(width, root=None):\n    return nn.Linear(8, width)\n")
    model = load_module_model(dataclasses.replace(spec, args={"width": 5}), tmp_path)
    assert model.run({"x": np.ones((1, 4, 8), np.float32)})["output"].shape == (1, 4, 5)


def test_a_model_arg_the_callable_does_not_take_is_refused_naming_its_parameters(tmp_path):
    spec = spec_for(tmp_path, "def build(checkpoint=None):\n    return nn.Linear(8, 2)\n")
    with pytest.raises(AdapterError, match=r"model.args width not accepted by build\(checkpoint\)"):
        load_module_model(dataclasses.replace(spec, args={"width": 5}), tmp_path)


def test_a_decoder_adapter_is_refused_for_kind_module(tmp_path):
    with pytest.raises(AdapterError, match="is a decoder"):
        load_module_model(ModelSpec(kind=ModelKind.MODULE, module_io=IO, adapter="builtin:student"), tmp_path)


# -- Hugging Face folders ------------------------------------------------------------------

transformers = pytest.importorskip("transformers")
BERT_IO = ModuleIO(dims=(DimDecl(name="B", values=(1, 2)), DimDecl(name="S", values=(8, 16))),
                   inputs=(InputDecl(name="input_ids", dtype="int32", shape=("B", "S"), value_range=(0, 99)),
                           InputDecl(name="attention_mask", dtype="int32", shape=("B", "S"), value_range=(1, 1))),
                   ).validate()


def save_bert(folder: Path, **config) -> Path:
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32, **config)
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(str(folder))
    return folder


def test_an_hf_encoder_folder_loads_with_its_output_names(tmp_path):
    save_bert(tmp_path / "models" / "bert")
    spec = ModelSpec(kind=ModelKind.MODULE, module_io=BERT_IO, adapter="hf:models/bert")
    model = load_module_model(spec, tmp_path)
    assert model.output_names == ("last_hidden_state", "pooler_output") and model.by_name
    assert model.arch["hf_class"] == "BertModel" and model.arch["hidden_size"] == 16
    assert module_checks.batch_independence(model).ok is True


@pytest.mark.parametrize("make, words", [
    (lambda root: save_bert(root / "models" / "bert", is_decoder=True), "is a causal language model"),
    (lambda root: (root / "models" / "bert").mkdir(parents=True), "config.json: missing"),
])
def test_unusable_hf_folders_are_refused(tmp_path, make, words):
    make(tmp_path)
    with pytest.raises(AdapterError, match=words):
        load_module_model(ModelSpec(kind=ModelKind.MODULE, module_io=BERT_IO, adapter="hf:models/bert"), tmp_path)


def test_an_hf_module_takes_no_model_args(tmp_path):
    save_bert(tmp_path / "models" / "bert")
    spec = ModelSpec(kind=ModelKind.MODULE, module_io=BERT_IO, adapter="hf:models/bert", args={"max_seq_len": 8})
    with pytest.raises(AdapterError, match='model.args max_seq_len: an hf: folder of kind = "module" takes no'):
        load_module_model(spec, tmp_path)


def test_an_hf_folder_outside_the_project_is_refused(tmp_path):
    save_bert(tmp_path / "elsewhere")
    (tmp_path / "project").mkdir()
    with pytest.raises(AdapterError, match="lies outside the project"):
        load_module_model(ModelSpec(kind=ModelKind.MODULE, module_io=BERT_IO, adapter="hf:../elsewhere"),
                          tmp_path / "project")


# -- eager checks --------------------------------------------------------------------------

class Dropped(Twin):
    def forward(self, x):
        return super().forward(torch.nn.functional.dropout(x, 0.2))


class BatchMixed(Twin):
    def forward(self, x):
        return super().forward(x - x.mean(0, keepdim=True))


def as_model(module: nn.Module, io: ModuleIO = IO) -> ModuleModel:
    return ModuleModel(module=module.eval(), io=io, output_names=("a", "b"))


def test_a_sound_module_passes_every_eager_check():
    model = as_model(Twin())
    assert module_checks.forward(model).ok and module_checks.determinism(model).ok
    assert module_checks.batch_independence(model).ok


def test_dropout_left_active_is_named_with_the_module_that_ran_it():
    found = module_checks.determinism(as_model(Dropped()))
    assert found.ok is False and found.max_abs_err > 0
    assert "aten.dropout in 'Dropped'" in found.detail and "a dropout left active" in found.detail


class EvalDropout(Twin):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return super().forward(self.drop(x))


def test_a_dropout_module_in_eval_mode_is_no_finding():
    # nn.Dropout in eval mode still calls aten.dropout, with train=False: nothing is drawn
    assert module_checks.determinism(as_model(EvalDropout())).ok is True


def test_an_output_that_depends_on_its_batch_fails_the_batch_check():
    found = module_checks.batch_independence(as_model(BatchMixed()))
    assert found.ok is False and "depends on the batch it is in" in found.detail
    assert module_checks.determinism(as_model(BatchMixed())).ok  # deterministic, just batch-bound


def test_the_batch_check_does_not_apply_without_two_batch_sizes():
    fixed = ModuleIO(dims=(DimDecl(name="B", values=(2,)), DimDecl(name="T", values=(8,))), inputs=IO.inputs)
    found = module_checks.batch_independence(as_model(Twin(), fixed.validate()))
    assert found.ok is None and "takes one size (2)" in found.detail
