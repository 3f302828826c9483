"""The tokenizer gate: the demo tokenizer passes, broken contracts fail."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.engine.protocol import GateError
from gates.model.tokenizer import Settings, TokenizerGate, generated_texts
from gates.result import Status
from pipeline.text_tokenizer import decode, encode, load_tokenizer
from tests.fixtures.models import demo
from tests.fixtures.models.defects import oversized_tokenizer, special_outside_embedding
from tests.gates.model.context import model_context


def check(tmp_path: Path, s: Settings = Settings(), **kwargs):
    return TokenizerGate().check(model_context(s, tmp_path, **kwargs))


def rows(result) -> dict[str, str]:
    return {r[0]: r[1] for r in result.evidence["tables"][0]["rows"]}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory):
    return check(tmp_path_factory.mktemp("good"))


def test_demo_tokenizer_passes_the_contract(good) -> None:
    assert good.status is Status.PASS, good.summary
    assert set(rows(good).values()) == {"ok"} and len(rows(good)) == 6


def test_metrics_record_samples_and_fingerprint(good) -> None:
    m = good.metrics
    assert m["roundtrip_samples"] == 300 and m["roundtrip_ok_pct"] == 100.0
    assert m["corpus_samples"] > 10 and m["corpus_roundtrip_ok_pct"] == 100.0
    assert m["special_tokens_checked"] == 6
    assert m["tokenizer_vocab_size"] == m["embedding_rows"] == 512
    assert m["tokenizer_fingerprint"] == demo().tokenizer_fingerprint


def test_special_token_outside_the_embedding_fails(tmp_path: Path) -> None:
    tok = special_outside_embedding(demo().tokenizer, tmp_path / "tokenizer.json")
    result = check(tmp_path, tokenizer=tok)
    assert result.status is Status.FAIL
    assert rows(result)["special ids in range"] == "failed"
    assert "<tool>=512" in result.summary


def test_tokenizer_larger_than_the_embedding_fails(tmp_path: Path) -> None:
    tok = oversized_tokenizer(demo().tokenizer, tmp_path / "tokenizer.json")
    result = check(tmp_path, tokenizer=tok)
    assert result.status is Status.FAIL
    assert rows(result)["vocab vs embedding"] == "failed"
    assert rows(result)["special ids in range"] == "ok"


def test_pad_equal_to_eos_fails_unless_declared(tmp_path: Path) -> None:
    roles = {"bos": "<bos>", "eos": "<eos>", "pad": "<eos>", "unk": "<unk>"}
    assert rows(check(tmp_path, Settings(special_tokens=roles)))["pad vs eos"] == "failed"
    allowed = Settings(special_tokens=roles, pad_may_equal_eos=True)
    assert rows(check(tmp_path, allowed))["pad vs eos"] == "ok"


def test_a_missing_special_token_fails(tmp_path: Path) -> None:
    result = check(tmp_path, Settings(extra_special_tokens=("<tool_call>",)))
    assert rows(result)["special ids in range"] == "failed"
    assert "not in the vocabulary: <tool_call>" in result.evidence["failures"][0]["detail"]


def test_a_lossy_tokenizer_fails_the_round_trip(tmp_path: Path) -> None:
    from tokenizers import normalizers

    tok = load_tokenizer(demo().tokenizer)
    tok.normalizer = normalizers.Lowercase()
    path = tmp_path / "lower.json"
    tok.save(str(path))
    result = check(tmp_path, tokenizer=path)
    assert rows(result)["generated round trip"] == "failed"
    assert rows(result)["corpus round trip"] == "failed"


def test_no_tokenizer_configured_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="no tokenizer is configured"):
        check(tmp_path, tokenizer=None)


def test_generated_texts_are_reproducible_and_varied() -> None:
    a, b = generated_texts(50, 40, seed=3), generated_texts(50, 40, seed=3)
    assert a == b and a != generated_texts(50, 40, seed=4)
    joined = "".join(a)
    assert any(ord(c) > 0xFFFF for c in joined) and "\n" in joined and any(ord(c) < 32 for c in joined)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_demo_tokenizer_round_trips_hypothesis_text(text: str) -> None:
    tok = _demo_tokenizer()
    assert decode(tok, encode(tok, text)) == text


@functools.lru_cache(maxsize=1)
def _demo_tokenizer():
    return load_tokenizer(demo().tokenizer)
