"""The parity gate on compressed and stateful packages: the trained demo weights, four defects.

Packages come from tests/fixtures/parity/<case>/ (rebuilt by
`python -m tests.fixtures.parity.build lossy ...`, see tests/fixtures/parity/lossy.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gates import GateContext, ModelSpec, ProjectSpec
from gates.model.parity import ParityGate, Settings, plan
from gates.result import GateResult, Status
from tests.fixtures.parity.lossy import LENGTHS

QUICK = dict(decode_steps=2, generate_tokens=4)


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory) -> Path:
    from pipeline import text_tokenizer

    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return text_tokenizer.save_tokenizer(text_tokenizer.train_tokenizer(), path)


def run_gate(tmp_path: Path, case: str, tokenizer: Path | None, **settings) -> GateResult:
    from pipeline.adapter import ModuleAdapter
    from tests.fixtures.parity.artifacts import FixtureArtifacts, reference_model

    spec = ProjectSpec(name="lossy", root=tmp_path,
                       model=ModelSpec(tokenizer=tokenizer, lengths=LENGTHS, primary_length=LENGTHS[0]))
    ctx = GateContext(spec=spec, settings=Settings(**settings), work_dir=tmp_path)
    ctx.memo.get("adapter", lambda: ModuleAdapter(reference_model(case)))
    ctx.memo.get("artifacts", lambda: FixtureArtifacts(case))
    return ParityGate().check(ctx)


@pytest.fixture(scope="module")
def good(tmp_path_factory, tokenizer_path) -> GateResult:
    return run_gate(tmp_path_factory.mktemp("lossy"), "lossy", tokenizer_path, decode_steps=3, generate_tokens=8)


def test_compressed_and_stateful_variants_of_the_demo_weights_pass(good):
    assert good.status is Status.PASS, good.evidence["failures"]
    assert set(good.evidence["targets"]) == {"coreml_int4_block32", "coreml_palettize4", "coreml_stateful_fp16"}
    assert {e["runtime"] for e in good.evidence["targets"].values()} == {"mil"}


def test_lossy_rows_carry_perplexity_kl_and_generation_agreement(good):
    rows = good.evidence["targets"]["coreml_int4_block32"]["rows"]
    prefill = next(r for r in rows if r["phase"] == "prefill" and r["output"] == "logits")
    assert prefill["ppl_delta_pct"] is not None and 0 < prefill["kl"] < 0.05 and prefill["top1_pct"] >= 65
    generated = [r for r in rows if r["phase"] == "generate"]
    assert [r["T"] for r in generated] == [LENGTHS[0]] and generated[0]["greedy_match_pct"] >= 15
    assert good.metrics["coreml_int4_block32_kl"] == max(r["kl"] for r in rows if r["kl"] is not None)


def test_stateful_rows_check_every_length_and_the_state_itself(good):
    rows = good.evidence["targets"]["coreml_stateful_fp16"]["rows"]
    assert {(r["phase"], r["T"], r["output"]) for r in rows} == {
        (p, t, o) for t in LENGTHS for p, o in (("decode", "logits"), ("decode", "cache"))}
    state = [r for r in rows if r["output"] == "cache"]
    assert all(r["max_rel"] < 2e-2 for r in state)


@pytest.mark.parametrize("case, target, op_type, names", [
    ("stateful_never_updated", "coreml_stateful_fp16", "coreml_update_state", ("k_cache_0", "never written")),
    ("stateful_kv_layout", "coreml_stateful_fp16", "coreml_update_state", ("[1, 80, 2, 16]", "read_state '")),
    ("embedding_lut_transposed", "coreml_palettize4", "constexpr_lut_to_dense", ("embed.weight", "gather '")),
    ("lm_head_2bit", "coreml_palettize4", "constexpr_lut_to_dense", ("lm_head.weight", "linear '")),
])
def test_seeded_defect_fails_parity_and_names_the_op(tmp_path, case, target, op_type, names):
    result = run_gate(tmp_path, case, None, sources=("random",), **QUICK)
    assert result.status is Status.FAIL
    entry = result.evidence["targets"][target]
    assert entry["status"] == "fail"
    finding = entry["localisation"][0]
    assert finding["op_type"] == op_type, finding
    assert all(n in finding["detail"] for n in names), finding["detail"]
    titles = [f["title"] for f in result.evidence["failures"]]
    assert any("first failing MIL op" in t for t in titles)


def test_two_bit_lm_head_fails_on_a_large_kl(tmp_path):
    result = run_gate(tmp_path, "lm_head_2bit", None, sources=("random",), localise=False, **QUICK)
    rows = result.evidence["targets"]["coreml_palettize4"]["rows"]
    prefill = [r for r in rows if r["phase"] == "prefill" and r["output"] == "logits"]
    assert min(r["kl"] for r in prefill) > 2 * 0.05  # twice the palettize4 bound, at every length
    assert any("kl " in m for r in prefill for m in r["misses"])


def test_never_updated_state_passes_step_one_and_fails_from_step_two(tmp_path):
    result = run_gate(tmp_path, "stateful_never_updated", None, sources=("random",), localise=False, **QUICK)
    misses = [m for r in result.evidence["targets"]["coreml_stateful_fp16"]["rows"] for m in r["misses"]]
    assert misses and not any("step 1)" in m for m in misses)
    assert any("logits (random, step 2)" in m for m in misses)


def test_stateful_and_compressed_targets_are_planned_after_the_precisions():
    plans = plan("auto", ("coreml", "onnx"), ("fp16",), False, ("int4_block32",), ("fp16", "int4_block32"))
    assert [p.key for p in plans] == ["coreml_fp16", "coreml_int4_block32", "coreml_stateful_fp16",
                                     "coreml_stateful_int4_block32", "onnx_fp32"]
    assert {p.runtime for p in plans if p.target != "onnx"} == {"mil"}
    assert {p.runtime for p in plan("coreml", ("coreml",), ("fp16",), True, (), ("fp16",))} == {"coreml"}


def test_mlstate_path_threads_a_core_ml_state_through_predict(tmp_path):
    """On macOS `--runtime coreml` runs the stateful target through MLState; here a stand-in
    MLModel records the calls that path makes."""
    from pipeline.runtimes.coreml_runtime import CoreMLRuntime
    from pipeline.runtimes.mil_interpreter import MilInterpreter
    from tests.fixtures.parity.build import case_dir

    interp = MilInterpreter.load(case_dir("lossy") / "decode_stateful_fp16.mlpackage")

    class FakeMLModel:  # the coremltools calls CoreMLRuntime makes, answered by the interpreter
        calls: list = []

        def make_state(self):
            return interp.make_state()

        def predict(self, feed, state=None):
            self.calls.append((sorted(feed), state is not None))
            return interp.run(feed, state=state)

    runtime = object.__new__(CoreMLRuntime)
    runtime._model, runtime.output_names = FakeMLModel(), ("logits",)
    runtime._dtypes = {"input_ids": np.int32, "kv_window": np.int32}
    state = runtime.make_state()
    out = runtime.run({"input_ids": np.array([[5]]), "kv_window": np.zeros((1, 9))}, state=state)
    assert out["logits"].shape == (1, 1, 512)
    assert FakeMLModel.calls == [(["input_ids", "kv_window"], True)]
    assert state.read_state("k_cache_0")[0, :, 8].any()  # the step wrote its row


def test_a_macos_stateful_result_merges_into_a_linux_one(good):
    linux = dict(good.evidence["targets"])
    linux["coreml_stateful_fp16"] = {**linux["coreml_stateful_fp16"], "status": "not_evaluable", "rows": [],
                                     "reason": "Core ML prediction needs macOS"}
    mac = {"coreml_stateful_fp16": {**good.evidence["targets"]["coreml_stateful_fp16"], "runtime": "coreml"}}
    from gates.model.parity import summarise

    merged = ParityGate.merge([summarise("parity", good.severity, linux), summarise("parity", good.severity, mac)])
    assert merged.status is Status.PASS
    assert merged.evidence["targets"]["coreml_stateful_fp16"]["runtime"] == "coreml"


def test_generate_tokens_must_be_a_count():
    from gates import GateError
    from gates.model.parity import validate

    validate(Settings(generate_tokens=0), "auto")
    for bad in (-1, True, 2.5):
        with pytest.raises(GateError, match="setting generate_tokens must be an integer >= 0"):
            validate(Settings(generate_tokens=bad), "auto")


def test_the_tradeoff_table_sets_each_variants_quality_cost_against_its_size_saving(good):
    table = next(t for t in good.evidence["tables"] if t["title"].startswith("Core ML variants"))
    rows = {r[0]: dict(zip(table["columns"], r)) for r in table["rows"]}
    assert set(rows) == {"coreml_int4_block32", "coreml_palettize4", "coreml_stateful_fp16"}
    int4 = rows["coreml_int4_block32"]
    entries = {p["file"]: p["size_bytes"] for p in FixtureContract.packages()}
    fp16 = entries["prefill_fp16.mlpackage"] + entries["decode_fp16.mlpackage"]
    assert int4["size_bytes"] == entries["prefill_int4_block32.mlpackage"] + entries["decode_int4_block32.mlpackage"]
    assert int4["size_saving_pct"] == round(100 * (1 - int4["size_bytes"] / fp16), 2) > 30
    assert rows["coreml_stateful_fp16"]["size_saving_pct"] == 0.0  # against the stateful fp16 package itself
    assert 0 < int4["kl"] < 0.05 and int4["top1_pct"] >= 65 and int4["status"] == "pass"
    assert table["chart"]["x"] == "size_saving_pct" and table["chart"]["y"] == "kl"


class FixtureContract:
    @staticmethod
    def packages():
        from pipeline.contract import load_contract
        from tests.fixtures.parity.build import case_dir

        return load_contract(case_dir("lossy") / "contract.json").doc["packages"]
