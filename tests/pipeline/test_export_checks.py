"""The export checks' reductions walk views piece by piece: same answers as the whole-tensor ones."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline import export_checks
from pipeline.export_checks import all_finite, causal_shift, max_abs_diff, max_abs_err, pieces


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(export_checks, "PIECE", 7)  # forces every path: rows, single rows, 1-D slices


@pytest.mark.parametrize("shape", [(), (5,), (23,), (3, 4), (2, 9, 5), (2, 3, 40), (1, 1, 1)])
def test_pieces_are_views_covering_the_tensor_in_order(small_pieces, shape):
    tensor = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)
    parts = list(pieces(tensor))
    assert torch.equal(torch.cat([p.reshape(-1) for p in parts]), tensor.reshape(-1))
    assert all(p.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
               for p in parts)  # views, not copies
    assert max(p.numel() for p in parts) <= max(7, tensor.numel() if tensor.dim() == 0 else 7)


def test_max_abs_diff_equals_the_whole_tensor_reduction_on_a_strided_slice(small_pieces):
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 6, 11, generator=gen), torch.randn(2, 6, 11, generator=gen)
    want = float((a[:, :-1] - b[:, :-1]).abs().max())
    assert max_abs_diff(a[:, :-1], b[:, :-1]) == want
    assert max_abs_err((a, b), (b, a)) == float((a - b).abs().max())


def test_nan_and_inf_are_caught_in_any_piece(small_pieces):
    a = torch.zeros(3, 5, 9)
    b = a.clone()
    b[2, 4, 8] = float("nan")
    assert math.isnan(max_abs_diff(a, b))
    assert all_finite(a) and not all_finite(b)
    b[2, 4, 8] = float("inf")
    assert not all_finite(b) and max_abs_diff(a, b) == float("inf")


def test_causal_shift_sees_a_change_before_the_last_position_only(small_pieces):
    ids = torch.tensor([[1, 2, 3, 4]])
    base = torch.zeros(1, 4, 10)

    def causal(x):
        out = torch.zeros(1, 4, 10)
        out[0, -1, 0] = float(x[0, -1])  # only the last position sees the last token
        return out

    def leaky(x):
        out = causal(x)
        out[0, 1, 3] = float(x[0, -1])  # position 1 sees the future token
        return out

    assert causal_shift(causal, ids, causal(ids), vocab=50) == 0.0
    assert causal_shift(leaky, ids, leaky(ids), vocab=50) == 1.0
    assert causal_shift(causal, ids, base[:, :3], vocab=50) is None  # shapes differ: silent
