"""PyTorch eager execution: the reference every converted program is held to.

Wraps an `nn.Module` whose forward takes tensors in `input_names` order and
returns a tensor or a flat tuple in `output_names` order (the adapter's
prefill and decode modules). Runs under `torch.inference_mode`, in float32.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from pipeline.runtimes.base import InputShapeError


class EagerRuntime:
    """Runs a module on numpy inputs and names its outputs."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, input_names: tuple[str, ...],
                 output_names: tuple[str, ...]) -> None:
        self.module = module.eval()
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputShapeError(f"missing inputs: {', '.join(missing)}")
        args = [torch.from_numpy(_writable(inputs[n])) for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.output_names):
            raise ValueError(f"the module returned {len(outs)} outputs; expected "
                             f"{len(self.output_names)} ({', '.join(self.output_names)})")
        return {n: t.detach().float().numpy() if t.is_floating_point() else t.numpy()
                for n, t in zip(self.output_names, outs)}


def _writable(value: np.ndarray) -> np.ndarray:
    """A contiguous array torch may wrap (a read-only one, e.g. memory-mapped, is copied)."""
    array = np.ascontiguousarray(value)
    return array if array.flags.writeable else array.copy()
