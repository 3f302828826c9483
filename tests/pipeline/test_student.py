"""The bundled student: shapes, causality, cache consistency, export."""

from __future__ import annotations

import pytest
import torch

from pipeline.student import RMSNorm, Student, StudentConfig


@pytest.fixture(scope="module")
def model() -> Student:
    torch.manual_seed(0)
    return Student(StudentConfig(vocab_size=97, max_seq_len=64)).eval()


def ids(t: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 97, (1, t), generator=g, dtype=torch.int32)


def test_prefill_returns_logits_halt_and_one_cache_pair_per_layer(model: Student) -> None:
    out = model.prefill(ids(7))
    assert out[0].shape == (1, 7, 97)
    assert out[1].shape == (1, 2)
    assert len(out) == 2 + 2 * 2
    assert all(c.shape == (1, 2, 7, 16) for c in out[2:])


def test_prefill_without_halt_head_returns_logits_and_caches_only() -> None:
    m = Student(StudentConfig(vocab_size=11, halt_head=False, max_seq_len=16)).eval()
    out = m.prefill(torch.zeros(1, 3, dtype=torch.int32))
    assert len(out) == 1 + 2 * 2


def test_later_tokens_never_change_earlier_logits(model: Student) -> None:
    a, b = ids(8, seed=1), ids(8, seed=2)
    b[:, :5] = a[:, :5]
    with torch.no_grad():
        la, lb = model.prefill(a)[0], model.prefill(b)[0]
    assert torch.allclose(la[:, :5], lb[:, :5], atol=1e-6)
    assert not torch.allclose(la[:, 5:], lb[:, 5:], atol=1e-3)


def test_decoding_through_the_cache_reproduces_prefill_logits(model: Student) -> None:
    x = ids(9)
    with torch.no_grad():
        full = model.prefill(x)[0]
        caches = model.prefill(x[:, :3])[2:]
        steps = []
        for p in range(3, 9):
            out = model.decode(x[:, p:p + 1], torch.tensor([p], dtype=torch.int32), *caches)
            steps.append(out[0])
            caches = out[1:]
    assert caches[0].shape[2] == 9
    assert torch.allclose(torch.cat(steps, dim=1), full[:, 3:], atol=1e-5)


def test_decode_rejects_a_wrong_number_of_cache_tensors(model: Student) -> None:
    with pytest.raises(ValueError, match="4 cache tensors"):
        model.decode(ids(1), torch.tensor([0], dtype=torch.int32), torch.zeros(1, 2, 0, 16))


def test_rmsnorm_is_the_handwritten_formula() -> None:
    norm = RMSNorm(4, eps=1e-5)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    expected = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-5)
    assert torch.allclose(norm(x), expected)


def test_config_rejects_heads_not_divisible_by_kv_heads() -> None:
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        StudentConfig(n_heads=4, n_kv_heads=3)


def test_config_round_trips_through_model_arch() -> None:
    cfg = StudentConfig(d_ff=96)
    assert StudentConfig.from_arch(cfg.model_arch) == cfg


def test_from_arch_names_missing_fields() -> None:
    arch = StudentConfig().model_arch
    del arch["d_ff"]
    with pytest.raises(ValueError, match="missing d_ff"):
        StudentConfig.from_arch(arch)


@pytest.mark.heavy
def test_prefill_and_decode_export_with_dynamic_lengths() -> None:
    from torch.export import Dim, export

    from pipeline.adapter import ModuleAdapter

    torch.manual_seed(0)
    adapter = ModuleAdapter(Student(StudentConfig(max_seq_len=640)))
    ep = export(adapter.prefill_module(), (ids(10),), dynamic_shapes=({1: Dim("T", min=2, max=512)},))
    assert ep.module()(ids(33))[0].shape == (1, 33, 512)
    cache_dim = Dim("cache", min=2, max=600)
    example = (ids(1), torch.tensor([3], dtype=torch.int32), *(torch.randn(1, 2, 3, 16) for _ in range(4)))
    shapes = {"input_ids": None, "position": None,
              **{n: {2: cache_dim} for n in adapter.decode_input_names()[2:]}}
    dec = export(adapter.decode_module(), example, dynamic_shapes=shapes)
    out = dec.module()(ids(1), torch.tensor([7], dtype=torch.int32), *(torch.randn(1, 2, 7, 16) for _ in range(4)))
    assert out[1].shape == (1, 2, 8, 16)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("d_model", "64", "positive integer"),
    ("n_layers", 0, "positive integer"),
    ("vocab_size", True, "positive integer"),
    ("rms_eps", -1.0, "positive number"),
    ("halt_head", "yes", "true or false"),
    ("max_seq_len", 1 << 20, "exceeds 16384"),
])
def test_config_rejects_bad_field_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StudentConfig(**{field: value})
