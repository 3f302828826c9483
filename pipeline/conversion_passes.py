"""Clean-ups of an exported program before Core ML conversion, for graphs transformers emits.

    >>> program = prepare(program.run_decompositions(decompositions()))

- `drop_aliases`: `aten.alias` (what a full-range slice such as
  `q[..., :rotary_dim]` or `hidden[:, -0:]` decomposes to) is identity for
  inference, but coremltools 9.0 has no converter for it ("Unsupported fx
  node alias"). Each alias node is replaced by its input.
- `fill_view_dims`: a reshape's `-1` is spelled out where torch.export
  already knows the dimension (`view(x, [1, s0, -1, 16])` ->
  `view(x, [1, s0, 2, 16])`). Core ML's converter infers a `-1` from the
  symbolic sizes it propagates, and those lose track of a dynamic length
  inside attention (the length after a softmax gets a new symbol), so a
  transformers model that reshapes with `view(*input_shape, -1, head_dim)`
  converts to a package whose later KV caches are declared
  `[1, None, None, 16]` instead of `[1, 2, T, 16]`. A `-1` that stands for a
  dynamic size is left alone.

- `decompositions()`: `gelu(x, approximate="tanh")` (Gemma's
  `gelu_pytorch_tanh`) is decomposed into its formula. torch.export passes
  `approximate` as a keyword, which coremltools 9.0 does not read: it
  silently converts an exact GELU, up to 5e-4 off the tanh one (the parity
  gate showed it as an fp32 miss on Gemma 2); as a positional string it
  fails to convert. An exact GELU stays one `gelu` op.

The passes change the graph in place (a program fresh from `run_decompositions`)
and return the program; the maths is unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch

_VIEWS = ("aten.view.default", "aten.reshape.default", "aten._unsafe_view.default")


def drop_aliases(program: Any) -> Any:
    """Replace every `aten.alias` node by its input."""
    graph = program.graph_module.graph
    aliases = [n for n in graph.nodes if n.op == "call_function" and str(n.target) == "aten.alias.default"]
    for node in aliases:
        node.replace_all_uses_with(node.args[0])
        graph.erase_node(node)
    if aliases:
        program.graph_module.recompile()
    return program


def fill_view_dims(program: Any) -> Any:
    """Replace static `-1` dimensions in view/reshape nodes."""
    changed = False
    for node in program.graph_module.graph.nodes:
        if node.op != "call_function" or str(node.target) not in _VIEWS or len(node.args) < 2:
            continue
        shape, val = list(node.args[1]), node.meta.get("val")
        if -1 not in shape or not isinstance(val, torch.Tensor) or len(val.shape) != len(shape):
            continue
        size = val.shape[shape.index(-1)]
        if isinstance(size, int):
            shape[shape.index(-1)] = size
            node.args = (node.args[0], shape, *node.args[2:])
            changed = True
    if changed:
        program.graph_module.recompile()
    return program


def tanh_gelu(x: torch.Tensor, approximate: str = "none") -> Any:
    """The tanh GELU written out; any other GELU is left to the converter (NotImplemented)."""
    if approximate != "tanh":
        return NotImplemented
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def decompositions() -> dict[Any, Any]:
    """The decomposition table for `run_decompositions` before conversion."""
    return {torch.ops.aten.gelu.default: tanh_gelu}


def prepare(program: Any) -> Any:
    """Both graph clean-ups, aliases first."""
    return fill_view_dims(drop_aliases(program))
