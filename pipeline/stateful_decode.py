"""A decode package that keeps its KV cache inside the model as Core ML state (iOS18).

The plain decode package takes every layer's cache as an input and returns
the grown cache, so an app copies it in and out on every token. A stateful
package holds one fixed-size buffer per cache tensor as `ct.StateType`; each
prediction reads the live rows, appends the new token's k and v
(`slice_update` + `coreml_update_state`) and returns only the logits:

    inputs  input_ids int32 [B, 1]; kv_window int32 [B, T_cache + 1]
    states  k_cache_0, v_cache_0, ... [B, n_kv_heads, state_length, d_head]
    output  logits [B, 1, vocab]

Only the *length* of `kv_window` is read (its values are not): it tells the
program how many cache rows are live (T_cache, the position of the new
token) with a shape, as Core ML's own stateful examples pass a causal mask.
The wrapper is generic over any adapter: it slices the live rows out of each
buffer, calls the adapter's decode entry on them and writes back the last
row of each grown cache, which is what the contract's KV layout promises
(`T_cache` -> `T_cache + 1` on axis 2). A session prefills by writing the
prefill caches into the state (`MLState.write_state`), then decodes.

coremltools' `canonicalize_inplace_pattern` pass trips over several state
updates that follow each other at the end of the program (it indexes an op
list it has just edited), so conversion runs without that pass; it only
reorders ops, which changes nothing the program computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.contract import TensorSpec

WINDOW_INPUT = "kv_window"
KIND = "decode_stateful"


class StatefulDecode(nn.Module):
    """The adapter's decode with its caches as buffers: what converts to Core ML states.

    `read` and `write` are the hooks the seeded-defect fixtures override."""

    def __init__(self, decode: nn.Module, cache_names: Sequence[str], *, n_kv_heads: int, d_head: int,
                 state_length: int, batch: int = 1) -> None:
        super().__init__()
        self.decode = decode
        self.cache_names = tuple(cache_names)
        for name in self.cache_names:
            self.register_buffer(name, torch.zeros(self.state_shape(batch, n_kv_heads, state_length, d_head)))

    def state_shape(self, batch: int, n_kv_heads: int, length: int, d_head: int) -> tuple[int, ...]:
        return (batch, n_kv_heads, length, d_head)

    def read(self, buffer: Tensor, live: int) -> Tensor:
        """The live rows [B, n_kv, live, d] of one buffer."""
        return buffer[:, :, :live]

    def write(self, buffer: Tensor, grown: Tensor, live: int) -> None:
        """Append the new token's row (the last of the grown cache) at row `live`."""
        buffer[:, :, live:live + 1] = grown[:, :, -1:]

    def forward(self, input_ids: Tensor, kv_window: Tensor) -> Tensor:
        live = kv_window.shape[-1] - 1
        position = torch.arange(live, live + 1, dtype=torch.int32)
        buffers = [getattr(self, name) for name in self.cache_names]
        out = self.decode(input_ids, position, *(self.read(b, live) for b in buffers))
        for buffer, grown in zip(buffers, out[1:]):
            self.write(buffer, grown, live)
        return out[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatefulSignature:
    """What the stateful package promises: inputs, the logits output, and its states."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    states: tuple[TensorSpec, ...]
    cache_range: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
                "states": [t.to_dict() for t in self.states], "cache_range": list(self.cache_range)}


def signature(adapter: Any, cache_range: tuple[int, int], decode_outputs: Sequence[TensorSpec],
              batch: int = 1) -> StatefulSignature:
    """The contract entry of the stateful decode: names from the adapter, shapes from the layout."""
    names = adapter.decode_input_names()
    length = state_length(cache_range)
    states = tuple(TensorSpec(name=n, dtype="float32", shape=(batch, adapter.n_kv_heads, length, adapter.d_head))
                   for n in names[2:])
    inputs = (TensorSpec(name=names[0], dtype="int32", shape=(batch, 1)),
              TensorSpec(name=WINDOW_INPUT, dtype="int32", shape=(batch, "T_cache+1")))
    return StatefulSignature(inputs=inputs, outputs=tuple(decode_outputs[:1]), states=states,
                             cache_range=tuple(cache_range))  # type: ignore[arg-type]


def state_length(cache_range: tuple[int, int]) -> int:
    """Rows per state buffer: room for the longest cache plus the token being decoded."""
    return int(cache_range[1]) + 1


def export_stateful(module: StatefulDecode, cache_range: tuple[int, int], example_cache: int,
                    batch: int = 1) -> torch.export.ExportedProgram:
    """torch.export the wrapper with the window's length dynamic over the cache range."""
    from pipeline.export import for_conversion

    dim = torch.export.Dim("T_cache", min=cache_range[0], max=cache_range[1])
    example = (torch.zeros(batch, 1, dtype=torch.int32), torch.zeros(batch, example_cache + 1, dtype=torch.int32))
    program = torch.export.export(module.eval(), example,
                                  dynamic_shapes={"input_ids": None, WINDOW_INPUT: {1: dim + 1}})
    return for_conversion(program)


def wrap(adapter: Any, cache_range: tuple[int, int], batch: int = 1,
         cls: type[StatefulDecode] = StatefulDecode) -> StatefulDecode:
    return cls(adapter.decode_module(), adapter.decode_input_names()[2:], n_kv_heads=adapter.n_kv_heads,
               d_head=adapter.d_head, state_length=state_length(cache_range), batch=batch).eval()


def convert_stateful(program: Any, module: StatefulDecode, *, output_name: str, cache_range: tuple[int, int],
                     precision: str, out_path: Path, deployment: str = "iOS18", batch: int = 1,
                     compression: tuple[str, Any] | None = None) -> Path:
    """One stateful decode package; states are fp16 in fp16 packages (float16 I/O needs iOS16+).

    `compression` is a (graph pass, config) pair from `pipeline.compression.conversion_pass`:
    the optimize API re-runs the default passes, which trip over the state updates, so a
    compressed stateful package is compressed inside its own conversion instead."""
    import coremltools as ct

    from pipeline import to_coreml

    io_float = np.float16 if to_coreml.io_float_dtype(precision, deployment) == "float16" else np.float32
    states = [ct.StateType(wrapped_type=ct.TensorType(shape=tuple(getattr(module, n).shape), dtype=io_float),
                           name=n) for n in module.cache_names]
    window = ct.RangeDim(lower_bound=cache_range[0] + 1, upper_bound=cache_range[1] + 1,
                         default=cache_range[0] + 1)
    inputs = [ct.TensorType(name="input_ids", shape=(batch, 1), dtype=np.int32),
              ct.TensorType(name=WINDOW_INPUT, shape=(batch, window), dtype=np.int32)]
    outputs = [ct.TensorType(name=output_name, dtype=io_float)]
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.remove_passes(["common::canonicalize_inplace_pattern"])
    if compression is not None:
        pass_name, config = compression
        pipeline.append_pass(pass_name)
        pipeline.set_options(pass_name, {"config": config})
    return to_coreml.convert_program(program, inputs, outputs, precision, deployment, Path(out_path), KIND,
                                     states=states, pass_pipeline=pipeline)
