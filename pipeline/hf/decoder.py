"""A transformers causal LM behind the student's prefill/decode conventions.

    >>> decoder = HFDecoder(AutoModelForCausalLM.from_pretrained(folder))   # or any *ForCausalLM
    >>> decoder.arch["n_kv_heads"], decoder.prefill(ids)[0].shape            # logits [B, T, V], then caches

The design choice: Readiness drives transformers' *own* modules (embeddings,
norms, q/k norms, projections, MLPs, learned positions, the family's rotary
variant) and replaces only what does not export or convert:

- attention: `pipeline.hf.attention` (GQA without repeating K/V), picked
  through transformers' `AttentionInterface`;
- rotary: the model's rotary module is swapped for a table of its own
  output (`RotaryTable`), so positions are gathered, never turned into
  angles in fp16;
- the mask: a prepared 4-D additive mask per layer kind (causal, sliding
  window), sliced from tables; families with `layer_types` get a dict;
- the cache: a `FlatCache` that takes and returns flat tensors;
- the head: `get_output_embeddings()` applied to the base model's hidden
  states (the CausalLM forward slices them with `logits_to_keep`, an `alias`
  node coremltools rejects), then the family's final soft-capping.

So what ships is the user's model, not a re-implementation of it;
`transformers_logits` runs the unmodified model for comparison (the
checkpoint gate shows the difference, the tests hold it to fp32 precision
for every verified family). Seeded-defect tests subclass this class and
override `decode_mask` or `decode`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from pipeline.hf import attention
from pipeline.hf.families import arch_from_config, layer_kinds
from pipeline.hf.tables import FlatCache, RotaryTable, mask_tables


class HFDecoder(nn.Module):
    """prefill(input_ids) and decode(input_ids, position, *caches) over a transformers *ForCausalLM."""

    def __init__(self, model: nn.Module, max_seq_len: int | None = None) -> None:
        super().__init__()
        config = model.config
        self.arch = arch_from_config(config, max_seq_len)
        self.model = model.float().eval()
        self.n_layers = self.arch["n_layers"]
        self.original_attention = config._attn_implementation or "eager"
        self.model.set_attn_implementation(attention.register())
        # kept out of the module tree: one copy of each weight in state_dict()
        self._original = {"rotary": getattr(model.base_model, "rotary_emb", None)}
        length = self.arch["max_seq_len"]
        if self.original_rotary is not None:
            self.base.rotary_emb = RotaryTable(self.original_rotary, length)
        self.kinds = layer_kinds(config)
        # families with layer_types take a dict of masks keyed by layer type
        self.mask_by_type = bool(getattr(config, "layer_types", None))
        for kind, table in mask_tables(length, self.kinds, self.arch.get("sliding_window")).items():
            self.register_buffer(f"mask_{kind}", table, persistent=False)
        self.register_buffer("positions", torch.arange(length), persistent=False)

    @property
    def base(self) -> nn.Module:
        """The base model (no head): `LlamaModel`, `GPT2Model`, ..."""
        return self.model.base_model

    @property
    def original_rotary(self) -> nn.Module | None:
        return self._original["rotary"]

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    # -- hooks the seeded-defect fixtures override --------------------------
    def table(self, kind: str) -> Tensor:
        return getattr(self, f"mask_{kind}")

    def prefill_mask(self, t: int) -> Any:
        return self._masks(lambda table: table[:t, :t][None, None])

    def decode_mask(self, position: Tensor, s: int) -> Any:
        return self._masks(lambda table: table.index_select(0, position)[:, :s][None, None])

    def _masks(self, cut: Any) -> Any:
        masks = {kind: cut(self.table(kind)) for kind in dict.fromkeys(self.kinds)}
        if self.mask_by_type:
            return {f"{kind}_attention": mask for kind, mask in masks.items()}
        return masks[self.kinds[0]]

    # -- entry points ---------------------------------------------------------
    def run(self, input_ids: Tensor, positions: Tensor, mask: Any, past: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """The base model over `input_ids` at `positions` [T], then the head; caches flat."""
        cache = FlatCache(self.n_layers, past)
        # positions [1, T] broadcast over the batch: an expand(B, -1) here converts to a tensor
        # whose dims Core ML cannot infer, and the caches would leave the package as [None, 2, None, 16]
        out = self.base(input_ids=input_ids.long(), attention_mask=mask, cache=cache, use_cache=True,
                        position_ids=positions.long()[None])
        return (self.head(out.last_hidden_state), *cache.flat())

    def head(self, hidden: Tensor) -> Tensor:
        logits = self.model.get_output_embeddings()(hidden)
        cap = self.arch.get("final_logit_softcapping")
        return torch.tanh(logits / cap) * cap if cap else logits

    def prefill(self, input_ids: Tensor) -> tuple[Tensor, ...]:
        """input_ids int32 [B, T] -> (logits [B, T, V], k_0, v_0, ...)."""
        t = input_ids.shape[1]
        return self.run(input_ids, self.positions[:t], self.prefill_mask(t), ())

    def decode(self, input_ids: Tensor, position: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        """input_ids int32 [B, 1], position int32 [1] (== cache length), caches -> (logits, caches')."""
        if len(caches) != 2 * self.n_layers:
            raise ValueError(f"decode expects {2 * self.n_layers} cache tensors, got {len(caches)}")
        s = caches[0].shape[2] + 1
        return self.run(input_ids, position, self.decode_mask(position, s), caches)

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.prefill(input_ids)[0]

    # -- the unmodified model ---------------------------------------------------
    @contextlib.contextmanager
    def as_transformers(self) -> Iterator[nn.Module]:
        """The wrapped model with its own attention and rotary module back in place."""
        table = getattr(self.base, "rotary_emb", None)
        self.model.set_attn_implementation(self.original_attention)
        if self.original_rotary is not None:
            self.base.rotary_emb = self.original_rotary
        try:
            yield self.model
        finally:
            self.model.set_attn_implementation(attention.ATTENTION)
            if self.original_rotary is not None:
                self.base.rotary_emb = table

    def transformers_logits(self, input_ids: Tensor) -> Tensor:
        """Logits of transformers' own forward (its attention, rotary and mask) on `input_ids`."""
        with self.as_transformers() as model, torch.no_grad():
            return model(input_ids=input_ids.long(), use_cache=False).logits
