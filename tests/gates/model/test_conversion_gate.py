"""The conversion gate: packages load and match the contract; defects fail naming themselves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gates.model.conversion import ConversionGate, Settings, generated_names
from gates.result import Status
from tests.fixtures.export import built


def _check(tmp_path, arts, settings=Settings()):
    return ConversionGate().check(built.context(tmp_path, settings, artifacts=arts, adapter=built.good_adapter()))


def test_good_packages_and_onnx_models_pass(tmp_path):
    result = _check(tmp_path, built.good_artifacts())
    assert result.status is Status.PASS, result.evidence.get("failures")
    assert result.metrics["models_checked"] == 4 and result.metrics["models_ok"] == 4
    assert len(result.evidence["files"]) == 4


@pytest.mark.heavy
def test_per_length_packages_of_a_clean_model_pass(tmp_path):
    arts = built.per_length_artifacts()
    ctx = built.context(tmp_path, Settings(), artifacts=arts, adapter=built.good_adapter(), targets=("coreml",))
    result = ConversionGate().check(ctx)
    assert result.status is Status.PASS, result.evidence.get("failures")
    assert result.metrics["models_checked"] == 3  # prefill at T=8 and T=16, decode
    assert arts.contract.tensor("prefill", "input_ids").shape == (1, "T")


def test_unnamed_outputs_fail_naming_the_converter_names(tmp_path):
    arts = built.with_prefill_package(built.good_artifacts(), built.unnamed_package())
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    details = " ".join(f["detail"] for f in result.evidence["failures"])
    assert "outputs left unnamed by the converter" in details and "linear_" in details


def test_renamed_output_fails_naming_both_names(tmp_path):
    arts = built.with_prefill_package(built.good_artifacts(), built.renamed_package())
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    details = " ".join(f["detail"] for f in result.evidence["failures"])
    assert "missing ['logits'], unexpected ['output_logits']" in details


def test_truncated_package_fails_naming_the_missing_file(tmp_path):
    arts = built.with_prefill_package(built.good_artifacts(), built.truncated_package())
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    assert any("weight.bin" in f["detail"] for f in result.evidence["failures"])


def test_failed_conversion_fails_with_the_converters_message(tmp_path):
    arts = built.good_artifacts()
    key = next(k for k in arts.coreml if k.kind == "decode")
    message = "Core ML conversion of decode (fp32, iOS18) failed: NotImplementedError: no dim order"
    broken = replace(arts, coreml={k: v for k, v in arts.coreml.items() if k != key},
                     errors={key.step: message})
    result = _check(tmp_path, broken)
    assert result.status is Status.FAIL
    assert {"title": "decode_fp32.mlpackage", "detail": message} in result.evidence["failures"]


def test_optional_onnx_failure_only_warns(tmp_path):
    arts = built.good_artifacts()
    broken = replace(arts, onnx={"prefill": arts.onnx["prefill"]}, errors={"onnx:decode": "exporter said no"})
    assert _check(tmp_path, broken).status is Status.FAIL
    assert _check(tmp_path, broken, Settings(onnx_required=False)).status is Status.WARN


def test_no_targets_is_not_evaluable(tmp_path):
    result = _check(tmp_path, built.ignoring_cache_artifacts())
    assert result.status is Status.NOT_EVALUABLE


def test_generated_names_are_recognised():
    assert generated_names(["var_292", "linear_14", "logits", "k_cache_0"], ["logits", "k_cache_0"]) == [
        "var_292", "linear_14"]


def test_onnx_model_disagreeing_with_the_contract_is_reported():
    import copy

    from gates.model.conversion import onnx_problems
    from pipeline.contract import Contract

    arts = built.good_artifacts()
    assert onnx_problems(arts.contract, "prefill", arts.onnx["prefill"]) == []
    doc = copy.deepcopy(dict(arts.contract.doc))
    doc["prefill"]["outputs"][0]["dtype"] = "float16"
    problems = onnx_problems(Contract(doc=doc), "prefill", arts.onnx["prefill"])
    assert problems == ["ONNX outputs: logits is float32, the contract says float16"]
