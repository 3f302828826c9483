"""torch.export of prefill and decode, validated per length and over decode steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.export import ExportOptions, Finding, export_model
from tests.fixtures.export import built, guarded_model
from tests.fixtures.export.tiny_model import TINY_ARCH, TinyAdapter

GUARDED_SOURCE = Path(guarded_model.__file__)


def guarded_line(marker: str) -> int:
    """The line number of the model line marked `# GUARDED LINE: <marker>`."""
    lines = GUARDED_SOURCE.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.endswith(f"# GUARDED LINE: {marker}"))


def test_good_model_validates_every_length_and_decode_step():
    bundle = built.good_artifacts().export
    assert [r.T for r in bundle.rows] == [8, 16]
    assert all(r.status == "ok" and r.max_abs_err is not None and r.max_abs_err <= 1e-4 for r in bundle.rows)
    assert len(bundle.decode_rows) == 4 and bundle.decode_ok and bundle.primary_ok
    assert all(r.prefill_abs_err < 1e-4 for r in bundle.decode_rows)


def test_dynamic_prefill_is_one_program_covering_all_lengths():
    bundle = built.good_artifacts().export
    assert bundle.prefill[8] is bundle.prefill[16]
    assert bundle.prefill_io[1][0].shape == (1, "T", TINY_ARCH["vocab_size"])


def test_decode_io_is_read_from_the_graph_with_a_shared_cache_symbol():
    inputs, outputs = built.good_artifacts().export.decode_io
    assert [t.name for t in inputs] == list(built.good_adapter().decode_input_names())
    assert inputs[1].dtype == "int32" and inputs[1].shape == (1,)
    assert {t.shape for t in inputs[2:]} == {(1, 2, "T_cache", 8)}
    assert {t.shape for t in outputs[1:]} == {(1, 2, "T_cache+1", 8)}


def test_decode_that_ignores_its_cache_is_named_as_such_not_the_prefill():
    bundle = built.ignoring_cache_artifacts().export
    assert bundle.primary_ok  # prefill is fine: only decode is broken
    assert not bundle.decode_ok
    row = bundle.decode_rows[0]
    assert row.max_abs_err == 0.0  # it agrees with its own eager self...
    assert row.prefill_abs_err > 1e-3  # ...but not with prefill
    assert row.findings[:2] == (Finding.DIFFERS_FROM_PREFILL, Finding.IGNORES_CACHE)
    assert Finding.REFERENCE_NOT_CAUSAL not in row.findings
    assert row.reason.startswith("decode logits at position 8 differ from prefill logits at position 8 by up to")
    assert "stay the same when its KV cache is zeroed" in row.reason


def test_prefill_without_a_causal_mask_is_named_as_such_not_the_decode():
    bundle = export_model(TinyAdapter(causal=False), ExportOptions(lengths=(8, 16), primary_length=16,
                                                                    decode_steps=2))
    assert [r.finding for r in bundle.rows] == [Finding.NOT_CAUSAL, Finding.NOT_CAUSAL]
    assert "change by up to" in bundle.row(16).reason
    assert bundle.row(16).reason.endswith("when only the token at position 15 changes: the prefill is not causal")
    for row in bundle.decode_rows:  # decode itself reads its cache and position: only the reference is off
        assert row.findings == (Finding.DIFFERS_FROM_PREFILL, Finding.REFERENCE_NOT_CAUSAL), row.reason
        assert "eager prefill over the decode sequence is not causal" in row.reason


def test_decode_that_ignores_its_position_is_named_as_such():
    class PositionZero(TinyAdapter):
        def decode_module(self):
            module = super().decode_module()
            forward = module.forward
            module.forward = lambda ids, position, *cache: forward(ids, position * 0, *cache)
            return module

    bundle = export_model(PositionZero(), ExportOptions(lengths=(8,), primary_length=8, decode_steps=2))
    assert bundle.primary_ok
    assert bundle.decode_rows[0].findings == (Finding.DIFFERS_FROM_PREFILL, Finding.IGNORES_POSITION)
    assert "when its position is 7 instead of 8" in bundle.decode_rows[0].reason


@pytest.mark.parametrize("lengths", [(8, 16), (8, 12, 16)])
def test_per_length_programs_are_each_checked_against_their_own_shapes(lengths):
    bundle = export_model(TinyAdapter(), ExportOptions(lengths=lengths, primary_length=16, dynamic=False,
                                                       decode_steps=1))
    assert [(r.T, r.status, r.reason) for r in bundle.rows] == [(t, "ok", "") for t in lengths]
    assert len({id(p) for p in bundle.prefill.values()}) == len(lengths)  # one static program each
    assert not bundle.errors
    # the contract's description is symbolic again, as in dynamic mode
    assert bundle.prefill_io[1][0].shape == (1, "T", TINY_ARCH["vocab_size"])
    assert {t.shape for t in bundle.prefill_io[1][2:]} == {(1, 2, "T", 8)}


def test_a_failed_dynamic_export_falls_back_per_length_and_keeps_its_own_error():
    bundle = export_model(guarded_model.EvenLengthAdapter(),
                          ExportOptions(lengths=(8, 12, 16), primary_length=16, decode_steps=2))
    assert bundle.dynamic_failed
    assert [(r.T, r.status) for r in bundle.rows] == [(8, "ok"), (12, "ok"), (16, "ok")]
    assert bundle.errors["prefill_dynamic"].startswith("UserError: Constraints violated (T)!")
    assert "satisfy the generated guard" in bundle.details["prefill_dynamic"]  # the whole message
    assert bundle.decode_ok


def test_a_data_dependent_guard_in_decode_names_the_model_line():
    bundle = export_model(guarded_model.CheckedPositionAdapter(),
                          ExportOptions(lengths=(8,), primary_length=8, decode_steps=1))
    row = bundle.decode_rows[0]
    where = f"guarded_model.py:{guarded_line('decode')} in forward"
    assert row.status == "failed" and row.findings == (Finding.EXPORT_FAILED,)
    assert "GuardOnDataDependentSymNode" in row.reason and where in row.reason and "\n" not in row.reason
    assert row.detail.startswith("model code: ") and where in row.detail.splitlines()[0]
    # the whole guard message, not its first line only
    assert "data-dependent expression u0" in row.detail and "The following call raised this error" in row.detail
    assert where in bundle.errors["decode"] and bundle.details["decode"] == row.detail


def test_a_branch_on_a_tensor_value_in_prefill_names_the_model_line():
    bundle = export_model(guarded_model.CheckedIdsAdapter(),
                          ExportOptions(lengths=(8, 16), primary_length=16, decode_steps=1))
    where = f"guarded_model.py:{guarded_line('prefill')} in forward"
    assert where in bundle.details["prefill_dynamic"].splitlines()[0]
    assert "Eq(u0, 1)" in bundle.details["prefill_dynamic"]
    for row in bundle.rows:
        assert row.finding is Finding.EXPORT_FAILED and where in row.reason and where in row.detail


def test_length_beyond_the_rotary_table_fails_that_row_only():
    # max_seq_len 20: T=32 cannot slice its tables; dynamic export over [8, 32]
    # fails, so each length is exported on its own and only T=32 fails
    adapter = TinyAdapter({**TINY_ARCH, "max_seq_len": 20})
    bundle = export_model(adapter, ExportOptions(lengths=(8, 32), primary_length=8, decode_steps=1))
    assert "prefill_dynamic" in bundle.errors
    assert bundle.row(8).status == "ok"
    assert bundle.row(32).status == "failed" and bundle.row(32).reason


def test_outputs_not_matching_their_names_fail_the_row():
    class ExtraOutput(TinyAdapter):
        def prefill_output_names(self):
            return super().prefill_output_names() + ("extra",)

    bundle = export_model(ExtraOutput(), ExportOptions(lengths=(8,), primary_length=8, decode_steps=1))
    assert bundle.rows[0].status == "failed"
    assert "returned 6 outputs but 7 are named" in bundle.rows[0].reason


def test_nan_outputs_fail_the_row():
    adapter = TinyAdapter()
    with torch.no_grad():
        adapter.module.head.weight[0, 0] = float("nan")
    bundle = export_model(adapter, ExportOptions(lengths=(8,), primary_length=8, decode_steps=1))
    assert bundle.rows[0].status == "failed" and "NaN or Inf" in bundle.rows[0].reason


@pytest.mark.parametrize("kwargs, message", [
    (dict(lengths=(8,), primary_length=16), "primary_length 16 is not one of"),
    (dict(lengths=(1, 8), primary_length=8), "lengths must be >= 2"),
    (dict(lengths=(8,), primary_length=8, decode_prompt_length=1), "decode_prompt_length must be >= 2"),
])
def test_invalid_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExportOptions(**kwargs)
