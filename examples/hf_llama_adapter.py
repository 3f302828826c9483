"""A user's own callable: a Llama built in code, one callable for several variants.

Most Hugging Face models need no code at all (`adapter = "hf:<folder>"`).
Write a callable when the model is built or patched in code; Readiness calls
it with `[model.args]` as keyword arguments:

    [model]
    adapter = "examples.hf_llama_adapter:build"
    tokenizer = "tokenizer.json"

    [model.args]
    variant = "gqa"      # or "mha": the same callable, another variant
    seed = 0

`pipeline.hf.HFDecoder` wraps any transformers `*ForCausalLM` in the
prefill/decode conventions (prepared masks, gathered rotary, grouped-query
attention that exports with a dynamic cache length, the head outside
`forward`), so the callable only builds the model. Weights are random from
`seed` unless a safetensors `checkpoint` is configured. Offline: nothing is
downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 64, "initializer_range": 0.1,
        "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2}
VARIANTS = {"gqa": {"num_key_value_heads": 2}, "mha": {"num_key_value_heads": 4}}


def build(checkpoint: Path | None = None, variant: str = "gqa", seed: int = 0) -> Any:
    """The callable the configuration names; `variant` and `seed` come from [model.args]."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipeline.hf import HFDecoder

    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**TINY, **VARIANTS[variant]))
    if checkpoint is not None:
        from safetensors.torch import load_file  # never a pickle

        model.load_state_dict(load_file(str(checkpoint)), strict=True)
    return HFDecoder(model)
