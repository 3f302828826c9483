"""The performance gate on the committed tiny students: figures, budgets, severity, Core ML and merge.

The packages come from tests/fixtures/parity/good (the tiny student at lengths
8 and 16); the adapter and artifacts are put in the run's memo, as
`gates.model.shared` would. No assertion here depends on how fast this
machine is: sizes and MACs are deterministic, and timing budgets are either
impossible to meet (1e-9 ms) or impossible to miss (1e9 ms), or judged on
injected timing entries.
"""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path

import pytest

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelSpec, ProjectSpec
from gates.model.performance import PerformanceGate, Settings
from gates.result import Severity, Status

FAST = dict(warmup=1, trials=5, min_trials=5, max_measure_s=5.0)
MACOS = platform.system() == "Darwin"


def context(tmp_path: Path, settings: Settings, runtime: str | None = None, artifacts=None) -> GateContext:
    from pipeline.adapter import ModuleAdapter
    from tests.fixtures.parity.artifacts import FixtureArtifacts
    from tests.fixtures.parity.models import reference_and_converted

    reference, _ = reference_and_converted(None)
    spec = ProjectSpec(name="fixture", root=tmp_path, model=ModelSpec(lengths=(8, 16), primary_length=8))
    ctx = GateContext(spec=spec, settings=settings, work_dir=tmp_path, options={"runtime": runtime} if runtime else {})
    ctx.memo.get("adapter", lambda: ModuleAdapter(reference))
    ctx.memo.get("artifacts", lambda: artifacts or FixtureArtifacts(None))
    return ctx


def run(tmp_path: Path, runtime: str | None = None, **settings):
    return PerformanceGate().check(context(tmp_path, Settings(**{**FAST, **settings}), runtime))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return run(tmp_path_factory.mktemp("good"))


def test_without_budgets_it_measures_every_target_and_passes_as_a_warning_gate(good) -> None:
    assert good.status is Status.PASS, good.evidence["failures"]
    assert good.severity is Severity.WARNING and good.score == 1.0
    assert set(good.evidence["targets"]) == {"torch", "onnx_fp32", "coreml_fp32", "coreml_fp16"}
    assert good.summary.startswith("measured, no budgets set")


def test_with_mapped_eager_weights_a_prefill_never_runs_beside_the_others_weights(tmp_path, monkeypatch) -> None:
    """Mapped eager weights (as `shared_adapter` leaves them) are parked ahead of every converted
    prefill call and read back in ahead of every eager one; decode calls are left alone."""
    from gates.model.shared import shared_mapped_weights
    from pipeline.mapped_weights import MappedWeights
    from pipeline.runtimes.eager import EagerRuntime
    from pipeline.runtimes.onnx_runtime import OnnxRuntime

    ctx = context(tmp_path, Settings(**FAST))
    weights = shared_mapped_weights(ctx, ctx.memo.get("adapter", lambda: None).module)
    assert weights.park()
    events: list[str] = []
    for cls, name, label in ((MappedWeights, "park", "park"), (MappedWeights, "resident", "resident"),
                             (EagerRuntime, "run", "torch"), (OnnxRuntime, "run", "onnx")):
        def logged(self, *args, _orig=getattr(cls, name), _label=label):
            if args and _label in ("torch", "onnx"):
                _label += " decode" if "position" in args[0] else " prefill"
            events.append(_label)
            return _orig(self, *args)
        monkeypatch.setattr(cls, name, logged)
    result = PerformanceGate().check(ctx)
    assert result.evidence["targets"]["onnx_fp32"]["timing"]["status"] == "measured"
    first = min(i for i, e in enumerate(events) if e in ("park", "resident"))
    assert "onnx prefill" not in events[:first]  # (eager runs before it: the decode inputs' prefill)
    state, prefills = "", 0
    for event in events[first:]:
        if event in ("park", "resident"):
            state = event
        elif event == "onnx prefill":
            assert state == "park", events
            prefills += 1
        elif event == "torch prefill":
            assert state == "resident", events
    assert prefills >= 5 and "onnx decode" in events
    assert events.index("onnx decode") > max(i for i, e in enumerate(events) if e in ("park", "resident"))


