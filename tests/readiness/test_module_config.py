"""`kind = "module"` in the configuration: declarations checked at load, gates that do not apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelKind
from gates.result import GateResult, Severity, Status
from readiness import assessment, config, selection
from readiness.scoring import score_components
from readiness.verdict import decide

MODULE = """[model]
kind = "module"
adapter = "m:build"
dims = { B = [1, 4], T = { min = 16, max = 64 } }

[[model.inputs]]
name = "spectrogram"
shape = ["B", 1, 128, "T"]

[[model.outputs]]
name = "position"
kind = "regression"
tolerances = { fp32 = { mean_abs = 1e-5 } }
"""


def load(tmp_path: Path, text: str) -> config.LoadedConfig:
    path = tmp_path / "readiness.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)


def test_a_module_model_becomes_a_spec_with_its_declarations(tmp_path):
    spec = selection.build_spec(load(tmp_path, MODULE))
    assert spec.model.kind is ModelKind.MODULE
    io = spec.model.module_io
    assert [c.label for c in io.cases()] == ["B=1,T=16", "B=1,T=64", "B=4,T=16", "B=4,T=64"]
    assert io.outputs[0].tolerances == {"fp32": {"mean_abs": 1e-5}}


def test_a_decoder_stays_the_default_kind(tmp_path):
    spec = selection.build_spec(load(tmp_path, "[model]\nadapter = 'm:build'\n"))
    assert spec.model.kind is ModelKind.DECODER and spec.model.module_io is None


@pytest.mark.parametrize("text, words", [
    (MODULE + "\n[[model.inputs]]\nname = 'mask'\nshape = ['B', 'S']\n",
     "model.inputs.mask.shape: dimension 'S' is not declared in model.dims"),
    (MODULE.replace('kind = "module"', 'kind = "module"\nlengths = [64]'),
     'model.lengths: applies to kind = "decoder" only'),
    (MODULE.replace('kind = "module"\n', ''), 'model.inputs: applies to kind = "module" only'),
    (MODULE + "\n[[model.inputs]]\nname = 'ids'\ndtype = 'int32'\nshape = ['B', 'T']\n",
     "model.inputs.ids.range: an integer input needs the range of its valid values"),
    (MODULE.replace("mean_abs = 1e-5", "mae = 1e-5"),
     "model.outputs.position.tolerances.fp32.mae: not a parity metric"),
    (MODULE.replace('kind = "regression"', 'kind = "scores"'), "model.outputs.0.kind = 'scores'"),
])
def test_bad_module_declarations_name_the_file_and_key_before_any_gate_runs(tmp_path, text, words):
    with pytest.raises(config.ConfigError, match="readiness.toml") as info:
        selection.build_spec(load(tmp_path, text))
    assert words in str(info.value)


def test_an_hf_encoder_folder_with_a_tokenizer_is_no_decoder_key_of_a_module(tmp_path):
    folder = tmp_path / "models" / "minilm"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    text = MODULE.replace('adapter = "m:build"', 'adapter = "hf:models/minilm"')
    spec = selection.build_spec(load(tmp_path, text))  # a decoder's folder gets its tokenizer.json by default
    assert spec.model.kind is ModelKind.MODULE and spec.model.tokenizer is None
    assert selection.build_spec(load(tmp_path, "[model]\nadapter = 'hf:models/minilm'\n")).model.tokenizer == \
        folder / "tokenizer.json"


def test_semantics_and_tokenizer_are_not_applicable_to_a_module(tmp_path):
    loaded = load(tmp_path, MODULE)
    chosen_off = selection.select(loaded, selection.Request())
    chosen, off = chosen_off.chosen, chosen_off.off
    assert "semantics" not in chosen and "tokenizer" not in chosen and "parity" in chosen
    assert off["semantics"] == off["tokenizer"] == 'not applicable to kind = "module"'
    result = assessment.off_result("semantics", off["semantics"])
    assert result.status is Status.OFF and result.summary == 'not applicable to kind = "module"'
    assert result.evidence["not_applicable"] is True and not result.status.passed


def test_a_gate_run_directly_on_a_module_says_it_does_not_apply(tmp_path):
    from gates.model.semantics import SemanticsGate, Settings

    spec = selection.build_spec(load(tmp_path, MODULE))
    result = SemanticsGate().check(GateContext(spec=spec, settings=Settings(), work_dir=tmp_path))
    assert result.status is Status.OFF and result.score is None
    assert result.summary == 'not applicable to kind = "module"' and result.evidence["not_applicable"] is True


def test_gates_that_do_not_apply_stay_out_of_the_score_and_never_veto():
    passed = GateResult(name="export", status=Status.PASS, score=1.0)
    na = GateResult(name="semantics", status=Status.OFF, severity=Severity.BLOCKER,
                    summary='not applicable to kind = "module"', evidence={"not_applicable": True})
    score = score_components({"export": passed, "semantics": na}, {"model": (1.0, ("export", "semantics"))})
    assert score.value == 100.0
    verdict = decide([passed, na], score, threshold=80.0)
    assert verdict.ship and verdict.vetoed_by == ()


def test_reports_say_not_applicable_rather_than_turned_off():
    from reports.view import gate_view, turned_off

    gate = {"name": "semantics", "status": "off", "severity": "blocker", "score": None,
            "summary": 'not applicable to kind = "module"',
            "evidence": {"off_because": 'not applicable to kind = "module"', "not_applicable": True}}
    other = {"name": "coverage", "status": "off", "evidence": {"off_because": "no [code] section"}}
    assert gate_view({}, gate)["status_label"] == "not applicable"
    lines = [g["line"] for g in turned_off([gate, {**gate, "name": "tokenizer"}, other])]
    assert lines == ['Not applicable to kind = "module": semantics, tokenizer',
                     "Turned off: coverage — no [code] section"]
