"""HFDecoder: the user's transformers model, wrapped, gives transformers' own logits (prefill and decode)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.adapter import load_adapter
from tests.fixtures.hf_models import FAMILIES, MAX_POSITIONS, WINDOW

ATOL = 1e-5  # fp32: the same operations in another order (measured <= 3e-6)


def _ids(vocab: int, t: int = 24) -> torch.Tensor:
    return torch.randint(0, vocab, (2, t), generator=torch.Generator().manual_seed(0), dtype=torch.int32)


@pytest.fixture(scope="module")
def fresh():
    """An unwrapped model loaded straight from the folder: the reference, sharing no state with the wrapper."""
    from transformers import AutoModelForCausalLM

    return lambda folder: AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_wrapper_logits_equal_transformers_forward_in_prefill_and_decode(hf_zoo, fresh, family: str) -> None:
    folder = hf_zoo.folder(family)
    adapter = load_adapter({"adapter": f"hf:{folder}"}, Path("/"))
    ids = _ids(adapter.vocab_size)
    with torch.no_grad():
        reference = fresh(folder)(ids.long()).logits
        prefill = adapter.prefill_module()(ids)
        assert (prefill[0] - reference).abs().max() <= ATOL
        # decode past the sliding window (8) and through the cache, one token at a time
        caches, decode = adapter.prefill_module()(ids[:, :4])[1:], adapter.decode_module()
        for pos in range(4, ids.shape[1]):
            out = decode(ids[:, pos:pos + 1], torch.tensor([pos], dtype=torch.int32), *caches)
            caches = out[1:]
            assert (out[0][:, 0] - reference[:, pos]).abs().max() <= ATOL, pos
    assert caches[0].shape == (2, adapter.n_kv_heads, ids.shape[1], adapter.d_head)
    assert adapter.module.transformers_logits(ids).sub(reference).abs().max() <= ATOL


@pytest.mark.parametrize(("family", "expected"), [
    ("llama", {"n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_head": 16, "positions": "rotary",
               "rope_type": "default", "layer_kinds": ["full", "full"], "tie_word_embeddings": False}),
    ("llama3", {"rope_type": "llama3", "rope_theta": 500000.0}),
    ("smollm", {"n_heads": 3, "n_kv_heads": 1, "d_model": 48, "tie_word_embeddings": True}),
    ("mistral", {"layer_kinds": ["sliding", "sliding"], "sliding_window": WINDOW}),
    ("gemma2", {"layer_kinds": ["sliding", "full"], "final_logit_softcapping": 30.0,
                "attn_logit_softcapping": 50.0}),
    ("gpt2", {"positions": "learned", "n_kv_heads": 4, "max_seq_len": MAX_POSITIONS}),
])
def test_architecture_fields_are_read_from_config_json(hf_zoo, family: str, expected: dict) -> None:
    adapter = load_adapter({"adapter": f"hf:{hf_zoo.folder(family)}"}, Path("/"))
    assert {k: adapter.arch[k] for k in expected} == expected
    assert adapter.arch["family"] == ("llama" if family in ("llama3", "smollm") else family)
    assert adapter.arch["vocab_size"] == adapter.vocab_size == 512 and adapter.arch["halt_head"] is False


def test_the_wrapped_rotary_table_is_the_familys_own_including_llama3_scaling(hf_zoo) -> None:
    adapter = load_adapter({"adapter": f"hf:{hf_zoo.folder('llama3')}"}, Path("/"))
    decoder = adapter.module
    positions = torch.arange(MAX_POSITIONS)[None]
    cos, sin = decoder.original_rotary(torch.zeros(1), positions)
    assert torch.equal(decoder.base.rotary_emb.cos, cos[0]) and torch.equal(decoder.base.rotary_emb.sin, sin[0])
    plain = load_adapter({"adapter": f"hf:{hf_zoo.folder('llama')}"}, Path("/")).module
    assert not torch.allclose(plain.base.rotary_emb.cos, decoder.base.rotary_emb.cos)  # scaling applied


def test_max_seq_len_argument_sizes_the_tables_and_is_checked(hf_zoo) -> None:
    from pipeline.adapter import AdapterError

    folder = hf_zoo.folder("qwen3")
    adapter = load_adapter({"adapter": f"hf:{folder}", "args": {"max_seq_len": 40}}, Path("/"))
    assert adapter.arch["max_seq_len"] == 40 and adapter.module.mask_full.shape == (40, 40)
    with pytest.raises(AdapterError, match=r"max_seq_len 100 exceeds what the model supports \(64\)"):
        load_adapter({"adapter": f"hf:{folder}", "args": {"max_seq_len": 100}}, Path("/"))
    with pytest.raises(AdapterError, match="unknown model.args variant .an hf: model takes max_seq_len"):
        load_adapter({"adapter": f"hf:{folder}", "args": {"variant": "x"}}, Path("/"))