def test_a_large_onnx_prefill_is_closed_while_eager_runs_and_opened_again_ahead_of_its_own_calls(
        tmp_path, monkeypatch) -> None:
    """Only the runtime about to run holds its weights in the prefill rounds: the ONNX prefill
    session is closed ahead of every eager prefill call and opened again ahead of its own, once
    per round (the runtimes' calls are grouped); the eager weights are parked while it runs.
    Decode's inputs (the caches of an eager prefill at every length) are made after those rounds."""
    import weakref

    from gates.model.shared import shared_mapped_weights
    from pipeline.mapped_weights import MappedWeights
    from pipeline.perf import measure
    from pipeline.runtimes.eager import EagerRuntime
    from pipeline.runtimes.onnx_runtime import OnnxRuntime

    monkeypatch.setattr(measure, "REOPEN_BYTES", 0)  # the fixture's model is tiny: treat it as large
    ctx = context(tmp_path, Settings(**FAST))
    assert shared_mapped_weights(ctx, ctx.memo.get("adapter", lambda: None).module).park()  # mapped
    events: list[str] = []
    open_prefills: set[int] = set()
    parked = [False]
    opened = OnnxRuntime.__init__

    def init(self, path, *args, **kwargs):
        opened(self, path, *args, **kwargs)
        if "prefill" in Path(path).name:
            events.append("open")
            open_prefills.add(id(self))
            weakref.finalize(self, lambda key=id(self): (open_prefills.discard(key), events.append("close")))
    monkeypatch.setattr(OnnxRuntime, "__init__", init)
    made = measure.with_decode
    monkeypatch.setattr(measure, "with_decode", lambda *a: events.append("decode inputs") or made(*a))
    for cls, name, label in ((MappedWeights, "park", "park"), (MappedWeights, "resident", "resident"),
                             (EagerRuntime, "run", "torch"), (OnnxRuntime, "run", "onnx")):
        def logged(self, *args, _orig=getattr(cls, name), _label=label):
            if _label in ("park", "resident"):
                parked[0] = _label == "park"
            elif "position" not in args[0]:
                _label += " prefill"
                assert _label != "torch prefill" or not open_prefills, events
                assert _label != "onnx prefill" or parked[0], events
            events.append(_label)
            return _orig(self, *args)
        monkeypatch.setattr(cls, name, logged)
    result = PerformanceGate().check(ctx)
    timing = result.evidence["targets"]["onnx_fp32"]["timing"]
    assert timing["status"] == "measured" and result.status is Status.PASS, timing
    timed = events[events.index("open"):]
    assert timed.count("onnx prefill") >= 5 and timed.count("close") >= 2
    for i, event in enumerate(timed):
        if event == "torch prefill":  # no ONNX prefill session alive: every one opened was closed
            assert timed[:i].count("open") == timed[:i].count("close"), timed
    assert timed.count("open") <= timing["rounds"] + 2  # once per round, plus the probe's
    # decode's caches are made after the prefill rounds (not held through them), on eager weights read back in
    made_at = events.index("decode inputs")
    assert made_at > max(i for i, e in enumerate(events) if e == "onnx prefill")
    assert events[made_at - 1] == "resident" and events[made_at + 1] == "torch prefill"


def test_static_figures_cover_every_file_and_length(good) -> None:
    fp16 = good.evidence["targets"]["coreml_fp16"]
    assert [f["file"] for f in fp16["files"]] == ["prefill_fp16.mlpackage", "decode_fp16.mlpackage"]
    assert fp16["package_bytes"] == sum(f["bytes"] for f in fp16["files"]) > 0
    assert {(r["phase"], r["T"]) for r in fp16["cost"]} == {("prefill", 8), ("prefill", 16), ("decode", 8),
                                                             ("decode", 16)}
    assert fp16["fp16_ops_pct"] == 100.0
    assert good.metrics["coreml_fp16_package_mb"] < good.metrics["coreml_fp32_package_mb"]
    assert good.metrics["prefill_mmacs_T16"] > good.metrics["prefill_mmacs_T8"] > good.metrics["decode_mmacs_T16"]
    assert good.metrics["params"] == sum(p.numel() for p in __import__("tests.fixtures.parity.models",
                                                                        fromlist=["x"]).tiny_student(0).parameters())


def test_onnx_and_eager_are_timed_together_with_intervals_and_the_ratio_to_eager(good) -> None:
    onnx = good.evidence["targets"]["onnx_fp32"]["timing"]
    assert onnx["status"] == "measured" and onnx["rounds"] == 5 and onnx["threads"] == 1
    rows = {(r["phase"], r["T"]): r for r in onnx["rows"]}
    assert set(rows) == {("prefill", 8), ("prefill", 16), ("decode", 8), ("decode", 16)}
    for row in rows.values():
        assert row["ms"]["low"] <= row["ms"]["median"] <= row["ms"]["high"] and row["ms"]["trials"] == 5
        assert row["vs_eager"]["trials"] == 5
    assert good.evidence["intervals"]["onnx_fp32_decode_ms_T16"] == [rows[("decode", 16)]["ms"]["low"],
                                                                     rows[("decode", 16)]["ms"]["high"]]
    assert "onnx_fp32_decode_speedup_ratio" in good.metrics and "torch_decode_ms_T16" in good.metrics


