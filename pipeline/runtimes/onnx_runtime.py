"""ONNX execution through onnxruntime's CPU provider.

The session is created once per model file. Inputs are passed by the names
the ONNX graph declares; integer inputs are cast to what the graph expects
(exporters sometimes widen int32 ids to int64). The CPU memory arena and the
memory-pattern planner are off: both keep the largest activations of any run
(at T=2048, gigabytes for a 32k-vocabulary decoder) for the session's life.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline.runtimes.base import InputShapeError, NotEvaluable

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
              "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


class OnnxRuntime:
    """One onnxruntime InferenceSession over a `.onnx` file."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # an optional dependency in some installs
            raise NotEvaluable(f"onnxruntime is not installed: {exc}") from exc
        self.path = Path(path)
        if not self.path.exists():
            raise ValueError(f"{self.path}: no such ONNX model")
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(self.path), options,
                                             providers=["CPUExecutionProvider"])
        self._inputs = {i.name: _ORT_TYPES.get(i.type, np.float32) for i in self._session.get_inputs()}
        self.input_names = tuple(self._inputs)
        self.output_names = tuple(o.name for o in self._session.get_outputs())

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputShapeError(f"{self.path.name}: missing inputs {', '.join(missing)}")
        feed = {n: np.asarray(inputs[n]).astype(t, copy=False) for n, t in self._inputs.items()}
        values = self._session.run(None, feed)
        return dict(zip(self.output_names, values))
