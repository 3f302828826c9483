"""A tiny knowledge-distillation loop that produces the demo checkpoint.

A larger teacher of the same family is first fitted to the bundled corpus
with cross-entropy; the student then learns from the teacher's
temperature-softened distribution (KL, scaled by T^2 as in Hinton et al.)
mixed with cross-entropy on the real next tokens. The halt head learns
whether a window ends on `<eos>`. Everything runs in a few seconds on a CPU
and is deterministic under a seed: RNG state is forked (the caller's is left
alone) and deterministic algorithms are switched on for the duration.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch.nn import functional as F

from pipeline.model_configs import DistillConfig, StudentConfig  # noqa: F401 - re-exported
from pipeline.student import Student

TEACHER_CONFIG = StudentConfig(d_model=96, n_layers=3, n_heads=4, n_kv_heads=2, d_head=24,
                               d_ff=192, halt_head=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillResult:
    student: Student
    teacher_loss: float
    student_loss: float
    steps: int
    duration_s: float
    losses: tuple[float, ...] = field(default_factory=tuple)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seeded, deterministic torch for the block; restores the caller's settings."""
    previous, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        # One thread: the same reduction order on every machine, and on a
        # shared 2-core box several threads run up to 10x slower than one.
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)
            torch.set_num_threads(threads)


def batches(stream: torch.Tensor, cfg: DistillConfig, generator: torch.Generator) -> torch.Tensor:
    """A batch of windows [B, seq_len + 1] drawn from the token stream."""
    starts = torch.randint(0, len(stream) - cfg.seq_len - 1, (cfg.batch_size,), generator=generator)
    return torch.stack([stream[s:s + cfg.seq_len + 1] for s in starts.tolist()])


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                 targets: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """KL on temperature-softened logits (times T^2) mixed with cross-entropy."""
    t = cfg.temperature
    kd = F.kl_div(F.log_softmax(student_logits.flatten(0, 1) / t, dim=-1),
                  F.log_softmax(teacher_logits.flatten(0, 1) / t, dim=-1),
                  reduction="batchmean", log_target=True) * t * t  # per token
    ce = F.cross_entropy(student_logits.flatten(0, 1), targets.flatten().long())
    return cfg.kd_weight * kd + (1.0 - cfg.kd_weight) * ce


def _fit_teacher(teacher: Student, stream: torch.Tensor, cfg: DistillConfig,
                 gen: torch.Generator) -> float:
    opt = torch.optim.AdamW(teacher.parameters(), lr=cfg.lr)
    loss = torch.tensor(0.0)
    for _ in range(cfg.teacher_steps):
        window = batches(stream, cfg, gen)
        logits = teacher(window[:, :-1].int())
        loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten().long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _student_step(student: Student, teacher: Student, window: torch.Tensor, eos_id: int,
                  cfg: DistillConfig) -> torch.Tensor:
    inputs, targets = window[:, :-1].int(), window[:, 1:]
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    out = student.prefill(inputs)
    loss = distill_loss(out[0], teacher_logits, targets, cfg)
    if student.halt is not None:
        halted = (inputs[:, -1] == eos_id).long()
        loss = loss + cfg.halt_weight * F.cross_entropy(out[1], halted)
    return loss


def distill(stream: torch.Tensor, student_cfg: StudentConfig, *, eos_id: int, seed: int = 0,
            cfg: DistillConfig = DistillConfig()) -> DistillResult:
    """Fit a teacher on the token stream, then distill it into a fresh student."""
    if len(stream) <= cfg.seq_len + 1:
        raise ValueError(f"token stream of {len(stream)} tokens is shorter than one window "
                         f"({cfg.seq_len + 1})")
    started = time.perf_counter()
    teacher_cfg = TEACHER_CONFIG.__class__(**{**TEACHER_CONFIG.model_arch,
                                              "vocab_size": student_cfg.vocab_size,
                                              "max_seq_len": student_cfg.max_seq_len})
    with deterministic(seed):
        gen = torch.Generator().manual_seed(seed)
        teacher, student = Student(teacher_cfg).train(), Student(student_cfg).train()
        teacher_loss = _fit_teacher(teacher, stream, cfg, gen)
        teacher.eval()
        opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr)
        losses: list[float] = []
        for _ in range(cfg.student_steps):
            loss = _student_step(student, teacher, batches(stream, cfg, gen), eos_id, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return DistillResult(student=student.eval(), teacher_loss=teacher_loss, student_loss=losses[-1],
                         steps=cfg.student_steps, duration_s=time.perf_counter() - started,
                         losses=tuple(losses))
