"""What Readiness reads from a transformers config: architecture fields, layer kinds, the head.

    >>> arch = arch_from_config(config, max_seq_len=256)
    >>> arch["family"], arch["n_kv_heads"], arch["d_head"], arch["layer_kinds"]
    ('mistral', 2, 16, ('sliding', 'sliding'))

`VERIFIED` lists the `model_type`s whose wrapping is tested end to end
(`readiness assess` -> ship on a tiny random model, and logits equal to
transformers' own forward). Another decoder may still load: the checkpoint
gate then compares the wrapper with transformers' forward on that model and
says that its family is not among the verified ones.

A layer is `full` (causal) or `sliding` (causal within `sliding_window`
positions): from `config.layer_types` when the family has them (Gemma 2,
Qwen 2/3), else every layer slides when `config.sliding_window` is set
(Mistral, Phi-3), else every layer is full. Other layer kinds (chunked,
linear attention) are refused with their name.
"""

from __future__ import annotations

from typing import Any

# model_type -> what was verified for it (docs/user-models.md lists the same)
VERIFIED: dict[str, str] = {
    "llama": "Llama 2/3 (incl. llama3 rope scaling), SmolLM (tied embeddings)",
    "mistral": "Mistral (sliding window)",
    "qwen2": "Qwen2 / Qwen2.5 (q/k/v bias)",
    "qwen3": "Qwen3 (q/k norms)",
    "phi3": "Phi-3 (fused qkv and gate/up projections)",
    "gemma2": "Gemma 2 (attention and final logit soft-capping, sliding/full layers)",
    "gpt2": "GPT-2 (learned positions, fused qkv)",
}
# Rope variants whose angles depend on the sequence length seen so far: a
# precomputed table only holds them while no sequence passes this length.
LENGTH_DEPENDENT_ROPE = ("dynamic", "longrope")
DEFAULT_MAX_SEQ_LEN = 2048  # table rows (mask tables grow with its square)
KINDS = {"full_attention": "full", "sliding_attention": "sliding"}


class FamilyError(Exception):
    """A config Readiness cannot wrap; the message names the field and value."""


def _int(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def rope_parameters(config: Any) -> dict[str, Any]:
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_type" not in params and params:
        params = next(iter(params.values()))  # per-layer-type rope: the first kind's
    return dict(params) if isinstance(params, dict) else {}


def layer_kinds(config: Any) -> tuple[str, ...]:
    """"full" or "sliding" per layer; FamilyError for any other attention kind."""
    n_layers = int(config.num_hidden_layers)
    types = getattr(config, "layer_types", None)
    window = getattr(config, "sliding_window", None)
    if types:
        unknown = sorted({t for t in types if t not in KINDS})
        if unknown:
            raise FamilyError(f"layer_types {unknown} are not supported (only full and sliding attention)")
        kinds = tuple(KINDS[t] for t in types[:n_layers])
    else:
        kinds = ("sliding" if window else "full",) * n_layers
    if "sliding" in kinds and not (isinstance(window, int) and window > 0):
        raise FamilyError(f"sliding layers need a positive sliding_window, the config has {window!r}")
    return kinds


def table_length(config: Any, requested: int | None) -> int:
    """Rows of the rotary and mask tables: the longest sequence the exported model serves, plus one."""
    limit = _int(config, "max_position_embeddings", "n_positions") or DEFAULT_MAX_SEQ_LEN
    rope = rope_parameters(config)
    if rope.get("rope_type") in LENGTH_DEPENDENT_ROPE:
        limit = min(limit, int(rope.get("original_max_position_embeddings") or limit))
    if requested is None:
        return min(limit, DEFAULT_MAX_SEQ_LEN)
    if requested > limit:
        raise FamilyError(f"max_seq_len {requested} exceeds what the model supports ({limit})")
    return requested


def arch_from_config(config: Any, max_seq_len: int | None = None) -> dict[str, Any]:
    """The contract's `model_arch`: every field Readiness relies on, read from the config."""
    n_heads = int(config.num_attention_heads)
    hidden = int(config.hidden_size)
    d_head = _int(config, "head_dim") or hidden // n_heads
    rope = rope_parameters(config)
    kinds = layer_kinds(config)
    arch: dict[str, Any] = {
        "family": config.model_type, "verified_family": config.model_type in VERIFIED,
        "vocab_size": int(config.vocab_size), "d_model": hidden, "n_layers": int(config.num_hidden_layers),
        "n_heads": n_heads, "n_kv_heads": _int(config, "num_key_value_heads") or n_heads, "d_head": d_head,
        "d_ff": _int(config, "intermediate_size", "n_inner") or 4 * hidden,
        "max_seq_len": table_length(config, max_seq_len), "halt_head": False,
        "positions": "rotary" if rope else "learned",
        "tie_word_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "layer_kinds": list(kinds),
    }
    if rope:
        arch["rope_theta"] = float(rope.get("rope_theta", 10000.0))
        arch["rope_type"] = str(rope.get("rope_type", "default"))
    if "sliding" in kinds:
        arch["sliding_window"] = int(config.sliding_window)
    for name in ("final_logit_softcapping", "attn_logit_softcapping"):
        if getattr(config, name, None) is not None:
            arch[name] = float(getattr(config, name))
    if arch["n_heads"] % arch["n_kv_heads"]:
        raise FamilyError(f"num_attention_heads {n_heads} is not a multiple of num_key_value_heads "
                          f"{arch['n_kv_heads']}")
    return arch
