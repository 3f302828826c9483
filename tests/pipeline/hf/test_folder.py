"""`hf:<folder>`: what a folder must hold, refused at load with one line; the checkpoint gate on a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelSpec, ProjectSpec
from gates.model.checkpoint import CheckpointGate, Settings
from gates.result import Status
from pipeline.adapter import AdapterError, load_adapter
from pipeline.hf.folder import FolderError, read_folder
from readiness import config as configuration
from readiness.cli import main
from tests.fixtures.hf_models import write_config


def _project(tmp_path: Path, hf_zoo, family: str = "llama") -> Path:
    hf_zoo.copy_into(tmp_path, family)
    write_config(tmp_path, 'adapter = "hf:model"')
    return tmp_path


def test_the_folders_tokenizer_is_the_default_tokenizer(tmp_path: Path, hf_zoo) -> None:
    loaded = configuration.load(_project(tmp_path, hf_zoo) / "readiness.toml")
    assert loaded.config.model.tokenizer == "model/tokenizer.json"
    assert read_folder(tmp_path / "model").tokenizer == tmp_path / "model" / "tokenizer.json"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda m: (m / "config.json").unlink(), r"model/config.json: missing"),
    (lambda m: (m / "config.json").write_text("{nope"), r"model/config.json: not a readable JSON file"),
    (lambda m: (m / "config.json").write_text('{"hidden_size": 4}'), r"model/config.json: no model_type"),
    (lambda m: (m / "model.safetensors").rename(m / "pytorch_model.bin"),
     r"only pickled weights \(pytorch_model.bin\), which Readiness never loads"),
])
def test_a_broken_folder_is_refused_before_any_gate_runs(tmp_path: Path, hf_zoo, capsys, damage, message) -> None:
    project = _project(tmp_path, hf_zoo)
    damage(project / "model")
    with pytest.raises(configuration.ConfigError, match=r"readiness.toml: model.adapter = 'hf:model': .*" + message):
        configuration.load(project / "readiness.toml")
    assert main(["assess", "--config", str(project / "readiness.toml"), "-o", str(project / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (project / "out").exists()


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    write_config(tmp_path, 'adapter = "hf:weights/llama"')
    with pytest.raises(configuration.ConfigError, match=r"model.adapter = 'hf:weights/llama': no such file or folder"):
        configuration.load(tmp_path / "readiness.toml")


def test_an_unknown_model_type_is_an_adapter_error_in_transformers_words(tmp_path: Path, hf_zoo) -> None:
    project = _project(tmp_path, hf_zoo)
    cfg = json.loads((project / "model" / "config.json").read_text())
    (project / "model" / "config.json").write_text(json.dumps({**cfg, "model_type": "no_such_family"}))
    with pytest.raises(AdapterError, match=r"'hf:model': transformers could not load .*no_such_family"):
        load_adapter({"adapter": "hf:model"}, project)
    with pytest.raises(FolderError, match="no such checkpoint folder"):
        read_folder(project / "absent")


def _checkpoint(project: Path) -> tuple:
    spec = ModelSpec(adapter="hf:model", tokenizer=project / "model" / "tokenizer.json")
    ctx = GateContext(spec=ProjectSpec(name="hf", root=project, model=spec), settings=Settings(),
                      work_dir=project / "work")
    result = CheckpointGate().check(ctx)
    return result, {row[0]: (row[1], row[2]) for row in result.evidence["tables"][0]["rows"]}


def test_checkpoint_gate_checks_a_folder_and_says_what_it_checked(tmp_path: Path, hf_zoo) -> None:
    result, rows = _checkpoint(_project(tmp_path, hf_zoo, "qwen2"))
    assert result.status is Status.PASS, result.summary
    assert list(rows) == ["loads safely", "weights match config", "metadata complete", "family verified",
                          "matches transformers", "vocab vs tokenizer", "forward pass"]
    assert "model.safetensors: 27 tensors" in rows["loads safely"][1]
    assert rows["family verified"][1].startswith("qwen2: Qwen2")
    assert "max abs error" in rows["matches transformers"][1]
    assert rows["vocab vs tokenizer"] == ("ok", "512 == 512")
    assert result.metrics["checks"] == result.metrics["checks_ok"] == 7


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: {k: v for k, v in t.items() if k != "model.norm.weight"}, "missing from the files: model.norm.weight"),
    (lambda t: {**t, "model.layers.0.mlp.up_proj.weight": t["model.layers.0.mlp.up_proj.weight"][:96]},
     "shape differs: model.layers.0.mlp.up_proj.weight: file [96, 64], config [128, 64]"),
])
def test_weights_that_do_not_match_config_json_fail_the_checkpoint_gate(tmp_path: Path, hf_zoo, edit,
                                                                         message) -> None:
    project = _project(tmp_path, hf_zoo)
    weights = project / "model" / "model.safetensors"
    save_file(edit(load_file(str(weights))), str(weights), metadata={"format": "pt"})
    result, rows = _checkpoint(project)
    assert result.status is Status.FAIL
    assert rows["weights match config"][0] == "failed" and message in rows["weights match config"][1], rows
