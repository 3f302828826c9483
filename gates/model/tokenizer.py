"""The `tokenizer` gate: the contract between the tokenizer and the model.

Checks, one evidence row each:
- `special ids in range`: every special token (the roles in `special_tokens`,
  the `extra_special_tokens`, and every token the tokenizer itself marks
  special) has an id below the model's vocabulary size;
- `special round trip`: each special token encodes to exactly one id and
  decodes back to itself;
- `pad vs eos`: pad and eos differ, unless `pad_may_equal_eos`;
- `generated round trip`: decode(encode(s)) == s over `roundtrip_samples`
  texts from a seeded generator (mixed scripts, whitespace runs, control
  characters, emoji, special-token strings spliced in) — derandomised, so a
  failure reproduces; the same property is tested with hypothesis in tests;
- `corpus round trip`: the same over the bundled corpus paragraphs;
- `vocab vs embedding`: tokenizer size vs the model's embedding rows (equal,
  or larger embedding by at most `vocab_padding_max` documented padding).

Metrics: `checks`, `checks_ok`, `checks_ok_pct`, `special_tokens_checked`,
`roundtrip_samples`, `roundtrip_ok_pct`, `corpus_samples`,
`corpus_roundtrip_ok_pct`, `tokenizer_vocab_size`, `embedding_rows`,
`tokenizer_fingerprint` (the sha256 the contract records). `fail` on any
failed row; `error` when no tokenizer is configured, it cannot be read, or
the model cannot be loaded; `not_evaluable` when no model is configured.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.shared import ModelGate, judge_checks, resolve, shared_adapter
from gates.result import GateResult, Status

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter

MAX_EXAMPLES = 5
# Pieces the generator draws from: each tends to break some tokenizer.
ALPHABETS = ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789",
             " \t\n\r  \n\n", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
             "éèàçñøåßÆÖÜ", "αβγδεπΩ привет", "こんにちは世界漢字", "🙂🚀👍🏽🇵🇹",
             "\u0301\u0308\u200d\ufeff", "\x00\x01\x1b\x7f")


def _default_roles() -> dict[str, str]:
    return {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>", "unk": "<unk>"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    special_tokens: dict[str, str] = field(default_factory=_default_roles)
    extra_special_tokens: tuple[str, ...] = ("<bot>", "<eot>")
    pad_may_equal_eos: bool = False
    roundtrip_samples: int = 300
    max_text_length: int = 64
    vocab_padding_max: int = 0
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    name: str
    ok: bool
    detail: str
    examples: tuple[str, ...] = ()


# -- measuring ------------------------------------------------------------------

def generated_texts(n: int, max_length: int, seed: int, specials: tuple[str, ...] = ()) -> list[str]:
    """Seeded adversarial texts: mixed scripts, whitespace, controls, random code points."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < rng.randint(0, max_length):
            pick = rng.random()
            if pick < 0.08 and specials:
                parts.append(rng.choice(specials))
            elif pick < 0.18:
                cp = rng.randrange(0x20, 0x30000)
                parts.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "?")
            else:
                alphabet = rng.choice(ALPHABETS)
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
        texts.append("".join(parts)[:max_length])
    return texts


def roundtrip(tok: Any, texts: list[str]) -> tuple[int, list[str]]:
    """How many texts round-trip, and the first failing ones (repr, with what came back)."""
    from pipeline.text_tokenizer import decode, encode

    ok, bad = 0, list[str]()
    for text in texts:
        back = decode(tok, encode(tok, text))
        if back == text:
            ok += 1
        elif len(bad) < MAX_EXAMPLES:
            bad.append(f"{text!r} -> {back!r}")
    return ok, bad


