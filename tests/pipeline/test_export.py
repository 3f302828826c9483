"""torch.export of prefill and decode, validated per length and over decode steps."""

from __future__ import annotations

import pytest
import torch

from pipeline.export import ExportOptions, export_model
from tests.fixtures.export import built
from tests.fixtures.export.tiny_model import TINY_ARCH, TinyAdapter


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


def test_decode_that_ignores_its_cache_fails_against_prefill():
    bundle = built.ignoring_cache_artifacts().export
    assert bundle.primary_ok  # prefill is fine: only decode is broken
    assert not bundle.decode_ok
    row = bundle.decode_rows[0]
    assert row.max_abs_err == 0.0  # it agrees with its own eager self...
    assert row.prefill_abs_err > 1e-3  # ...but not with prefill
    assert "does not use its cache or its position" in row.reason


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
