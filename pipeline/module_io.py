"""What a `kind = "module"` model declares at its boundary: inputs, dimensions, outputs.

A decoder's boundary is fixed by convention (token ids in, logits and a KV
cache out); any other model's is not, so the user declares it:

    >>> io = ModuleIO(
    ...     dims=(DimDecl(name="B", values=(1, 4)), DimDecl(name="T", values=(64, 128))),
    ...     inputs=(InputDecl(name="spectrogram", dtype="float32", shape=("B", 1, 128, "T")),),
    ...     outputs=(OutputDecl(name="position", kind=OutputKind.REGRESSION),))
    >>> [case.label for case in io.cases()]
    ['B=1,T=64', 'B=1,T=128', 'B=4,T=64', 'B=4,T=128']
    >>> io.input_shape(io.inputs[0], io.cases()[1].env)
    (1, 1, 128, 128)

A dimension is either enumerated (`values`) or a range (`low`..`high`);
the shapes every gate checks (`cases`) are every combination of each
dimension's values, or of a range's two ends. The dimension named
`batch_dim` ("B") is the batch: the checkpoint gate checks that rows of a
batch do not influence each other. Integer inputs carry the range of valid
values (token ids, class indices); an input with `image` is converted to a
Core ML image input whose pixels are scaled by `scale` and shifted by
`bias` inside the package.

Standard library only: the configuration builds these records before
torch is imported, and they travel in the model spec to every gate.
`ModuleIOError` carries the configuration key at fault.
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

DTYPES = ("float32", "float16", "int32", "int64", "bool")
INT_DTYPES = ("int32", "int64")
PRECISIONS = ("fp32", "fp16")
MAX_CASES = 64  # shape combinations every gate runs: beyond this, declare fewer values
Dim = int | str


class ModuleIOError(ValueError):
    """A declaration that cannot be used; `key` is the configuration key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class OutputKind(enum.StrEnum):
    """How an output is compared with PyTorch."""

    TENSOR = "tensor"  # any tensor: the default bounds of its precision
    LOGITS = "logits"  # class logits on the last axis: plus top-1/top-k agreement and KL
    REGRESSION = "regression"  # values in the output's own units: its declared tolerances matter most


class ColorLayout(enum.StrEnum):
    """Channel order of a Core ML image input (`ct.colorlayout`)."""

    RGB = "RGB"
    BGR = "BGR"
    GRAYSCALE = "G"


