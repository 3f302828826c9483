"""The stateful decode package: the KV cache as Core ML state, threaded through chained steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline import stateful_decode
from pipeline.runtimes.mil_interpreter import MilInterpreter
from pipeline.to_coreml import read_package
from tests.fixtures.export import built

CACHE_RANGE = (1, 79)


def _eager_chain(adapter, ids: np.ndarray, steps: int):
    """Reference: prefill, then `steps` greedy decode steps with the caches threaded."""
    prefill, decode = adapter.prefill_module(), adapter.decode_module()
    with torch.no_grad():
        out = prefill(torch.from_numpy(ids))
        caches = list(out[-2 * adapter.n_layers:])
        token, logits = int(out[0][0, -1].argmax()), []
        for step in range(steps):
            position = torch.tensor([ids.shape[1] + step], dtype=torch.int32)
            result = decode(torch.tensor([[token]], dtype=torch.int32), position, *caches)
            logits.append(result[0].numpy())
            caches, token = list(result[1:]), int(result[0][0, -1].argmax())
    return out, logits, caches


def _seed(write, prefill_out, adapter, length: int, shape, dtype) -> None:
    for name, cache in zip(adapter.decode_input_names()[2:], prefill_out[-2 * adapter.n_layers:]):
        full = np.zeros(shape, dtype)
        full[:, :, :length] = cache.numpy()
        write(name, full)


def test_wrapper_appends_each_step_to_its_buffers_like_the_threaded_decode():
    adapter = built.good_adapter()
    module = stateful_decode.wrap(adapter, CACHE_RANGE)
    ids = np.random.default_rng(0).integers(0, 97, (1, 6), dtype=np.int32)
    out, want, caches = _eager_chain(adapter, ids, steps=3)
    _seed(lambda n, v: getattr(module, n).copy_(torch.from_numpy(v)), out, adapter, 6, (1, 2, 80, 8), np.float32)
    token = int(out[0][0, -1].argmax())
    with torch.no_grad():
        for step in range(3):
            logits = module(torch.tensor([[token]], dtype=torch.int32), torch.zeros(1, 6 + step + 1, dtype=torch.int32))
            np.testing.assert_allclose(logits.numpy(), want[step], atol=1e-5)
            token = int(logits[0, -1].argmax())
    np.testing.assert_allclose(module.k_cache_1[:, :, :9].numpy(), caches[2].numpy(), atol=1e-5)


def test_signature_follows_the_kv_layout():
    adapter = built.good_adapter()
    outputs = built.compressed_stateful_artifacts().export.decode_io[1]
    sig = stateful_decode.signature(adapter, CACHE_RANGE, outputs)
    assert [t.name for t in sig.inputs] == ["input_ids", "kv_window"]
    assert sig.inputs[1].shape == (1, "T_cache+1") and [t.name for t in sig.outputs] == ["logits"]
    assert [(t.name, t.shape) for t in sig.states][:2] == [("k_cache_0", (1, 2, 80, 8)),
                                                           ("v_cache_0", (1, 2, 80, 8))]


def test_package_declares_fp16_states_and_the_ops_that_read_and_write_them():
    info = read_package(built.compressed_stateful_artifacts().coreml_package("decode_stateful", "fp16"))
    assert [(s.name, s.dtype, s.shape) for s in info.states][0] == ("k_cache_0", "float16", (1, 2, 80, 8))
    assert [o.name for o in info.outputs] == ["logits"]
    assert info.input("kv_window").ranges[-1] == (2, 80)
    ops = info.state_ops["k_cache_0"]
    assert ops[0].startswith("read_state '") and ops[-1].startswith("write_state of '")


@pytest.mark.parametrize("variant, atol", [("fp16", 2e-2), ("int4_block32", 0.5)])
def test_interpreter_threads_the_state_through_chained_steps(variant, atol):
    arts = built.compressed_stateful_artifacts()
    adapter = built.good_adapter()
    interp = MilInterpreter.load(arts.coreml_package("decode_stateful", variant))
    ids = np.random.default_rng(1).integers(0, 97, (1, 8), dtype=np.int32)
    out, want, caches = _eager_chain(adapter, ids, steps=4)
    state = interp.make_state()
    _seed(state.write_state, out, adapter, 8, (1, 2, 80, 8), np.float16)
    token = int(out[0][0, -1].argmax())
    for step in range(4):
        got = interp.run({"input_ids": np.array([[token]], np.int32),
                          "kv_window": np.zeros((1, 8 + step + 1), np.int32)}, state=state)["logits"]
        np.testing.assert_allclose(got.astype(np.float32), want[step], atol=atol)
        token = int(want[step][0, -1].argmax())
    for name, cache in zip(adapter.decode_input_names()[2:], caches):
        held = state.read_state(name)[:, :, :12].astype(np.float32)
        np.testing.assert_allclose(held, cache.numpy(), atol=atol)
        assert not state.read_state(name)[:, :, 12:].any()  # nothing written past the live rows
