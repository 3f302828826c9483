"""Inputs for a module model: seeded random ones per shape, and the user's real examples.

Inputs are kept as the *package* takes them: for an image input that is
pixel values (0..255), which a Core ML image input scales and shifts itself;
`model_inputs` applies the same `scale * pixel + bias` for PyTorch and
ONNX, which take the module's own input.

    >>> feed = random_inputs(io, io.cases()[0], seed=0)        # {"spectrogram": float32 [1, 1, 128, 64]}
    >>> model_inputs(io, feed)                                  # the same, images preprocessed
    >>> load_examples(io, root)                                 # [Example(case, inputs), ...] from `examples`

Random floats are standard normal unless the input declares a value range
(then uniform in it); integers are uniform over their declared range. Real
examples come from the `examples` callable, which is called with the
keyword arguments it accepts among `root` and `cases` (each case a dict of
dimension sizes) and returns an iterable of {input name: array}; each must
hold every declared input at one of the declared shapes. Problems raise
`ExampleError` naming the example and the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.module_io import INT_DTYPES, InputDecl, ModuleIO, ShapeCase

MAX_EXAMPLES = 16
PIXEL_RANGE = (0.0, 255.0)
_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


class ExampleError(ValueError):
    """The examples callable failed or yielded something unusable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """One real input, in the shape case it falls into."""

    case: ShapeCase
    inputs: Mapping[str, np.ndarray]


def _random(inp: InputDecl, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    dtype = _NP[inp.dtype]
    if inp.image is not None:
        return rng.uniform(*PIXEL_RANGE, size=shape).round().astype(dtype)
    if inp.dtype in INT_DTYPES:
        low, high = inp.value_range  # type: ignore[misc]
        return rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
    if inp.dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if inp.value_range is not None:
        return rng.uniform(*inp.value_range, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def random_inputs(io: ModuleIO, case: ShapeCase, seed: int, salt: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs at one shape case; `salt` gives another draw (export example vs check)."""
    key = [seed, salt, *[v for v in case.env.values()]]
    rng = np.random.default_rng(key)
    return {inp.name: _random(inp, io.input_shape(inp, case.env), rng) for inp in io.inputs}


def model_inputs(io: ModuleIO, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The module's own inputs: image pixels scaled and shifted as the package does it."""
    out = dict(inputs)
    for inp in io.inputs:
        if inp.image is None or inp.name not in out:
            continue
        bias = np.asarray(inp.image.bias, np.float32).reshape(1, -1, 1, 1)
        out[inp.name] = (np.asarray(out[inp.name], np.float32) * np.float32(inp.image.scale) + bias
                         ).astype(np.float32)
    return out


def case_of(io: ModuleIO, inputs: Mapping[str, np.ndarray]) -> ShapeCase | None:
    """The declared case whose shapes these inputs have, or None."""
    for case in io.cases():
        if all(tuple(np.shape(inputs[i.name])) == io.input_shape(i, case.env) for i in io.inputs):
            return case
    return None


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _checked(io: ModuleIO, raw: Any, index: int) -> Example:
    if not isinstance(raw, Mapping):
        raise ExampleError(f"example {index} is {type(raw).__name__}, not a mapping of input name to array")
    names = [i.name for i in io.inputs]
    if sorted(raw) != sorted(names):
        raise ExampleError(f"example {index} has inputs {sorted(raw)}, the model declares {sorted(names)}")
    inputs: dict[str, np.ndarray] = {}
    for inp in io.inputs:
        array = _as_array(raw[inp.name])
        if inp.dtype in INT_DTYPES and array.dtype.kind not in "iu":
            raise ExampleError(f"example {index}: {inp.name} holds {array.dtype} values, the input is {inp.dtype}")
        inputs[inp.name] = array.astype(_NP[inp.dtype])
    case = case_of(io, inputs)
    if case is None:
        shapes = {k: list(v.shape) for k, v in inputs.items()}
        raise ExampleError(f"example {index} has shapes {shapes}, none of the declared shape cases "
                           f"({', '.join(c.label for c in io.cases())})")
    return Example(case=case, inputs=inputs)


def load_examples(io: ModuleIO, root: Path, limit: int = MAX_EXAMPLES) -> list[Example]:
    """Up to `limit` checked examples from the `examples` callable; [] when none is configured."""
    if io.examples is None:
        return []
    from pipeline.adapter import AdapterError, _call_user, _import_callable

    try:
        fn = _import_callable(io.examples, root)
    except AdapterError as exc:
        raise ExampleError(str(exc).replace("model adapter", "examples", 1)) from None
    try:
        produced = _call_user(fn, io.examples, {"root": Path(root), "cases": [dict(c.env) for c in io.cases()]})
        raws = []
        for raw in produced:
            raws.append(raw)
            if len(raws) >= limit:
                break
    except Exception as exc:
        raise ExampleError(f"examples {io.examples!r} raised {type(exc).__name__}: {exc}") from exc
    if not raws:
        raise ExampleError(f"examples {io.examples!r} yielded no example")
    return [_checked(io, raw, i) for i, raw in enumerate(raws)]
