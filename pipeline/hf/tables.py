"""The export-friendly pieces put around a transformers decoder: tables and a flat cache.

- `RotaryTable` stands in for the model's own rotary module. It holds that
  module's cos/sin for positions 0..N-1, computed once in fp32 *by the
  module itself* (so every rope variant and its attention scaling, Llama 3
  scaling included, is the family's own), and gathers rows by position. A
  Core ML fp16 program then never computes an angle: angles computed in fp16
  at run time are about 1e-2 off by position 100.
- `mask_tables` builds additive masks [N, N] (0 where allowed, `MASK_VALUE`
  where not) for causal and sliding-window layers; prefill slices them,
  decode gathers the row of its position. Built from tables, not from
  `arange` comparisons, for the same reason as the bundled student: a table
  longer than the largest length exports with a dynamic length and no guards.
- `FlatCache` is what the model's attention layers call `update()` on: it
  concatenates the incoming cache tensors with the new keys/values and keeps
  the results, so the wrapper returns them as flat tensors. transformers'
  `DynamicCache` starts each layer from an empty 1-D tensor, which leaves
  the batch dimension of a converted prefill package unknown
  (`[None, 4, None, 16]`); a sliding `DynamicCache` also drops old positions,
  where the contract wants a cache that grows by one per step.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# exp() of it underflows to exactly 0 and it stays finite in fp16 (the student's value)
MASK_VALUE = -1.0e4


class RotaryTable(nn.Module):
    """forward(x, position_ids) -> (cos, sin) [B, T, rotary_dim], gathered from precomputed tables."""

    def __init__(self, rotary: nn.Module, length: int) -> None:
        super().__init__()
        with torch.no_grad():
            probe = torch.zeros(1, dtype=torch.float32)
            cos, sin = rotary(probe, torch.arange(length)[None])
        self.register_buffer("cos", cos[0].float().contiguous(), persistent=False)
        self.register_buffer("sin", sin[0].float().contiguous(), persistent=False)

    def forward(self, x: Tensor, position_ids: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        return F.embedding(position_ids, self.cos).to(x.dtype), F.embedding(position_ids, self.sin).to(x.dtype)


def causal_table(length: int, window: int | None = None) -> Tensor:
    """Additive mask [length, length]: query i sees key j when j <= i (and i - j < window)."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    allowed = j <= i
    if window is not None:
        allowed &= (i - j) < window
    return torch.zeros(length, length).masked_fill(~allowed, MASK_VALUE)


def mask_tables(length: int, kinds: Sequence[str], window: int | None) -> dict[str, Tensor]:
    """One table per layer kind present ("full", "sliding")."""
    return {kind: causal_table(length, window if kind == "sliding" else None) for kind in dict.fromkeys(kinds)}


class FlatCache:
    """The cache object handed to a transformers model: flat tensors in, flat tensors out.

    `past` holds k_0, v_0, k_1, v_1, ... (empty for prefill). Each layer's
    `update` returns past + new along the sequence axis and records it.
    """

    is_compileable = False

    def __init__(self, n_layers: int, past: Sequence[Tensor] = ()) -> None:
        self.n_layers = n_layers
        self.past = tuple(past)
        self.out: dict[int, tuple[Tensor, Tensor]] = {}

    def update(self, key: Tensor, value: Tensor, layer_idx: int, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        if self.past:
            key = torch.cat([self.past[2 * layer_idx], key], dim=2)
            value = torch.cat([self.past[2 * layer_idx + 1], value], dim=2)
        self.out[layer_idx] = (key, value)
        return key, value

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.past[0].shape[2]) if self.past else 0

    def flat(self) -> list[Tensor]:
        missing = [i for i in range(self.n_layers) if i not in self.out]
        if missing:
            raise RuntimeError(f"layers {missing} never updated the cache (a layer without attention?)")
        return [t for i in range(self.n_layers) for t in self.out[i]]
