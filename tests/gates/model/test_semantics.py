"""The semantics gate: the demo model passes, each seeded defect is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.engine.protocol import GateError
from gates.model.semantics import SemanticsGate, Settings
from gates.model.shared import ADAPTER
from gates.result import Status
from tests.gates.model.context import DEFECTS, model_context


def check(tmp_path: Path, settings: Settings = Settings(), **kwargs):
    return SemanticsGate().check(model_context(settings, tmp_path, **kwargs))


def rows(result) -> dict[str, str]:
    return {r[0]: r[1] for r in result.evidence["tables"][0]["rows"]}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory):
    return check(tmp_path_factory.mktemp("good"))


def test_demo_model_passes_every_semantic_check(good) -> None:
    assert good.status is Status.PASS, good.summary
    assert rows(good) == {"causality": "ok", "prefill/decode": "ok", "determinism": "ok", "finite": "ok"}


def test_metrics_show_what_was_measured(good) -> None:
    m = good.metrics
    assert m["decode_steps"] == 20 and m["cut_points"] == 4
    assert m["decode_max_abs_err"] <= 1e-4 and m["causality_max_abs_err"] <= 1e-5
    assert m["determinism_max_abs_err"] == 0.0 and m["nonfinite_values"] == 0
    assert m["checks"] == m["checks_ok"] == 4


def test_model_without_causal_mask_fails_causality(tmp_path: Path) -> None:
    result = check(tmp_path, adapter=f"{DEFECTS}:no_causal_mask")
    assert result.status is Status.FAIL
    assert rows(result)["causality"] == "failed"
    assert result.summary.startswith("causality: changing tokens after position")


def test_decode_that_ignores_its_cache_fails_consistency(tmp_path: Path) -> None:
    result = check(tmp_path, adapter=f"{DEFECTS}:decode_ignores_cache")
    assert result.status is Status.FAIL
    assert rows(result)["causality"] == "ok"
    assert rows(result)["prefill/decode"] == "failed"
    assert "decode logits at position 4 differ from prefill" in result.summary


def test_decode_with_position_fixed_at_zero_fails_consistency(tmp_path: Path) -> None:
    result = check(tmp_path, adapter=f"{DEFECTS}:decode_position_zero")
    assert result.status is Status.FAIL
    assert rows(result)["prefill/decode"] == "failed"
    assert rows(result)["causality"] == "ok"


def test_tight_tolerance_turns_rounding_into_a_failure(tmp_path: Path) -> None:
    # Shows the tolerance is really applied: fp32 decode differs from prefill by rounding.
    result = check(tmp_path, Settings(decode_atol=0.0))
    assert rows(result)["prefill/decode"] == "failed"


def test_reuses_the_adapter_a_previous_gate_loaded(tmp_path: Path) -> None:
    ctx = model_context(Settings(), tmp_path, adapter=f"{DEFECTS}:no_causal_mask")
    from pipeline.adapter import load_adapter
    from tests.fixtures.models import demo

    ctx.memo.get(ADAPTER, lambda: load_adapter({"checkpoint": demo().checkpoint}, Path(".")))
    assert SemanticsGate().check(ctx).status is Status.PASS  # the good model from the memo


def test_a_prefix_as_long_as_the_sample_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="prefix_length"):
        check(tmp_path, Settings(sample_length=8, prefix_length=8))
