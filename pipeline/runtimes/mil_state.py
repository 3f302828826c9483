"""Core ML state for the MIL interpreter: what `MLState` holds between predictions.

An iOS18 stateful program (a KV cache kept inside the model) declares state
inputs; its ops read them (`read_state`) and write them back
(`coreml_update_state`, often of a `slice_update` of what was read). Core ML
keeps the values in an `MLState` made by `model.make_state()` and passed to
every `predict(..., state=state)`; the interpreter mirrors that API:

    >>> state = interp.make_state()                    # zeros, one buffer per state input
    >>> state.write_state("k_cache_0", prefill_k)      # full shape, as MLState.write_state
    >>> interp.run({"input_ids": ids, "kv_window": w}, state=state)
    >>> state.read_state("k_cache_0").shape
    (1, 2, 640, 16)

Values are held the way the interpreter holds activations: fp16 states as
float32 arrays of fp16-rounded values. `read_state` hands them out in the
declared dtype. A run works on a copy of the values and commits it only when
every op succeeded, so a failed prediction leaves the state as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSpec:
    """One state input as the program declares it."""

    name: str
    shape: tuple[int, ...]
    dtype: type  # np.float16, np.float32, np.int32, ...


def held(spec: StateSpec, value: Any) -> np.ndarray:
    """`value` as the state stores it (fp16 rounded, held as float32), shape-checked."""
    value = np.asarray(value)
    if tuple(value.shape) != spec.shape:
        raise ValueError(f"state {spec.name!r} is {list(spec.shape)}; got a value of shape {list(value.shape)}")
    if spec.dtype is np.float16:
        return value.astype(np.float16).astype(np.float32)
    return np.array(value, spec.dtype)


class MilState:
    """The states of one decode session: read, written, threaded through runs."""

    def __init__(self, specs: Mapping[str, StateSpec]) -> None:
        self.specs = dict(specs)
        self._values: dict[str, np.ndarray] = {
            name: np.zeros(spec.shape, np.float32 if spec.dtype is np.float16 else spec.dtype)
            for name, spec in self.specs.items()}

    def _spec(self, name: str) -> StateSpec:
        if name not in self.specs:
            raise KeyError(f"no state {name!r} (the program has {', '.join(self.specs) or 'none'})")
        return self.specs[name]

    def read_state(self, name: str) -> np.ndarray:
        """A copy of the state's value, in its declared dtype."""
        spec = self._spec(name)
        return self._values[name].astype(spec.dtype)

    def write_state(self, name: str, value: np.ndarray) -> None:
        """Replace the state's value (same shape), as MLState.write_state does."""
        self._values[name] = held(self._spec(name), value)

    def session(self) -> dict[str, np.ndarray]:
        """The working copy one run reads and updates."""
        return dict(self._values)

    def commit(self, values: Mapping[str, np.ndarray]) -> None:
        """Keep what a successful run wrote."""
        self._values.update(values)