def special_tokens(tok: Any, settings: Settings) -> dict[str, int | None]:
    """Every special token to check, with its id (None when the tokenizer lacks it)."""
    names = list(settings.special_tokens.values()) + list(settings.extra_special_tokens)
    names += [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    return {name: tok.token_to_id(name) for name in dict.fromkeys(names)}


def special_rows(tok: Any, ids: dict[str, int | None], model_vocab: int, settings: Settings) -> list[Row]:
    from pipeline.text_tokenizer import decode, encode

    missing = [n for n, i in ids.items() if i is None]
    outside = [f"{n}={i}" for n, i in ids.items() if i is not None and i >= model_vocab]
    in_range = Row(name="special ids in range", ok=not missing and not outside,
                   detail="; ".join(filter(None, [
                       f"not in the vocabulary: {', '.join(missing)}" if missing else "",
                       f"ids outside the embedding ({model_vocab} rows): {', '.join(outside)}" if outside else "",
                   ])) or f"{len(ids)} special tokens, all ids < {model_vocab}")
    broken = [f"{n!r} -> {encode(tok, n)} -> {decode(tok, encode(tok, n))!r}" for n in ids
              if len(encode(tok, n)) != 1 or decode(tok, encode(tok, n)) != n]
    single = Row(name="special round trip", ok=not broken,
                 detail=f"{len(broken)} of {len(ids)} do not encode to one id and back" if broken
                 else f"{len(ids)} special tokens encode to one id and decode back", examples=tuple(broken[:5]))
    pad, eos = ids.get(settings.special_tokens.get("pad", "")), ids.get(settings.special_tokens.get("eos", ""))
    same = pad is not None and pad == eos and not settings.pad_may_equal_eos
    pad_row = Row(name="pad vs eos", ok=not same and pad is not None and eos is not None,
                  detail=f"pad and eos share id {pad} (set pad_may_equal_eos if intended)" if same
                  else f"pad={pad}, eos={eos}")
    return [in_range, single, pad_row]


def vocab_row(tokenizer_vocab: int, embedding_rows: int, padding_max: int) -> Row:
    extra = embedding_rows - tokenizer_vocab
    ok = 0 <= extra <= padding_max
    detail = f"tokenizer {tokenizer_vocab} tokens, embedding {embedding_rows} rows"
    if extra < 0:
        detail += f": {-extra} token ids have no embedding row"
    elif extra > padding_max:
        detail += f": {extra} unused rows exceed the documented padding ({padding_max})"
    return Row(name="vocab vs embedding", ok=ok, detail=detail)


def embedding_rows(adapter: ModelAdapter) -> int:
    getter = getattr(adapter.module, "get_input_embeddings", None)
    embedding = getter() if callable(getter) else None
    weight = getattr(embedding, "weight", None)
    return int(weight.shape[0]) if weight is not None else int(adapter.vocab_size)


# -- judging ----------------------------------------------------------------------

def judge(rows: list[Row]) -> tuple[Status, float, str]:
    return judge_checks(rows, "tokenizer contract checks")


class TokenizerGate(ModelGate, name="tokenizer", after=("checkpoint",), settings=Settings,
                    kinds=(ModelKind.DECODER,)):  # kind = "module": not applicable, reported as such

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        from pipeline.text_tokenizer import TokenizerError, corpus_lines, fingerprint, load_tokenizer

        s: Settings = ctx.settings
        path = resolve(model.tokenizer, ctx.root)
        if path is None:
            raise GateError("no tokenizer is configured (set the model's tokenizer path)")
        try:
            tok = load_tokenizer(path)
        except TokenizerError as exc:
            raise GateError(str(exc)) from None
        adapter = shared_adapter(ctx)
        ids = special_tokens(tok, s)
        rows = special_rows(tok, ids, adapter.vocab_size, s)
        texts = generated_texts(s.roundtrip_samples, s.max_text_length, s.seed, tuple(ids))
        gen_ok, gen_bad = roundtrip(tok, texts)
        rows.append(Row(name="generated round trip", ok=gen_ok == len(texts) > 0, examples=tuple(gen_bad),
                        detail=f"{gen_ok} of {len(texts)} seeded texts round-trip"))
        corpus = corpus_lines()
        corpus_ok, corpus_bad = roundtrip(tok, corpus)
        rows.append(Row(name="corpus round trip", ok=corpus_ok == len(corpus) > 0, examples=tuple(corpus_bad),
                        detail=f"{corpus_ok} of {len(corpus)} corpus paragraphs round-trip"))
        rows.append(vocab_row(tok.get_vocab_size(), embedding_rows(adapter), s.vocab_padding_max))
        metrics = {"special_tokens_checked": len(ids), "roundtrip_samples": len(texts),
                   "roundtrip_ok_pct": round(100.0 * gen_ok / len(texts), 2) if texts else 0.0,
                   "corpus_samples": len(corpus),
                   "corpus_roundtrip_ok_pct": round(100.0 * corpus_ok / len(corpus), 2),
                   "tokenizer_vocab_size": tok.get_vocab_size(), "embedding_rows": embedding_rows(adapter),
                   "tokenizer_fingerprint": fingerprint(tok)}
        return self._result(rows, metrics, ids, str(path))

    def _result(self, rows: list[Row], metrics: dict[str, Any], ids: dict[str, int | None],
                path: str) -> GateResult:
        status, score, summary = judge(rows)
        ok = sum(r.ok for r in rows)
        metrics = {"checks": len(rows), "checks_ok": ok, "checks_ok_pct": round(100.0 * ok / len(rows), 2),
                   **metrics}
        tables = [{"title": "Tokenizer contract", "columns": ["check", "status", "detail"],
                   "rows": [[r.name, "ok" if r.ok else "failed", r.detail] for r in rows]},
                  {"title": "Special tokens", "columns": ["token", "id"],
                   "rows": [[name, i] for name, i in ids.items()]}]
        failures = [{"title": r.name, "detail": "\n".join((r.detail, *r.examples))} for r in rows if not r.ok]
        return GateResult(
            name=self.name, status=status, severity=self.severity, score=score, summary=summary,
            metrics=metrics, evidence={"tables": tables, "failures": failures, "files": [path]},
            remediation="" if status is Status.PASS else
            "Train or resize the model's embedding to the tokenizer it ships with, and keep special "
            "tokens inside the vocabulary as single, distinct ids.")
