"""Grouped-query attention in the pattern torch.export and coremltools accept, for transformers models.

transformers lets a model pick its attention function by name
(`AttentionInterface`): every family's attention module computes q, k, v,
its norms and its rotary itself, then calls the function with the cache
already updated. `ATTENTION` is registered under that name and is the only
part of a model Readiness replaces:

- K/V heads are never repeated (`repeat_kv` on a cache with a dynamic
  length breaks `torch.export`'s shared `Dim`): Q is reshaped to
  [B, n_kv, rep*T, d] and the output is a broadcast matmul over the rep axis,
  as in the bundled student (a reshape of the matmul result instead makes
  export guard on `min(T, T*T) == T`);
- soft-capping (`softcap`, Gemma 2) is applied to the scores before the mask;
- the mask is the prepared additive 4-D mask [B|1, 1, T, S], added as is.

Dropout is ignored: the wrapped model is in eval mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

ATTENTION = "readiness"


def grouped_attention(module: Any, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                      scaling: float | None = None, dropout: float = 0.0, softcap: float | None = None,
                      **kwargs: Any) -> tuple[Tensor, None]:
    """query [B, H, T, d], key/value [B, n_kv, S, d] -> ([B, T, H, d], no weights)."""
    b, h, t, d = query.shape
    n_kv, s = key.shape[1], key.shape[2]
    rep = h // n_kv
    scale = d ** -0.5 if scaling is None else scaling
    q = query.reshape(b, n_kv, rep * t, d)
    scores = (torch.matmul(q, key.transpose(-1, -2)) * scale).view(b, n_kv, rep, t, s)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, None]  # [B, 1, 1, T, S] over the rep axis
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, value.unsqueeze(2))  # [B, n_kv, rep, T, d]
    return out.permute(0, 3, 1, 2, 4).reshape(b, t, h, d), None


def register() -> str:
    """Make `ATTENTION` known to transformers (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, grouped_attention)
    return ATTENTION
