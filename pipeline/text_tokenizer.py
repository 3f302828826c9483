"""The bundled tokenizer: byte-level BPE trained offline on bundled text.

Byte-level means every string round-trips: any UTF-8 byte has a token, so
`decode(encode(s)) == s` holds for all text, which the tokenizer gate checks.
There is no normalizer (NFC would change the text) and no added prefix
space. Special tokens take the first ids, in `SPECIAL_TOKENS` order:

    >>> tok = train_tokenizer(vocab_size=512)
    >>> [tok.token_to_id(t) for t in SPECIAL_TOKENS]
    [0, 1, 2, 3, 4, 5]

The fingerprint is the sha256 of the canonical tokenizer JSON (keys sorted,
no whitespace), so two tokenizers that behave identically share it whatever
their file's formatting.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

BOS, EOS, PAD, UNK, BOT, EOT = "<bos>", "<eos>", "<pad>", "<unk>", "<bot>", "<eot>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, PAD, UNK, BOT, EOT)
# Roles the tokenizer gate checks by default; tool markers have no role.
SPECIAL_ROLES: dict[str, str] = {"bos": BOS, "eos": EOS, "pad": PAD, "unk": UNK}
DEFAULT_VOCAB_SIZE = 512


class TokenizerError(Exception):
    """A tokenizer file could not be read; the message names it."""


def corpus_path() -> Path:
    return Path(str(resources.files("pipeline") / "data" / "corpus.txt"))


def corpus_text() -> str:
    return corpus_path().read_text(encoding="utf-8")


def corpus_lines() -> list[str]:
    """The bundled corpus as paragraphs: the training and round-trip sample."""
    return [p for p in corpus_text().split("\n\n") if p.strip()]


def train_tokenizer(texts: Iterable[str] | None = None, *,
                    vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    """Train byte-level BPE on `texts` (the bundled corpus by default)."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, show_progress=False)
    tok.train_from_iterator(list(texts) if texts is not None else corpus_lines(), trainer=trainer)
    return tok


def canonical_json(tok: Tokenizer) -> str:
    return json.dumps(json.loads(tok.to_str()), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def fingerprint(tok: Tokenizer) -> str:
    """sha256 of the canonical tokenizer JSON."""
    return hashlib.sha256(canonical_json(tok).encode("utf-8")).hexdigest()


def save_tokenizer(tok: Tokenizer, path: Path) -> Path:
    """Write tokenizer.json atomically (canonical form, so the file is byte-stable)."""
    from pipeline.checkpoint import atomic_write

    return atomic_write(Path(path), lambda tmp: tmp.write_text(canonical_json(tok), encoding="utf-8"))


def load_tokenizer(path: Path) -> Tokenizer:
    """Read a tokenizer.json; raises TokenizerError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"{path}: tokenizer file not found")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TokenizerError(f"{path}: not a readable tokenizer.json ({reason})") from None


def encode(tok: Tokenizer, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def decode(tok: Tokenizer, ids: list[int]) -> str:
    # Special tokens stay in the text: a round trip must give back "<eos>" too.
    return tok.decode(ids, skip_special_tokens=False)
