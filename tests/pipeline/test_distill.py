"""The distillation loop: it learns, and it is deterministic under a seed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.distill import DistillConfig, deterministic, distill, distill_loss
from pipeline.student import StudentConfig

TINY = StudentConfig(vocab_size=32, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, d_head=16,
                     d_ff=64, max_seq_len=32)
FAST = DistillConfig(seq_len=12, batch_size=4, teacher_steps=15, student_steps=25)


@pytest.fixture(scope="module")
def stream() -> torch.Tensor:
    # A repeating pattern a model can learn in a few steps; 31 stands in for <eos>.
    return torch.tensor(([1, 2, 3, 4, 5, 6, 7, 31] * 40), dtype=torch.int64)


@pytest.fixture(scope="module")
def result(stream: torch.Tensor):
    return distill(stream, TINY, eos_id=31, seed=3, cfg=FAST)


def test_student_loss_falls_during_distillation(result) -> None:
    assert sum(result.losses[-5:]) / 5 < 0.7 * sum(result.losses[:5]) / 5


def test_same_seed_gives_identical_weights(stream: torch.Tensor, result) -> None:
    again = distill(stream, TINY, eos_id=31, seed=3, cfg=FAST)
    for name, value in result.student.state_dict().items():
        assert torch.equal(value, again.student.state_dict()[name]), name


def test_another_seed_gives_other_weights(stream: torch.Tensor, result) -> None:
    other = distill(stream, TINY, eos_id=31, seed=4, cfg=dataclasses.replace(FAST, student_steps=2,
                                                                               teacher_steps=2))
    assert not torch.equal(other.student.embed.weight, result.student.embed.weight)


def test_caller_rng_and_settings_are_left_alone(stream: torch.Tensor) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    with deterministic(7):
        torch.rand(10)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_loss_is_zero_kd_when_student_matches_teacher() -> None:
    logits = torch.randn(2, 3, 5)
    targets = torch.zeros(2, 3, dtype=torch.int64)
    cfg = DistillConfig(kd_weight=1.0)
    assert float(distill_loss(logits, logits, targets, cfg)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_loss(logits, -logits, targets, cfg)) > 0.1


def test_a_stream_shorter_than_a_window_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than one window"):
        distill(torch.arange(5), TINY, eos_id=31, cfg=FAST)
