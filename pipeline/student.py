"""The bundled student: a small decoder-only transformer built to export.

Every choice here serves `torch.export` and Core ML conversion:

- RMSNorm is written by hand (`x * rsqrt(mean(x^2) + eps) * w`): `nn.RMSNorm`
  converts with a different epsilon placement, about 1e-4 off.
- Grouped-query attention reshapes Q to [B, n_kv, rep*T, d_head] and never
  repeats K/V: repeating on the concatenated cache breaks export's shared
  `Dim` over the cache inputs.
- Rotary cos/sin and the additive causal mask are precomputed tables of
  `max_seq_len` rows, gathered by position. Computing angles from a position
  at run time loses precision in fp16, and a table exactly as long as the
  largest enumerated length trips export's `size()[1] != max` guard.

`prefill(input_ids)` returns `(logits, [halt_logits], k_0, v_0, ...)` and
`decode(input_ids, position, k_0, v_0, ...)` returns `(logits, k_0', v_0', ...)`,
flat tuples with caches laid out [B, n_kv_heads, T, d_head]. Seeded-defect
models in the tests subclass `Student` and override one of the small hooks
(`prefill_mask`, `decode_rotary`, `decode_layers`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pipeline.model_configs import MAX_SEQ_LEN_LIMIT, StudentConfig  # noqa: F401 - re-exported

# Additive mask value: exp() of it underflows to exactly 0 and it stays finite in fp16.
MASK_VALUE = -1.0e4


class RMSNorm(nn.Module):
    """Root-mean-square norm, written out so it converts exactly."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(max_seq_len: int, d_head: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos and sin tables [max_seq_len, d_head], halves duplicated (rotate-half layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.float64) / d_head))
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def causal_table(max_seq_len: int) -> Tensor:
    """Additive mask [max_seq_len, max_seq_len]: 0 on and below the diagonal."""
    upper = torch.triu(torch.ones(max_seq_len, max_seq_len, dtype=torch.bool), diagonal=1)
    return torch.zeros(max_seq_len, max_seq_len).masked_fill(upper, MASK_VALUE)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [B, H, T, d] by per-position cos/sin [T, d]."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Grouped-query attention; K/V are never repeated across query heads."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.d_head = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.rep = cfg.n_heads // cfg.n_kv_heads
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * cfg.d_head, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.d_head, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.d_head, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.d_head, cfg.d_model, bias=False)

    def project(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rotated q [B, H, T, d], rotated k and v [B, n_kv, T, d]."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.d_head).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.d_head).transpose(1, 2)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q [B, H, T, d] over k, v [B, n_kv, S, d] with additive mask [T, S] -> [B, T, H*d]."""
        b, _, t, d = q.shape
        s = k.shape[2]
        q = q.reshape(b, self.n_kv, self.rep * t, d)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (d ** -0.5)
        scores = scores.view(b, self.n_kv, self.rep, t, s) + mask
        probs = torch.softmax(scores, dim=-1)
        # A broadcast matmul over the rep axis: a reshape of the matmul result
        # here makes export guard on min(T, T*T) and reject a dynamic T.
        out = torch.matmul(probs, v.unsqueeze(2))  # [B, n_kv, rep, T, d]
        return self.o_proj(out.permute(0, 3, 1, 2, 4).reshape(b, t, self.n_heads * d))


class Block(nn.Module):
    """Pre-norm attention and SwiGLU MLP with residuals."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.rms_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.rms_eps)
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor,
                past_k: Tensor | None = None, past_v: Tensor | None = None,
                ) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.attn.project(self.attn_norm(x), cos, sin)
        if past_k is not None and past_v is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        x = x + self.attn.attend(q, k, v, mask)
        h = self.mlp_norm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return x, k, v


class Student(nn.Module):
    """The bundled decoder-only model with a KV cache and an optional halt head."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.rms_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.halt = nn.Linear(cfg.d_model, 2) if cfg.halt_head else None
        for name, table in self.derived_buffers(cfg).items():
            self.register_buffer(name, table, persistent=False)  # from the config, not the checkpoint

    @staticmethod
    def derived_buffers(cfg: StudentConfig) -> dict[str, Tensor]:
        """The tables computed from the configuration: rotary cos/sin and the causal mask."""
        cos, sin = rotary_tables(cfg.max_seq_len, cfg.d_head, cfg.rope_theta)
        return {"rope_cos": cos, "rope_sin": sin, "causal": causal_table(cfg.max_seq_len)}

    @property
    def arch(self) -> dict[str, Any]:
        return self.cfg.model_arch

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    # -- hooks the seeded-defect fixtures override -------------------------
    def prefill_mask(self, t: int) -> Tensor:
        return self.causal[:t, :t]

    def decode_rotary(self, position: Tensor) -> tuple[Tensor, Tensor]:
        return self.rope_cos.index_select(0, position), self.rope_sin.index_select(0, position)

    def decode_layers(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor,
                      caches: tuple[Tensor, ...]) -> tuple[Tensor, list[Tensor]]:
        new_caches: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, cos, sin, mask, caches[2 * i], caches[2 * i + 1])
            new_caches += [k, v]
        return x, new_caches

    # -- entry points ------------------------------------------------------
    def prefill(self, input_ids: Tensor) -> tuple[Tensor, ...]:
        """input_ids int32 [B, T] -> (logits, [halt_logits], k_0, v_0, ...)."""
        t = input_ids.shape[1]
        x = self.embed(input_ids)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        mask = self.prefill_mask(t)
        caches: list[Tensor] = []
        for block in self.blocks:
            x, k, v = block(x, cos, sin, mask)
            caches += [k, v]
        h = self.norm(x)
        heads = [self.lm_head(h)]
        if self.halt is not None:
            heads.append(self.halt(h[:, -1, :]))
        return (*heads, *caches)

    def decode(self, input_ids: Tensor, position: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        """input_ids int32 [B, 1], position int32 [1] (== T_cache), caches -> (logits, caches')."""
        if len(caches) != 2 * len(self.blocks):
            raise ValueError(f"decode expects {2 * len(self.blocks)} cache tensors, got {len(caches)}")
        s = caches[0].shape[2] + 1
        cos, sin = self.decode_rotary(position)
        mask = self.causal.index_select(0, position)[:, :s]
        x, new_caches = self.decode_layers(self.embed(input_ids), cos, sin, mask, caches)
        return (self.lm_head(self.norm(x)), *new_caches)

    def forward(self, input_ids: Tensor) -> Tensor:
        """Logits only: what training and the teacher use."""
        return self.prefill(input_ids)[0]
