"""The export gate: primary or decode failing is fail, other lengths warn, no rows is error."""

from __future__ import annotations

from pathlib import Path

from gates.model.export import ExportGate, Settings, judge, measure
from gates.result import Status
from pipeline.export import DecodeRow, ExportBundle, ExportOptions, LengthRow
from tests.fixtures.export import built, guarded_model
from tests.fixtures.export.tiny_model import TinyAdapter


def _bundle(rows, decode_ok=True):
    decode = [DecodeRow(step=0, position=8, status="ok" if decode_ok else "failed",
                        reason="" if decode_ok else "differs", max_abs_err=0.0, prefill_abs_err=0.0)]
    return ExportBundle(options=ExportOptions(lengths=tuple(r.T for r in rows), primary_length=128),
                        rows=tuple(rows), decode_rows=tuple(decode))


def ok(t):
    return LengthRow(T=t, status="ok", max_abs_err=1e-6)


def failed(t):
    return LengthRow(T=t, status="failed", reason="export failed: guard")


def test_good_model_passes_with_per_length_and_decode_tables(tmp_path):
    ctx = built.context(tmp_path, Settings(), artifacts=built.good_artifacts(), adapter=built.good_adapter())
    result = ExportGate().check(ctx)
    assert result.status is Status.PASS, result.summary
    assert result.score == 1.0
    assert result.metrics["lengths_ok"] == 2 and result.metrics["decode_steps_ok"] == 4
    per_length, decode = result.evidence["tables"]
    assert [row[0] for row in per_length["rows"]] == [8, 16] and per_length["rows"][1][1] == "yes"
    assert len(decode["rows"]) == 4


def test_decode_ignoring_its_cache_fails_the_gate_naming_what_was_observed(tmp_path):
    ctx = built.context(tmp_path, Settings(), artifacts=built.ignoring_cache_artifacts(), targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.FAIL
    assert result.summary.startswith("decode failed: its logits differ from prefill's, "
                                     "it ignores its KV cache")
    assert "not causal" not in result.summary
    assert any("stay the same when its KV cache is zeroed" in f["detail"] for f in result.evidence["failures"])
    assert result.remediation


def test_prefill_without_a_causal_mask_fails_the_gate_as_a_prefill_defect(tmp_path):
    ctx = built.context(tmp_path, Settings(), adapter=TinyAdapter(causal=False), targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.FAIL
    assert result.summary.startswith("primary length T=16 failed: the prefill is not causal; "
                                     "decode failed: its logits differ from prefill's, "
                                     "the prefill it is compared with is not causal (")
    assert "ignores" not in result.summary
    details = {f["title"]: f["detail"] for f in result.evidence["failures"]}
    assert details["prefill T=16"].endswith("when only the token at position 15 changes: the prefill is not causal")


def test_per_length_export_of_a_clean_model_passes(tmp_path):
    ctx = built.context(tmp_path, Settings(per_length=True, decode_steps=2), adapter=TinyAdapter(), targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["lengths_ok"] == 2 and "dynamic_prefill_ok" not in result.metrics
    assert result.evidence["failures"] == []


def test_a_model_that_exports_per_length_only_warns_with_the_dynamic_error(tmp_path):
    ctx = built.context(tmp_path, Settings(decode_steps=2), adapter=guarded_model.EvenLengthAdapter(),
                        targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.WARN, result.summary
    assert result.summary.startswith("the dynamic prefill export failed; every length exports and matches eager")
    assert result.metrics["lengths_ok"] == 2 and result.metrics["dynamic_prefill_ok"] == 0
    assert result.score == round(4 / 5, 4)  # 2 lengths + 2 decode steps ok, the dynamic program not
    [failure] = result.evidence["failures"]  # the real cause, not one shape message per length
    assert failure["title"] == "prefill export with a dynamic T over [8, 16]"
    assert "Constraints violated (T)" in failure["detail"] and "satisfy the generated guard" in failure["detail"]
    assert "per_length = true" in result.remediation


def test_a_model_that_exports_per_length_only_passes_with_per_length(tmp_path):
    ctx = built.context(tmp_path, Settings(per_length=True, decode_steps=2),
                        adapter=guarded_model.EvenLengthAdapter(), targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.PASS, result.summary
    assert result.evidence["failures"] == []


def test_an_export_guard_failure_names_the_model_line_in_the_detail(tmp_path):
    ctx = built.context(tmp_path, Settings(decode_steps=1), adapter=guarded_model.CheckedPositionAdapter(),
                        targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.FAIL and result.summary.startswith("decode failed: export failed (")
    assert "\n" not in result.summary
    [failure] = result.evidence["failures"]
    lines = Path(guarded_model.__file__).read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.endswith("# GUARDED LINE: decode"))
    assert f"guarded_model.py:{number} in forward" in failure["detail"].splitlines()[0]
    assert "GuardOnDataDependentSymNode" in failure["detail"] and "data-dependent expression u0" in failure["detail"]


def test_non_primary_length_failing_is_a_warning():
    status, score, summary = judge(_bundle([failed(64), ok(128)]))
    # 64, the dynamic program and decode: 3 of 4 checks ok
    assert status is Status.WARN and "[64]" in summary and score == round(3 / 4, 4)


def test_primary_length_failing_is_a_failure():
    status, _, summary = judge(_bundle([ok(64), failed(128)]))
    assert status is Status.FAIL and "primary length T=128 failed" in summary


def test_nothing_validated_is_an_error_not_a_pass():
    empty = ExportBundle(options=ExportOptions(lengths=(128,), primary_length=128))
    assert judge(empty)[0] is Status.ERROR
    assert measure(empty)["lengths_checked"] == 0


def test_no_model_is_not_evaluable(tmp_path):
    from dataclasses import replace

    ctx = built.context(tmp_path, Settings())
    ctx = replace(ctx, spec=replace(ctx.spec, model=None))
    assert ExportGate().check(ctx).status is Status.NOT_EVALUABLE


def test_gate_loads_the_adapter_and_builds_artifacts_through_the_memo(tmp_path):
    ctx = built.context(tmp_path, Settings(decode_steps=2), targets=())
    result = ExportGate().check(ctx)
    assert result.status is Status.PASS, result.summary
    arts = ctx.memo.get("artifacts", lambda: None)
    assert arts.options.decode_steps == 2 and arts.folder.is_relative_to(tmp_path / "artifacts")
    assert ctx.memo.get("adapter", lambda: None) is not None


def test_later_gates_rebuild_with_the_settings_the_export_result_recorded(tmp_path):
    from dataclasses import replace

    from gates.model.shared import recorded_build_settings as export_settings

    ctx = built.context(tmp_path, Settings(per_length=True, decode_steps=2),
                        artifacts=built.good_artifacts(), adapter=built.good_adapter())
    result = ExportGate().check(ctx)
    later = replace(built.context(tmp_path, None), results={"export": result})
    assert export_settings(later) == Settings(per_length=True, decode_steps=2)
    assert export_settings(built.context(tmp_path, None)) == Settings()
