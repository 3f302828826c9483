"""Runtimes that execute a model on numpy inputs, all with one interface.

`run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]`:

- `EagerRuntime`: PyTorch eager, the reference;
- `OnnxRuntime`: onnxruntime on CPU;
- `CoreMLRuntime`: Core ML `predict` (macOS only, else `NotEvaluable`);
- `MilInterpreter`: the ML Program of a `.mlpackage`, evaluated in numpy on any host.

`open_coreml(path, prefer)` picks how to run a Core ML package here:
Core ML itself where it can predict, the MIL interpreter elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.runtimes.base import InputShapeError, NotEvaluable, Runtime, UnsupportedOps

__all__ = ["InputShapeError", "NotEvaluable", "Runtime", "UnsupportedOps", "open_coreml"]


def open_coreml(path: str | Path, prefer: str = "auto") -> Runtime:
    """A runtime for a `.mlpackage`: "coreml", "mil", or "auto" (coreml where possible)."""
    from pipeline.runtimes.coreml_runtime import CoreMLRuntime, can_predict
    from pipeline.runtimes.mil_interpreter import MilInterpreter

    if prefer not in ("auto", "coreml", "mil"):
        raise ValueError(f"unknown Core ML runtime {prefer!r} (allowed: auto, coreml, mil)")
    if prefer == "coreml" or (prefer == "auto" and can_predict()):
        return CoreMLRuntime(path)
    return MilInterpreter.load(path)