@dataclass(frozen=True, slots=True, kw_only=True)
class DimDecl:
    """One named dimension: enumerated `values`, or a range `low`..`high` (inclusive)."""

    name: str
    values: tuple[int, ...] = ()
    low: int | None = None
    high: int | None = None
    default: int | None = None

    @property
    def enumerated(self) -> bool:
        return bool(self.values)

    @property
    def candidates(self) -> tuple[int, ...]:
        """The sizes every gate checks: each value, or the range's two ends."""
        if self.values:
            return self.values
        return tuple(dict.fromkeys((self.low, self.high)))  # type: ignore[arg-type]

    @property
    def span(self) -> tuple[int, int]:
        sizes = self.candidates
        return min(sizes), max(sizes)

    @property
    def default_value(self) -> int:
        return self.default if self.default is not None else self.candidates[0]

    def to_dict(self) -> dict[str, Any]:
        if self.values:
            return {"values": list(self.values), "default": self.default_value}
        return {"min": self.low, "max": self.high, "default": self.default_value}


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageDecl:
    """A Core ML image input: the package computes `scale * pixel + bias` (bias per channel)."""

    scale: float = 1.0
    bias: tuple[float, ...] = (0.0,)
    color_layout: ColorLayout = ColorLayout.RGB

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "bias": list(self.bias), "color_layout": self.color_layout.value}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputDecl:
    """One model input. `value_range` (inclusive) bounds the values random inputs take:
    required for integer inputs, optional for floats (standard normal otherwise)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    value_range: tuple[float, float] | None = None
    image: ImageDecl | None = None

    @property
    def dim_names(self) -> tuple[str, ...]:
        return tuple(d for d in self.shape if isinstance(d, str))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.value_range is not None:
            out["value_range"] = list(self.value_range)
        if self.image is not None:
            out["image"] = self.image.to_dict()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputDecl:
    """One named output and how to compare it: `tolerances` maps a precision to metric bounds."""

    name: str
    kind: OutputKind = OutputKind.TENSOR
    top_k: int = 5
    tolerances: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind.value, "top_k": self.top_k,
                "tolerances": {p: dict(b) for p, b in sorted(self.tolerances.items())}}


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeCase:
    """One combination of dimension sizes, labelled the way reports show it."""

    env: Mapping[str, int]

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.env.items()) or "static"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleIO:
    """Every declaration of a module model; `validate()` raises ModuleIOError."""

    inputs: tuple[InputDecl, ...]
    outputs: tuple[OutputDecl, ...] = ()
    dims: tuple[DimDecl, ...] = ()
    examples: str | None = None  # "pkg.module:callable" yielding real inputs
    batch_dim: str = "B"

    def dim(self, name: str) -> DimDecl:
        for dim in self.dims:
            if dim.name == name:
                return dim
        raise KeyError(name)

    @property
    def batch(self) -> DimDecl | None:
        """The batch dimension, when one is declared and used."""
        used = {d for inp in self.inputs for d in inp.dim_names}
        return next((d for d in self.dims if d.name == self.batch_dim and d.name in used), None)

    def output(self, name: str) -> OutputDecl | None:
        return next((o for o in self.outputs if o.name == name), None)

    def cases(self) -> tuple[ShapeCase, ...]:
        """Every combination of each dimension's checked sizes, dimensions in declared order."""
        names = [d.name for d in self.dims]
        return tuple(ShapeCase(env=dict(zip(names, sizes)))
                     for sizes in itertools.product(*(d.candidates for d in self.dims)))

    def default_case(self) -> ShapeCase:
        return ShapeCase(env={d.name: d.default_value for d in self.dims})

    @staticmethod
    def input_shape(inp: InputDecl, env: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(env[d] if isinstance(d, str) else int(d) for d in inp.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"dims": {d.name: d.to_dict() for d in self.dims},
                "inputs": [i.to_dict() for i in self.inputs],
                "outputs": [o.to_dict() for o in self.outputs],
                "batch_dim": self.batch_dim, "examples": self.examples}

    def validate(self, prefix: str = "model.") -> ModuleIO:
        """This declaration, or ModuleIOError naming the first key at fault."""
        _check_dims(self.dims, prefix)
        _check_inputs(self, prefix)
        _check_outputs(self.outputs, prefix)
        count = math.prod(len(d.candidates) for d in self.dims)
        if count > MAX_CASES:
            raise ModuleIOError(f"{prefix}dims", f"{count} shape combinations to check, more than "
                                f"{MAX_CASES}: declare fewer values per dimension")
        if self.examples is not None and ":" not in self.examples:
            raise ModuleIOError(f"{prefix}examples", f"{self.examples!r} is not of the form "
                                "'pkg.module:callable'")
        return self


def _check_dims(dims: tuple[DimDecl, ...], prefix: str) -> None:
    seen: set[str] = set()
    for dim in dims:
        key = f"{prefix}dims.{dim.name}"
        if not dim.name.isidentifier() or dim.name in seen:
            raise ModuleIOError(key, "a dimension name must be a unique identifier")
        seen.add(dim.name)
        if dim.values:
            if dim.low is not None or dim.high is not None:
                raise ModuleIOError(key, "give either enumerated values or a range (min, max), not both")
            if any(v < 1 for v in dim.values) or len(set(dim.values)) != len(dim.values):
                raise ModuleIOError(key, f"values {list(dim.values)} must be distinct positive sizes")
        elif dim.low is None or dim.high is None or not 1 <= dim.low <= dim.high:
            raise ModuleIOError(key, "needs enumerated values, or a range with 1 <= min <= max")
        if dim.default is not None:
            inside = dim.default in dim.values if dim.values else dim.low <= dim.default <= dim.high  # type: ignore[operator]
            if not inside:
                raise ModuleIOError(f"{key}.default", f"{dim.default} is not among the dimension's sizes")


def _check_inputs(io: ModuleIO, prefix: str) -> None:
    if not io.inputs:
        raise ModuleIOError(f"{prefix}inputs", "a module model declares at least one input")
    declared = {d.name for d in io.dims}
    used: set[str] = set()
    names: set[str] = set()
    for inp in io.inputs:
        key = f"{prefix}inputs.{inp.name}"
        if not inp.name.isidentifier() or inp.name in names:
            raise ModuleIOError(key, "an input name must be a unique identifier")
        names.add(inp.name)
        if inp.dtype not in DTYPES:
            raise ModuleIOError(f"{key}.dtype", f"{inp.dtype!r} is not one of {', '.join(DTYPES)}")
        if not inp.shape:
            raise ModuleIOError(f"{key}.shape", "a shape needs at least one dimension")
        for dim in inp.shape:
            if isinstance(dim, str) and dim not in declared:
                raise ModuleIOError(f"{key}.shape", f"dimension {dim!r} is not declared in {prefix}dims")
            if isinstance(dim, int) and dim < 1:
                raise ModuleIOError(f"{key}.shape", f"size {dim} must be positive")
        used.update(inp.dim_names)
        _check_values(inp, key)
        if inp.image is not None:
            _check_image(inp, io, key)
    unused = sorted(declared - used)
    if unused:
        raise ModuleIOError(f"{prefix}dims.{unused[0]}", "declared but no input shape uses it")


def _check_values(inp: InputDecl, key: str) -> None:
    if inp.value_range is None:
        if inp.dtype in INT_DTYPES:
            raise ModuleIOError(f"{key}.range", "an integer input needs the range of its valid values, "
                                "e.g. range = [0, 30521] for token ids")
        return
    low, high = inp.value_range
    if not low <= high:
        raise ModuleIOError(f"{key}.range", f"[{low}, {high}]: the low end must not exceed the high end")


def _check_image(inp: InputDecl, io: ModuleIO, key: str) -> None:
    image = inp.image
    assert image is not None
    channels = 1 if image.color_layout is ColorLayout.GRAYSCALE else 3
    if inp.dtype != "float32" or len(inp.shape) != 4 or inp.shape[1] != channels:
        raise ModuleIOError(f"{key}.image", f"a {image.color_layout.value} image input is float32 "
                            f"[1 or {io.batch_dim}, {channels}, H, W], not {inp.dtype} {list(inp.shape)}")
    if inp.shape[0] not in (1, io.batch_dim):
        raise ModuleIOError(f"{key}.image", f"the first dimension of an image input is 1 or the batch "
                            f"dimension {io.batch_dim!r}, not {inp.shape[0]!r}")
    batch = io.batch
    if inp.shape[0] == io.batch_dim and batch is not None and batch.span[0] != 1:
        raise ModuleIOError(f"{key}.image", f"Core ML takes one image per prediction: the batch dimension "
                            f"{io.batch_dim!r} must allow 1")
    if len(image.bias) not in (1, channels):
        raise ModuleIOError(f"{key}.image.bias", f"{len(image.bias)} values for {channels} channels")
    if not image.scale > 0:
        raise ModuleIOError(f"{key}.image.scale", f"{image.scale} must be above 0")


def _check_outputs(outputs: tuple[OutputDecl, ...], prefix: str) -> None:
    names: set[str] = set()
    for out in outputs:
        key = f"{prefix}outputs.{out.name}"
        if not out.name.isidentifier() or out.name in names:
            raise ModuleIOError(key, "an output name must be a unique identifier")
        names.add(out.name)
        if out.top_k < 1:
            raise ModuleIOError(f"{key}.top_k", f"{out.top_k} must be at least 1")
        for precision in out.tolerances:
            if precision not in PRECISIONS:
                raise ModuleIOError(f"{key}.tolerances.{precision}", f"not one of {', '.join(PRECISIONS)}")
