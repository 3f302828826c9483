"""Core ML execution through `MLModel.predict`: macOS only.

Elsewhere construction raises `NotEvaluable` ("Core ML prediction needs
macOS"), which the parity gate reports as a `not_evaluable` target. On Linux
the MIL interpreter (`mil_interpreter`) stands in for it. A stateful package
runs with an `MLState` (`make_state()`, then `run(inputs, state=state)`), the
same calls the interpreter offers, so stateful parity is written once.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.runtimes.base import NotEvaluable

MACOS_ONLY = "Core ML prediction needs macOS"
# Model.proto ArrayDataType codes.
_DTYPES = {65568: np.float32, 65552: np.float16, 65600: np.float64, 131104: np.int32}


def can_predict() -> bool:
    """True where coremltools can call Core ML (macOS with its native module)."""
    if platform.system() != "Darwin":
        return False
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False
    return True


class CoreMLRuntime:
    """An `MLModel` loaded once, predicting on the CPU for reproducible numbers."""

    name = "coreml"

    def __init__(self, path: str | Path, compute_units: str = "CPU_ONLY") -> None:
        if not can_predict():
            raise NotEvaluable(MACOS_ONLY)
        import coremltools as ct

        self.path = Path(path)
        self._model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit[compute_units])
        spec = self._model.get_spec()
        self.input_names = tuple(i.name for i in spec.description.input)
        self.output_names = tuple(o.name for o in spec.description.output)
        # Core ML refuses a float32 array for an fp16 input (and int64 ids).
        self._dtypes = {i.name: _DTYPES.get(i.type.multiArrayType.dataType, np.float32)
                        for i in spec.description.input}

    def make_state(self) -> Any:
        """A fresh `MLState` for a stateful package (iOS18 / macOS 15): read_state, write_state."""
        return self._model.make_state()

    def run(self, inputs: Mapping[str, np.ndarray], state: Any = None) -> dict[str, np.ndarray]:
        """`predict`; a stateful package reads and updates `state` (from `make_state()`)."""
        feed = {k: np.asarray(v).astype(self._dtypes.get(k, np.float32), copy=False) for k, v in inputs.items()}
        out = self._model.predict(feed) if state is None else self._model.predict(feed, state=state)
        return {name: np.asarray(out[name]) for name in self.output_names}
