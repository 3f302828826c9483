"""The bundled byte-level BPE tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from pipeline.text_tokenizer import (
    SPECIAL_TOKENS,
    TokenizerError,
    corpus_lines,
    corpus_text,
    decode,
    encode,
    fingerprint,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_tokenizer()


def test_special_tokens_take_the_first_ids(tok: Tokenizer) -> None:
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))


def test_vocabulary_reaches_the_requested_size(tok: Tokenizer) -> None:
    assert tok.get_vocab_size() == 512


def test_bpe_merges_shorten_the_corpus(tok: Tokenizer) -> None:
    assert len(encode(tok, corpus_text())) < 0.7 * len(corpus_text().encode())


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_each_special_token_encodes_to_one_id_and_back(tok: Tokenizer, token: str) -> None:
    ids = encode(tok, token)
    assert len(ids) == 1
    assert decode(tok, ids) == token


@settings(derandomize=True, max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_text_round_trips(tok: Tokenizer, text: str) -> None:
    assert decode(tok, encode(tok, text)) == text


def test_corpus_round_trips(tok: Tokenizer) -> None:
    assert all(decode(tok, encode(tok, p)) == p for p in corpus_lines())
    assert len(corpus_lines()) > 10


def test_training_is_deterministic(tok: Tokenizer) -> None:
    assert fingerprint(train_tokenizer()) == fingerprint(tok)


def test_fingerprint_changes_with_the_vocabulary(tok: Tokenizer) -> None:
    assert fingerprint(train_tokenizer(vocab_size=400)) != fingerprint(tok)


def test_saved_tokenizer_loads_with_the_same_fingerprint(tok: Tokenizer, tmp_path: Path) -> None:
    path = save_tokenizer(tok, tmp_path / "sub" / "tokenizer.json")
    assert fingerprint(load_tokenizer(path)) == fingerprint(tok)
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]


def test_unreadable_tokenizer_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError, match="tokenizer.json: not a readable"):
        load_tokenizer(bad)
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "absent.json")
