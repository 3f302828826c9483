"""The checkpoint gate on the demo model and on seeded defects."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from gates.engine.protocol import GateError
from gates.model.checkpoint import Check, CheckpointGate, Settings, judge, vocab_check
from gates.result import Status
from tests.fixtures.models import demo
from tests.fixtures.models.defects import lying_arch_checkpoint, oversized_tokenizer
from tests.gates.model.context import DEFECTS, model_context


def check(tmp_path: Path, **kwargs):
    return CheckpointGate().check(model_context(Settings(), tmp_path, **kwargs))


def rows(result) -> dict[str, str]:
    return {r[0]: r[1] for r in result.evidence["tables"][0]["rows"]}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory):
    return check(tmp_path_factory.mktemp("good"))


def test_demo_checkpoint_passes_every_check(good) -> None:
    assert good.status is Status.PASS, good.summary
    assert set(rows(good).values()) == {"ok"}
    assert list(rows(good)) == ["loads safely", "metadata complete", "arch hash", "vocab vs tokenizer",
                                "tokenizer fingerprint", "forward pass"]
    assert good.score == 1.0


def test_metrics_carry_hash_and_vocabulary(good) -> None:
    m = good.metrics
    assert m["arch_hash"] == demo().arch_hash
    assert m["model_vocab_size"] == m["tokenizer_vocab_size"] == 512
    assert m["checks"] == m["checks_ok"] == 6 and m["checks_ok_pct"] == 100.0
    assert m["params"] > 0 and m["step"] > 0


def test_evidence_holds_the_architecture_table(good) -> None:
    arch = {r[0]: r[1] for r in good.evidence["tables"][1]["rows"]}
    assert arch["n_kv_heads"] == 2 and arch["max_seq_len"] == 640
    assert good.evidence["files"] == [str(demo().checkpoint)]


def test_architecture_metadata_that_disagrees_with_weights_fails(tmp_path: Path) -> None:
    lying = lying_arch_checkpoint(demo().checkpoint, tmp_path / "lying.safetensors")
    result = check(tmp_path, checkpoint=lying)
    assert result.status is Status.FAIL
    assert rows(result)["arch hash"] == "failed"
    assert "model_arch disagrees with the weights" in result.summary and "lying.safetensors" in result.summary


def test_tokenizer_vocabulary_mismatch_fails(tmp_path: Path) -> None:
    tok = oversized_tokenizer(demo().tokenizer, tmp_path / "tokenizer.json")
    result = check(tmp_path, tokenizer=tok)
    assert result.status is Status.FAIL
    assert rows(result)["vocab vs tokenizer"] == "failed"
    assert rows(result)["tokenizer fingerprint"] == "failed"
    assert "552 tokens but the model only 512" in result.summary


def test_truncated_checkpoint_fails_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(demo().checkpoint.read_bytes()[:1000])
    result = check(tmp_path, checkpoint=bad)
    assert result.status is Status.FAIL
    assert rows(result) == {"loads safely": "failed"}
    assert str(bad) in result.summary


def test_unsafe_pickle_fails_and_never_runs(tmp_path: Path) -> None:
    from tests.pipeline.test_checkpoint import Exploit

    marker, evil = tmp_path / "pwned", tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"state_dict": Exploit(marker)}))
    result = check(tmp_path, checkpoint=evil)
    assert result.status is Status.FAIL and "code execution" in result.summary
    assert not marker.exists()


def test_without_tokenizer_the_gate_warns_rather_than_passes(tmp_path: Path) -> None:
    result = check(tmp_path, tokenizer=None)
    assert result.status is Status.WARN
    assert rows(result)["vocab vs tokenizer"] == "not checked"


def test_missing_checkpoint_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="absent.safetensors: checkpoint file not found"):
        check(tmp_path, checkpoint=tmp_path / "absent.safetensors")


def test_user_adapter_that_cannot_import_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="model could not be loaded"):
        check(tmp_path, adapter="tests.fixtures.models.nope:build")


def test_user_adapter_is_checked_through_its_module(tmp_path: Path) -> None:
    result = check(tmp_path, adapter=f"{DEFECTS}:no_causal_mask")
    assert rows(result)["forward pass"] == "ok"  # loads fine; semantics is what catches it


def test_loaded_adapter_is_shared_with_later_gates(tmp_path: Path) -> None:
    ctx = model_context(Settings(), tmp_path)
    CheckpointGate().check(ctx)
    assert ctx.memo.get("adapter", lambda: None) is not None


def test_padding_within_the_documented_limit_passes() -> None:
    assert vocab_check(520, 512, padding_max=8).status == "ok"
    assert vocab_check(521, 512, padding_max=8).status == "failed"
    assert vocab_check(511, 512, padding_max=8).status == "failed"


def test_nothing_checked_is_never_a_pass() -> None:
    status, _, _ = judge([Check(name="x", status="not checked")])
    assert status is Status.FAIL


def test_a_checkpoint_without_stored_hash_for_a_user_model_only_warns(tmp_path: Path) -> None:
    from pipeline.checkpoint import read_checkpoint, write_checkpoint

    plain = write_checkpoint(tmp_path / "plain.safetensors", read_checkpoint(demo().checkpoint).state_dict, {})
    result = check(tmp_path, adapter="tests.fixtures.models.user_model:build", checkpoint=plain)
    assert result.status is Status.WARN
    assert rows(result)["arch hash"] == "not checked"


def test_incomplete_architecture_metadata_fails_naming_the_file(tmp_path: Path) -> None:
    from pipeline.checkpoint import read_checkpoint, write_checkpoint

    ckpt = read_checkpoint(demo().checkpoint)
    arch = {k: v for k, v in ckpt.model_arch.items() if k not in ("rope_theta", "rms_eps")}
    partial = write_checkpoint(tmp_path / "partial.safetensors", ckpt.state_dict,
                               {"model_arch": arch, "arch_hash": ckpt.arch_hash})
    result = check(tmp_path, checkpoint=partial)
    assert result.status is Status.FAIL
    assert rows(result)["metadata complete"] == "failed"
    assert result.summary.startswith(f"metadata complete: {partial}: model_arch lacks rms_eps, rope_theta")


def test_the_read_weights_are_gone_before_the_forward_pass(tmp_path: Path, monkeypatch) -> None:
    """The adapter holds the weights once it is built: the tensors the gate read must not live on beside
    them while the forward pass reads the model's weights in (two copies of a 1B model otherwise)."""
    import gc
    import weakref

    import gates.model.checkpoint as gate

    read, alive = gate.read_weights, []

    def read_and_watch(path):
        check_row, ckpt = read(path)
        alive.extend(weakref.ref(t) for t in ckpt.state_dict.values())
        return check_row, ckpt

    def forward_after_drop(adapter, ids):
        gc.collect()
        alive_at_forward.append(sum(ref() is not None for ref in alive))
        return forward(adapter, ids)

    forward, alive_at_forward = gate.forward_check, []
    monkeypatch.setattr(gate, "read_weights", read_and_watch)
    monkeypatch.setattr(gate, "forward_check", forward_after_drop)
    result = check(tmp_path)
    assert result.status is Status.PASS, result.summary
    assert len(alive) > 10 and alive_at_forward == [0]
    assert result.metrics["arch_hash"] == demo().arch_hash  # the facts stay


def _memory(result) -> str:
    table = next(t for t in result.evidence["tables"] if t["title"] == "Memory")
    return dict(table["rows"])["eager weights"]


def test_the_report_says_the_loaded_weights_live_in_a_file_map(good) -> None:
    assert good.metrics["weights_mapped"] is True
    assert _memory(good).startswith("mapped to a file")


def test_weights_that_could_not_be_mapped_are_said_to_stay_in_memory_and_why(tmp_path: Path, monkeypatch) -> None:
    """A full disk leaves the weights in memory: the run goes on, and the report says so (never silently)."""
    from pipeline import mapped_weights

    def no_space(tensors, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mapped_weights, "_written_and_mapped", no_space)
    result = check(tmp_path)
    assert result.status is Status.PASS, result.summary  # where the weights live is not a finding
    assert result.metrics["weights_mapped"] is False
    assert _memory(result).startswith("kept in memory (could not write the weights to ")
    assert "No space left on device" in _memory(result)
