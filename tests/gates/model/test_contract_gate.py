"""The contract gate: contract, program, packages and checkpoint agree, or it fails naming both sides."""

from __future__ import annotations

import json
from dataclasses import replace

from gates.model.contract import ContractGate, Settings, identity_problems, layout_problems
from gates.result import Status
from pipeline.contract import load_contract
from tests.fixtures.export import built
from tests.fixtures.export.tiny_model import TinyAdapter


def _check(tmp_path, arts, settings=Settings(), adapter=None):
    ctx = built.context(tmp_path, settings, artifacts=arts, adapter=adapter or built.good_adapter())
    return ContractGate().check(ctx)


def test_good_model_passes_and_writes_the_contract(tmp_path):
    result = _check(tmp_path, built.good_artifacts())
    assert result.status is Status.PASS, result.evidence["failures"]
    assert result.evidence["files"] == [str(tmp_path / "contract.json")]
    assert load_contract(tmp_path / "contract.json").doc["arch_hash"] == built.good_artifacts().arch_hash
    assert result.metrics["packages_checked"] == 2


def test_renamed_package_output_fails(tmp_path):
    arts = built.with_prefill_package(built.good_artifacts(), built.renamed_package())
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    assert "prefill_fp32.mlpackage" in result.summary


def test_unnamed_package_outputs_fail(tmp_path):
    arts = built.with_prefill_package(built.good_artifacts(), built.unnamed_package())
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    assert any("left unnamed" in f["detail"] for f in result.evidence["failures"])


def test_inconsistent_contract_fails_naming_the_file(tmp_path):
    from pipeline.contract import Contract

    doc = json.loads((built.FIXTURES / "inconsistent_contract.json").read_text())
    arts = replace(built.good_artifacts(), contract=Contract(doc=doc))
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    assert "contract.json: inconsistent contract" in result.summary


def test_architecture_hash_from_other_weights_fails(tmp_path):
    arts = replace(built.good_artifacts(), arch_hash="0" * 64)
    from pipeline.artifacts import contract_for

    arts = replace(arts, contract=contract_for(built.good_adapter(), arts))
    result = _check(tmp_path, arts)
    assert result.status is Status.FAIL
    assert any("contract arch_hash 000000000000 != loaded weights" in f["detail"]
               for f in result.evidence["failures"])


def test_adapter_names_disagreeing_with_the_layout_fail():
    class Renamed(TinyAdapter):
        def decode_output_names(self):
            return ("logits",) + tuple(f"{kv}{i}" for i in range(2) for kv in "kv")

    contract = built.good_artifacts().contract
    problems = layout_problems(contract, Renamed())
    assert problems and "decode cache outputs ['k0', 'v0', 'k1', 'v1']" in problems[0]
    assert layout_problems(contract, built.good_adapter()) == []


def test_identity_checks_tokenizer_and_model_arch():
    contract = built.good_artifacts().contract
    h = contract.doc["arch_hash"]
    assert identity_problems(contract, h, h, {"n_layers": 2}, None, False) == []
    assert "model_arch n_layers" in identity_problems(contract, h, h, {"n_layers": 3}, None, False)[0]
    assert "tokenizer fingerprint" in identity_problems(contract, h, h, None, "abc" * 10, False)[0]
    assert "no tokenizer fingerprint" in identity_problems(contract, h, h, None, None, True)[0]