@pytest.mark.skipif(MACOS, reason="off macOS Core ML cannot predict; on macOS it is timed")
def test_core_ml_is_not_timed_off_macos_and_the_mil_interpreter_never_is(good) -> None:
    timing = good.evidence["targets"]["coreml_fp16"]["timing"]
    assert timing["status"] == "not_evaluable" and timing["reason"] == "Core ML prediction needs macOS"
    assert not any(k.startswith("coreml") and "_ms_" in k for k in good.metrics)


def test_tables_and_charts_show_size_compute_and_latency(good) -> None:
    titles = [t["title"] for t in good.evidence["tables"]]
    assert titles[0].startswith("Size per target") and titles[1].startswith("Compute per length")
    assert titles[2].startswith("Latency per length")
    charts = {c["title"]: c for c in good.evidence["charts"]}
    decode = charts["Decode time per token against cache length"]
    assert {s["name"] for s in decode["series"]} == {"PyTorch eager", "ONNX fp32 (onnxruntime)"}
    assert [p["x"] for p in decode["series"][0]["points"]] == [8, 16]
    assert charts["Package size per target"]["kind"] == "bar"


def test_any_budget_makes_it_a_blocker() -> None:
    gate = PerformanceGate()
    assert gate.severity_for(Settings()) is Severity.WARNING
    assert gate.severity_for(Settings(max_package_mb=100.0)) is Severity.BLOCKER
    assert gate.severity_for(Settings(max_decode_ms={"onnx_fp32": 5.0})) is Severity.BLOCKER


def test_a_size_budget_is_judged_on_bytes_on_disk(tmp_path, good) -> None:
    onnx_mb = good.metrics["onnx_fp32_package_mb"]
    tight = run(tmp_path, max_package_mb={"onnx_fp32": round(onnx_mb / 2, 3)})
    assert tight.status is Status.FAIL and tight.severity is Severity.BLOCKER
    [check] = tight.evidence["checks"]
    assert check["budget"] == "max_package_mb" and check["outcome"] == "missed" and check["value"] == round(onnx_mb, 2)
    roomy = run(tmp_path, max_package_mb=onnx_mb * 2)
    assert roomy.status is Status.PASS and roomy.severity is Severity.BLOCKER
    assert [c["outcome"] for c in roomy.evidence["checks"]] == ["met"] * 3


def test_timing_budgets_far_from_any_machine_are_missed_and_met(tmp_path) -> None:
    missed = run(tmp_path, max_decode_ms={"onnx_fp32": 1e-9}, min_prefill_tokens_per_s={"onnx_fp32": 1e15})
    assert missed.status is Status.FAIL
    assert {c["budget"]: c["outcome"] for c in missed.evidence["checks"]} == \
        {"max_decode_ms": "missed", "min_prefill_tokens_per_s": "missed"}
    assert missed.evidence["checks"][0]["where"] == "decode at T=16"  # the longest cache
    met = run(tmp_path, max_decode_ms={"onnx_fp32": 1e9}, min_prefill_tokens_per_s={"onnx_fp32": 1e-9})
    assert met.status is Status.PASS and met.score == 1.0


@pytest.mark.skipif(MACOS, reason="on macOS Core ML is timed, so the budget is judged")
def test_a_timing_budget_on_core_ml_off_macos_is_not_evaluable_never_a_pass(tmp_path) -> None:
    result = run(tmp_path, max_decode_ms=1e9)
    assert result.status is Status.NOT_EVALUABLE and result.severity is Severity.BLOCKER
    assert {c["target"]: c["outcome"] for c in result.evidence["checks"]} == \
        {"onnx_fp32": "met", "coreml_fp32": "unjudged", "coreml_fp16": "unjudged"}
    assert "readiness gate performance --runtime coreml" in result.remediation


@pytest.mark.skipif(MACOS, reason="asks for Core ML timing where it cannot run")
def test_runtime_coreml_off_macos_is_not_evaluable(tmp_path) -> None:
    result = run(tmp_path, runtime="coreml")
    assert result.status is Status.NOT_EVALUABLE
    assert result.evidence["targets"]["onnx_fp32"]["timing"]["status"] == "not_requested"


class FakeCoreML:
    """Stands in for `CoreMLRuntime` on Linux: records how it was opened, answers at once."""

    opened: list[tuple[str, str]] = []

    def __init__(self, path, compute_units: str = "CPU_ONLY") -> None:
        FakeCoreML.opened.append((Path(path).name, compute_units))

    def run(self, inputs):
        return {}


@pytest.fixture
def fake_macos(monkeypatch):
    from pipeline.runtimes import coreml_runtime

    FakeCoreML.opened = []
    monkeypatch.setattr(coreml_runtime, "can_predict", lambda: True)
    monkeypatch.setattr(coreml_runtime, "CoreMLRuntime", FakeCoreML)


