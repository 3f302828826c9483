"""Contract v1: loading validates schema and consistency; every refusal names the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.contract import (
    ContractError,
    TensorSpec,
    compare_tensors,
    load_contract,
    resolve_dim,
    save_contract,
    validate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "export"


def good_doc() -> dict:
    return json.loads((FIXTURES / "good_contract.json").read_text())


def test_good_contract_loads_with_typed_tensors():
    contract = load_contract(FIXTURES / "good_contract.json")
    assert contract.primary_length in contract.lengths
    assert contract.tensor("decode", "k_cache_0").shape == (1, 2, "T_cache", 8)
    assert [t.name for t in contract.tensors("decode", "outputs")][:2] == ["logits", "k_cache_0_out"]


def test_saved_contract_round_trips(tmp_path):
    contract = load_contract(FIXTURES / "good_contract.json")
    path = save_contract(contract, tmp_path / "sub" / "c.json")
    assert load_contract(path).doc == contract.doc
    assert not list(tmp_path.rglob("*.tmp"))


def test_malformed_json_is_refused_naming_the_file():
    with pytest.raises(ContractError, match="malformed_contract.json: not valid JSON"):
        load_contract(FIXTURES / "malformed_contract.json")


def test_newer_schema_version_is_refused_with_upgrade_advice():
    with pytest.raises(ContractError, match="newer_contract.json: schema_version 2 is newer"):
        load_contract(FIXTURES / "newer_contract.json")


def test_inconsistent_contract_names_each_problem():
    with pytest.raises(ContractError) as info:
        load_contract(FIXTURES / "inconsistent_contract.json")
    message = str(info.value)
    assert "inconsistent_contract.json: inconsistent contract" in message
    assert "'v_cache_1_output', absent from decode.outputs" in message
    assert "k_cache_0 has shape [1, 4, 'T_cache', 8]" in message


def test_missing_file_is_a_contract_error(tmp_path):
    with pytest.raises(ContractError, match="no such contract file"):
        load_contract(tmp_path / "absent.json")


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.pop("arch_hash"), "'arch_hash' is a required property"),
    (lambda d: d["prefill"]["outputs"][0].update(dtype="float8"), "prefill/outputs/0/dtype"),
    (lambda d: d.update(primary_length=999), "primary_length 999 is not in lengths"),
    (lambda d: d["validation"]["prefill"].pop(), "validation rows cover lengths"),
    (lambda d: d["validation"]["prefill"][-1].update(status="failed"), "gates_ok is true but"),
    (lambda d: d["model_arch"].update(n_kv_heads=4), "model_arch n_kv_heads=4 but kv_layout"),
])
def test_schema_and_consistency_violations_are_refused(mutate, fragment):
    doc = good_doc()
    mutate(doc)
    with pytest.raises(ContractError, match=None) as info:
        validate(doc, Path("c.json"))
    assert fragment in str(info.value) and str(info.value).startswith("c.json: ")


def test_resolve_dim_evaluates_symbolic_arithmetic_only():
    assert resolve_dim("T_cache+1", {"T_cache": 8}) == 9
    assert resolve_dim(5, {}) == 5
    with pytest.raises(ValueError):
        resolve_dim("__import__('os')", {"T": 1})


def test_compare_tensors_reports_renamed_and_mistyped_outputs():
    want = (TensorSpec(name="logits", dtype="float32", shape=(1, "T", 97)),)
    assert compare_tensors(want, want, what="x") == []
    renamed = (TensorSpec(name="var_292", dtype="float32", shape=(1, "T", 97)),)
    assert "missing ['logits'], unexpected ['var_292']" in compare_tensors(want, renamed, what="x")[0]
    fp16 = (TensorSpec(name="logits", dtype="float16", shape=(1, None, 97)),)
    assert compare_tensors(want, fp16, what="x", float_dtype="float16", env={"T": 8}) == []
    assert "is float16, the contract says float32" in compare_tensors(want, fp16, what="x")[0]
    wrong = (TensorSpec(name="logits", dtype="float32", shape=(1, 8, 96)),)
    assert "has shape [1, 8, 96]" in compare_tensors(want, wrong, what="x", env={"T": 8})[0]


def test_unreadable_paths_and_deep_nesting_are_contract_errors(tmp_path):
    with pytest.raises(ContractError, match="is a folder, not a contract file"):
        load_contract(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ContractError, match="deep.json: not a contract"):
        load_contract(deep)
