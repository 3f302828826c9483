"""The parity gate on committed tiny students: good pairs pass, seeded defects fail.

Packages come from tests/fixtures/parity/ (rebuilt by
`python -m tests.fixtures.parity.build`); the adapter and artifacts are put
into the run's memo the way `gates.model.shared.shared_*` would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelSpec, ProjectSpec
from gates.model.parity import ParityGate, Settings, merge_targets, plan, summarise
from gates.result import GateResult, Severity, Status

FAST = dict(sources=("random",), decode_steps=2, localise=False)


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory) -> Path:
    from pipeline import text_tokenizer

    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return text_tokenizer.save_tokenizer(text_tokenizer.train_tokenizer(), path)


def run_gate(tmp_path: Path, defect: str | None, **kwargs) -> GateResult:
    return ParityGate().check(context(tmp_path, defect, **kwargs))


def context(tmp_path: Path, defect: str | None, *, tokenizer: Path | None = None,
            runtime: str | None = None, precisions=None, targets=None, **settings) -> GateContext:
    from pipeline.adapter import ModuleAdapter
    from tests.fixtures.parity.artifacts import FixtureArtifacts
    from tests.fixtures.parity.models import reference_and_converted

    reference, _ = reference_and_converted(defect)
    spec = ProjectSpec(name="fixture", root=tmp_path,
                       model=ModelSpec(tokenizer=tokenizer, lengths=(8, 16), primary_length=8))
    ctx = GateContext(spec=spec, settings=Settings(**settings), work_dir=tmp_path,
                      options={"runtime": runtime} if runtime else {})
    ctx.memo.get("adapter", lambda: ModuleAdapter(reference))
    ctx.memo.get("artifacts", lambda: FixtureArtifacts(defect, targets=targets, precisions=precisions))
    return ctx


@pytest.fixture(scope="module")
def good(tmp_path_factory, tokenizer_path) -> GateResult:
    return run_gate(tmp_path_factory.mktemp("good"), None, tokenizer=tokenizer_path, decode_steps=2)


def test_good_model_passes_on_every_target_with_text_and_random_inputs(good):
    assert good.status is Status.PASS, good.evidence["failures"]
    assert good.metrics["targets_passed"] == 3
    assert good.evidence["settings"]["sources"] == ["text", "random"]
    assert good.score == 1.0


def test_good_model_evidence_has_a_row_per_length_phase_and_output(good):
    rows = good.evidence["targets"]["coreml_fp16"]["rows"]
    keys = {(r["phase"], r["T"], r["output"]) for r in rows}
    assert keys == {(p, t, o) for p in ("prefill", "decode") for t in (8, 16) for o in ("logits", "cache")}
    table = good.evidence["tables"][0]
    assert table["columns"][:4] == ["runtime", "phase", "T", "output"] and table["rows"]


def test_the_eager_weights_leave_memory_before_the_first_program_opens(tmp_path, monkeypatch):
    """Once the reference's outputs are on disk the eager model's weights are parked in a file
    map (`pipeline.mapped_weights`) while the programs run; the verdict is the same."""
    from pipeline.mapped_weights import MappedWeights
    from pipeline.parity import targets

    events: list[str] = []
    opener, parker = targets._open, MappedWeights.park
    monkeypatch.setattr(targets, "_open", lambda *a: events.append("open") or opener(*a))
    monkeypatch.setattr(MappedWeights, "park", lambda self: events.append("park") or parker(self))
    ctx = context(tmp_path, None, **FAST)
    result = ParityGate().check(ctx)
    assert result.status is Status.PASS, result.evidence["failures"]
    assert events[0] == "park" and events.count("park") == result.metrics["targets_passed"] == 3
    assert ctx.memo.get("mapped_weights", lambda: None).mapped
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mapped-weights")] == []


def test_fp32_interpreter_matches_pytorch_to_1e_5(good):
    assert good.metrics["coreml_fp32_max_abs"] <= 1e-5
    assert good.metrics["coreml_fp16_max_abs"] > good.metrics["coreml_fp32_max_abs"]


@pytest.mark.parametrize("defect", ["no_causal_mask", "wrong_rms_eps", "swapped_kv", "fp16_overflow"])
def test_seeded_defect_fails_fp16_parity(tmp_path, defect):
    result = run_gate(tmp_path, defect, precisions=("fp16",), **FAST)
    assert result.status is Status.FAIL
    assert result.evidence["targets"]["coreml_fp16"]["status"] == "fail"
    assert result.evidence["failures"] and result.remediation


def test_fp16_overflow_passes_in_fp32(tmp_path):
    result = run_gate(tmp_path, "fp16_overflow", precisions=("fp32",), **FAST)
    assert result.status is Status.PASS, result.evidence["failures"]


def test_swapped_kv_fails_on_cache_rows_while_prefill_logits_pass(tmp_path):
    result = run_gate(tmp_path, "swapped_kv", precisions=("fp16",), **FAST)
    rows = result.evidence["targets"]["coreml_fp16"]["rows"]
    failing = {(r["phase"], r["output"]) for r in rows if r["status"] == "fail"}
    assert ("prefill", "cache") in failing and ("prefill", "logits") not in failing


def test_every_metric_is_listed_not_just_the_first_miss(tmp_path):
    result = run_gate(tmp_path, "no_causal_mask", precisions=("fp16",), **FAST)
    row = next(r for r in result.evidence["targets"]["coreml_fp16"]["rows"]
               if r["status"] == "fail" and r["output"] == "logits")
    assert len(row["misses"]) > 1
    assert all(row[m] is not None for m in ("max_abs", "max_rel", "psnr_db", "cosine", "top1_pct", "kl"))


def test_unsupported_mil_op_makes_the_target_not_evaluable(tmp_path, monkeypatch):
    from pipeline.runtimes import mil_ops

    monkeypatch.delitem(mil_ops.SUPPORTED_OPS, "silu")
    result = run_gate(tmp_path, None, precisions=("fp32",), **FAST)
    entry = result.evidence["targets"]["coreml_fp32"]
    assert entry["status"] == "not_evaluable" and "silu" in entry["reason"]
    assert result.status is Status.NOT_EVALUABLE  # ONNX passing does not make it a pass
    assert "onnx_fp32" in result.summary


def test_coreml_runtime_off_macos_is_not_evaluable(tmp_path):
    from pipeline.runtimes.coreml_runtime import MACOS_ONLY, can_predict

    if can_predict():
        pytest.skip("Core ML can predict on this host")
    result = run_gate(tmp_path, None, runtime="coreml", precisions=("fp32",), **FAST)
    assert result.status is Status.NOT_EVALUABLE
    assert result.evidence["targets"]["coreml_fp32"]["reason"] == MACOS_ONLY
    assert "onnx_fp32" not in result.evidence["targets"]


def test_runtime_onnx_checks_only_onnx(tmp_path):
    result = run_gate(tmp_path, None, runtime="onnx", **FAST)
    assert list(result.evidence["targets"]) == ["onnx_fp32"] and result.status is Status.PASS


def test_bad_settings_raise_gate_errors(tmp_path):
    with pytest.raises(GateError, match="runtime"):
        run_gate(tmp_path, None, runtime="tflite", **FAST)
    with pytest.raises(GateError, match="sources"):
        run_gate(tmp_path, None, sources=("images",))
    with pytest.raises(GateError, match="thresholds.logits.max_err is not a metric"):
        run_gate(tmp_path, None, thresholds={"logits": {"max_err": 1.0}})
    with pytest.raises(GateError, match="must be a number"):
        run_gate(tmp_path, None, thresholds={"fp16": {"max_rel": "big"}})


def test_a_threshold_override_can_fail_a_good_model(tmp_path):
    result = run_gate(tmp_path, None, runtime="mil", precisions=("fp16",),
                      thresholds={"fp16.logits": {"max_rel": 1e-6}}, **FAST)
    assert result.status is Status.FAIL
    failing = {r["output"] for r in result.evidence["targets"]["coreml_fp16"]["rows"] if r["status"] == "fail"}
    assert failing == {"logits"}


def test_text_source_without_tokenizer_is_noted_and_random_still_runs(tmp_path):
    result = run_gate(tmp_path, None, runtime="onnx", decode_steps=1)
    assert result.evidence["settings"]["sources"] == ["random"]
    assert "no tokenizer" in result.evidence["notes"][0]


def test_plan_picks_mil_off_macos_and_coreml_on_macos():
    assert {p.runtime for p in plan("auto", ("coreml",), ("fp16",), macos=False)} == {"mil"}
    assert {p.runtime for p in plan("auto", ("coreml",), ("fp16",), macos=True)} == {"coreml"}
    assert [p.key for p in plan("onnx", ("coreml", "onnx"), ("fp16",), macos=False)] == ["onnx_fp32"]


def _entry(status, runtime="mil", rows=1, fail=False):
    row = {"runtime": runtime, "phase": "prefill", "T": 8, "output": "logits", "runs": 1, "max_abs": 0.1,
           "status": "fail" if fail else "pass", "misses": ["max_rel 1 (needs <= 0.02)"] if fail else []}
    return {"target": "coreml", "precision": "fp16", "runtime": runtime, "status": status, "reason": "",
            "comparisons": rows, "failed": int(fail), "rows": [row] * rows if status in ("pass", "fail") else [],
            "localisation": [], "files": []}


def test_merge_folds_a_macos_partial_into_a_linux_result():
    linux = summarise("parity", Severity.BLOCKER, {"coreml_fp16": _entry("not_evaluable", "coreml"),
                                                   "onnx_fp32": {**_entry("pass", "onnxruntime"),
                                                                 "target": "onnx", "precision": "fp32"}})
    mac = summarise("parity", Severity.BLOCKER, {"coreml_fp16": _entry("pass", "coreml")})
    assert linux.status is Status.NOT_EVALUABLE
    merged = ParityGate.merge([linux, mac])
    assert merged.status is Status.PASS and merged.metrics["targets_passed"] == 2
    assert merged.evidence["merged_from"] == 2


def test_merge_keeps_the_worse_of_two_evaluated_results():
    merged = merge_targets(_entry("pass", "mil"), _entry("fail", "coreml", fail=True))
    assert merged["status"] == "fail" and merged["runtime"] == "coreml+mil" and len(merged["rows"]) == 2
    result = ParityGate.merge([summarise("parity", Severity.BLOCKER, {"coreml_fp16": _entry("pass")}),
                               summarise("parity", Severity.BLOCKER, {"coreml_fp16": _entry("fail", fail=True)})])
    assert result.status is Status.FAIL


def test_merged_result_survives_a_json_round_trip():
    result = summarise("parity", Severity.BLOCKER, {"coreml_fp16": _entry("pass")})
    back = GateResult.from_dict(result.to_dict())
    assert ParityGate.merge([back]).status is Status.PASS


@pytest.mark.heavy
@pytest.mark.parametrize("defect, op_types", [
    ("fp16_overflow", {"pow", "mul"}), ("no_causal_mask", {"softmax", "add"}),
    # swapped_kv: the op whose output the package binds to the first swapped cache (the rotary
    # add of k writes `v_cache_0`, the transpose of v writes `k_cache_0`)
    ("wrong_rms_eps", {"add", "rsqrt"}), ("swapped_kv", {"transpose", "concat", "add"})])
def test_failure_is_localised_to_the_first_wrong_mil_op(tmp_path, defect, op_types):
    result = run_gate(tmp_path, defect, precisions=("fp16",), sources=("random",), decode_steps=1)
    found = result.evidence["targets"]["coreml_fp16"]["localisation"]
    assert found and found[0].get("op_type") in op_types, found
    if defect == "swapped_kv":
        assert found[0]["var"] in ("k_cache_0", "v_cache_0"), found
    titles = [f["title"] for f in result.evidence["failures"]]
    assert any("first failing MIL op" in t for t in titles)


def test_merge_never_lets_an_errored_run_vanish_into_a_pass():
    errored = GateResult(name="parity", status=Status.ERROR, summary="model could not be loaded")
    mac = summarise("parity", Severity.BLOCKER, {"coreml_fp16": _entry("pass", "coreml")})
    merged = ParityGate.merge([errored, mac])
    assert merged.status is Status.ERROR and "model could not be loaded" in str(merged.evidence["failures"])


def test_cache_key_changes_with_settings_and_runtime(tmp_path):
    spec = ProjectSpec(name="p", root=tmp_path, model=ModelSpec(checkpoint=tmp_path / "s.safetensors"))
    key = lambda settings, options={}: ParityGate().cache_inputs(  # noqa: E731
        GateContext(spec=spec, settings=settings, work_dir=tmp_path, options=options))
    base = key(Settings())
    assert base["files"] and base["parity"]["runtime"] == "auto"
    assert key(Settings(seed=1)) != base and key(Settings(), {"runtime": "onnx"}) != base
    assert ParityGate().cache_inputs(GateContext(spec=ProjectSpec(name="p", root=tmp_path), settings=Settings(),
                                                 work_dir=tmp_path)) is None