def test_runtime_coreml_times_core_ml_with_the_configured_compute_units(tmp_path, fake_macos) -> None:
    result = run(tmp_path, runtime="coreml", compute_units="CPU_AND_NE")
    assert result.status is Status.PASS, result.evidence["failures"]
    assert sorted(set(FakeCoreML.opened)) == [(f"{k}_{p}.mlpackage", "CPU_AND_NE") for k in ("decode", "prefill")
                                              for p in ("fp16", "fp32")]
    fp16 = result.evidence["targets"]["coreml_fp16"]["timing"]
    assert fp16["status"] == "measured" and fp16["compute_units"] == "CPU_AND_NE"
    assert {(r["phase"], r["T"]) for r in fp16["rows"]} == {(p, t) for p in ("prefill", "decode") for t in (8, 16)}


def test_merge_folds_a_macos_core_ml_result_into_a_linux_one(tmp_path, good, fake_macos) -> None:
    linux = good.with_(severity=Severity.BLOCKER)
    macos = run(tmp_path, runtime="coreml", compute_units="ALL")
    merged = PerformanceGate.merge([linux, macos])
    targets = merged.evidence["targets"]
    assert targets["coreml_fp16"]["timing"]["status"] == "measured"
    assert targets["onnx_fp32"]["timing"] == good.evidence["targets"]["onnx_fp32"]["timing"]  # the base's kept
    assert merged.status is Status.PASS and merged.severity is Severity.BLOCKER
    assert "coreml_fp16_decode_ms_T16" in merged.metrics and merged.evidence["merged_from"] == 2


def test_merge_rejudges_budgets_the_linux_run_could_not_judge(tmp_path, fake_macos, monkeypatch) -> None:
    from pipeline.runtimes import coreml_runtime

    monkeypatch.setattr(coreml_runtime, "can_predict", lambda: False)
    linux = run(tmp_path, max_decode_ms=1e9)
    assert linux.status is Status.NOT_EVALUABLE
    monkeypatch.setattr(coreml_runtime, "can_predict", lambda: True)
    macos = run(tmp_path, runtime="coreml", max_decode_ms=1e9)
    merged = PerformanceGate.merge([linux, macos])
    assert merged.status is Status.PASS
    assert {c["outcome"] for c in merged.evidence["checks"]} == {"met"}


def test_the_cache_key_holds_the_settings_and_the_host(tmp_path) -> None:
    from tests.gates.model.context import model_context

    ctx = model_context(Settings(), tmp_path)
    key = PerformanceGate().cache_inputs(ctx)
    other = PerformanceGate().cache_inputs(replace(ctx, settings=Settings(max_decode_ms=5.0)))
    assert key["performance"]["host"] and key["performance"]["node"] == platform.node()
    assert key != other


def test_a_target_that_was_not_built_is_an_error_and_the_others_are_still_measured(tmp_path) -> None:
    from tests.fixtures.parity.artifacts import FixtureArtifacts

    arts = FixtureArtifacts("no_causal_mask", targets=("coreml", "onnx"), precisions=("fp16",))  # no ONNX there
    result = PerformanceGate().check(context(tmp_path, Settings(**FAST), artifacts=arts))
    assert result.status is Status.ERROR and result.summary.startswith("could not measure onnx_fp32")
    assert result.evidence["targets"]["onnx_fp32"]["error"].startswith("not built: no ONNX prefill model")
    assert result.evidence["targets"]["coreml_fp16"]["package_bytes"] > 0


def test_without_a_model_it_is_not_evaluable_never_a_pass(tmp_path) -> None:
    ctx = GateContext(spec=ProjectSpec(name="p", root=tmp_path), settings=Settings(), work_dir=tmp_path)
    result = PerformanceGate().check(ctx)
    assert result.status is Status.NOT_EVALUABLE and result.summary == "no model is configured"


def test_readiness_merge_folds_the_macos_partial_into_the_assessment(tmp_path, good, fake_macos) -> None:
    from readiness import document
    from readiness.merging import merge
    from readiness.scoring import DEFAULT_COMPONENTS, score_components
    from readiness.verdict import decide

    def doc(results):
        score = score_components({r.name: r for r in results}, DEFAULT_COMPONENTS)
        return document.build(generated_at="2026-11-23T12:00:00Z", project={"name": "m", "root": "/p"}, model=None,
                              git={"commit": None, "dirty": None}, host={}, tool_versions={}, config_digest="c",
                              profile="default", results=results, score=score,
                              verdict=decide(results, score, 80.0))

    macos = run(tmp_path, runtime="coreml")
    merged = merge(doc([good]), [doc([macos])])
    gate = next(g for g in merged.document["gates"] if g["name"] == "performance")
    assert gate["evidence"]["targets"]["coreml_fp16"]["timing"]["status"] == "measured"
    assert gate["evidence"]["targets"]["onnx_fp32"]["timing"]["status"] == "measured"
    assert gate["evidence"]["merged_from"] == 2
