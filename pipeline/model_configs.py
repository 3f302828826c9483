"""Architecture and training settings of the bundled student, without torch.

Kept apart from `student` and `distill` so that deciding whether a cached demo
build can be reused (`demo_assets.cache_key`) never has to import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

# The causal table is max_seq_len^2 floats: 16384 is 1 GiB.
MAX_SEQ_LEN_LIMIT = 16384


@dataclass(frozen=True, slots=True, kw_only=True)
class StudentConfig:
    """Every architecture field; `model_arch` is `dataclasses.asdict` of it."""

    vocab_size: int = 512
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    d_head: int = 16
    d_ff: int = 128
    max_seq_len: int = 640
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_head: bool = True

    def __post_init__(self) -> None:
        positive = ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads",
                    "d_head", "d_ff", "max_seq_len")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"StudentConfig.{name} must be a positive integer, got {value!r}")
        for name in ("rms_eps", "rope_theta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"StudentConfig.{name} must be a positive number, got {value!r}")
        if not isinstance(self.halt_head, bool):
            raise ValueError(f"StudentConfig.halt_head must be true or false, got {self.halt_head!r}")
        if self.max_seq_len > MAX_SEQ_LEN_LIMIT:
            raise ValueError(f"StudentConfig.max_seq_len {self.max_seq_len} exceeds {MAX_SEQ_LEN_LIMIT} "
                             "(the causal table grows with its square)")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"StudentConfig.n_heads ({self.n_heads}) must be a multiple "
                             f"of n_kv_heads ({self.n_kv_heads})")
        if self.d_head % 2:
            raise ValueError(f"StudentConfig.d_head must be even for rotary, got {self.d_head}")

    @property
    def model_arch(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_arch(cls, arch: Mapping[str, Any]) -> StudentConfig:
        """Rebuild from a `model_arch`; raises ValueError naming missing or unknown fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(arch))
        unknown = sorted(set(arch) - names)
        if missing or unknown:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                    ([f"unknown {', '.join(unknown)}"] if unknown else [])
            raise ValueError(f"model_arch does not describe a student: {'; '.join(parts)}")
        return cls(**{name: arch[name] for name in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillConfig:
    """How long and how hard to train; part of the demo cache key."""

    seq_len: int = 48
    batch_size: int = 8
    teacher_steps: int = 60
    student_steps: int = 100
    lr: float = 3e-3
    temperature: float = 2.0
    kd_weight: float = 0.7  # share of the loss from the teacher, the rest is cross-entropy
    halt_weight: float = 0.1
