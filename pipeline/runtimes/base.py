"""The runtime protocol every backend follows, and the errors they share.

A runtime executes one converted program on numpy inputs and returns numpy
outputs by name, so parity code compares backends without knowing which is
which:

    >>> runtime = EagerRuntime(module, input_names=("x",), output_names=("y",))  # doctest: +SKIP
    >>> runtime.run({"x": np.ones((1, 4), np.float32)})["y"].shape  # doctest: +SKIP
    (1, 4)

A backend that cannot execute here (Core ML prediction off macOS, a MIL op
the interpreter does not know) raises `NotEvaluable`: the parity gate turns
that into a `not_evaluable` target, never a pass. `InputShapeError` is a
caller's mistake (a shape the package does not allow) and is a plain
ValueError.
"""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

import numpy as np


class NotEvaluable(RuntimeError):
    """This runtime cannot execute the program on this host; the message says why."""


class UnsupportedOps(NotEvaluable):
    """The MIL program uses op types the interpreter cannot evaluate."""

    def __init__(self, op_types: tuple[str, ...], source: str = "") -> None:
        self.op_types = tuple(sorted(set(op_types)))
        where = f" in {source}" if source else ""
        super().__init__(f"unsupported MIL ops{where}: {', '.join(self.op_types)}")


class InputShapeError(ValueError):
    """An input's name, dtype or shape is not one the program accepts."""


@runtime_checkable
class Runtime(Protocol):
    """Anything that maps named numpy inputs to named numpy outputs."""

    name: str

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...
