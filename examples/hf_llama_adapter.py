"""A user's model plugged into Readiness: a tiny Hugging Face Llama.

Point the configuration at this file's `build` callable:

    [tool.readiness.model]
    adapter = "examples.hf_llama_adapter:build"
    checkpoint = "llama.safetensors"     # optional; random seeded weights without it
    tokenizer = "tokenizer.json"

`build` returns an `nn.Module` that follows the bundled student's
conventions, which is all `pipeline.adapter.load_adapter` asks of a user's
model: an `arch` dict (vocab_size, n_layers, n_kv_heads, d_head, halt_head,
and any other field worth recording), `prefill(input_ids)` returning
`(logits, k_cache_0, v_cache_0, ...)` and `decode(input_ids, position,
k_cache_0, v_cache_0, ...)` returning `(logits, k_cache_0', ...)`, caches laid
out [B, n_kv_heads, T, d_head], token ids and positions int32.

Two things make the HF model behave at the boundary:
- the wrapper passes a prepared 4-D additive causal mask, sliced from a
  precomputed table like the student's. transformers' own mask building
  emits ops coremltools 9.0 lacks (`diff`, `new_ones`, `__and__`); a 4-D mask
  is used as given;
- the wrapper calls the base model and applies the LM head itself:
  `LlamaForCausalLM.forward` slices the hidden states (`logits_to_keep`),
  which exports as an `aten.alias` node coremltools cannot convert;
- `num_key_value_heads == num_attention_heads`: HF's eager attention repeats
  K/V heads (`repeat_kv`, expand + reshape), which breaks `torch.export` with
  a named cache `Dim`; with one query head per KV head it is a no-op.

Everything is offline: the model is built from a `LlamaConfig`, never
downloaded (`HF_HUB_OFFLINE=1` is set before transformers is imported).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MASK_VALUE = -1.0e4


def tiny_config(vocab_size: int = 512) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                       max_position_embeddings=640, rms_norm_eps=1e-5, rope_theta=10000.0,
                       attn_implementation="eager", tie_word_embeddings=False)


class LlamaForReadiness(nn.Module):
    """Wraps a `LlamaForCausalLM` in the student's prefill/decode conventions."""

    def __init__(self, llama: nn.Module) -> None:
        super().__init__()
        self.llama = llama
        cfg = llama.config
        self.n_layers = cfg.num_hidden_layers
        self.arch = {"family": "llama", "vocab_size": cfg.vocab_size, "d_model": cfg.hidden_size,
                     "n_layers": cfg.num_hidden_layers, "n_heads": cfg.num_attention_heads,
                     "n_kv_heads": cfg.num_key_value_heads,
                     "d_head": cfg.hidden_size // cfg.num_attention_heads,
                     "d_ff": cfg.intermediate_size, "max_seq_len": cfg.max_position_embeddings,
                     "rms_eps": cfg.rms_norm_eps, "halt_head": False}
        n = cfg.max_position_embeddings
        upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal", torch.zeros(n, n).masked_fill(upper, MASK_VALUE), persistent=False)

    def get_input_embeddings(self) -> nn.Module:
        return self.llama.get_input_embeddings()

    def _run(self, input_ids: Tensor, positions: Tensor, mask: Tensor,
             caches: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.llama.config)
        for i in range(self.n_layers):
            if caches:
                cache.update(caches[2 * i], caches[2 * i + 1], i)
        b = input_ids.shape[0]
        # The base model, then the LM head ourselves: LlamaForCausalLM slices the
        # hidden states (`logits_to_keep`), an `alias` op coremltools cannot convert.
        out = self.llama.model(input_ids=input_ids.long(), attention_mask=mask.expand(b, 1, -1, -1),
                               position_ids=positions.long().unsqueeze(0).expand(b, -1),
                               past_key_values=cache, use_cache=True)
        kv = out.past_key_values
        flat = [t for i in range(self.n_layers) for t in (kv.layers[i].keys, kv.layers[i].values)]
        return (self.llama.lm_head(out.last_hidden_state), *flat)

    def prefill(self, input_ids: Tensor) -> tuple[Tensor, ...]:
        t = input_ids.shape[1]
        positions = torch.arange(t, device=input_ids.device)
        return self._run(input_ids, positions, self.causal[:t, :t][None, None], ())

    def decode(self, input_ids: Tensor, position: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        s = caches[0].shape[2] + 1
        mask = self.causal.index_select(0, position)[:, :s][None, None]
        return self._run(input_ids, position, mask, caches)


def build(checkpoint: Path | None = None, seed: int = 0) -> LlamaForReadiness:
    """The callable named in the configuration: a tiny Llama, weights from `checkpoint` if given."""
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        llama = LlamaForCausalLM(tiny_config())
    if checkpoint is not None:
        from safetensors.torch import load_file  # never pickle

        llama.load_state_dict(load_file(str(checkpoint)), strict=True)
    return LlamaForReadiness(llama.float().eval())
