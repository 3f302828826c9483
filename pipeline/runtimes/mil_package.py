"""Reading a Core ML `.mlpackage` on Linux: its spec, its I/O contract, its program.

Core ML's own loader exists only on macOS, but the package is a protobuf spec
plus a weights blob, and coremltools ships the milproto loader that turns the
spec back into a pyMIL `Program` (the same object the converter built). This
module does that once per package and records what the package promises about
its inputs (dtype, enumerated shapes or ranges), so the interpreter can refuse
inputs that Core ML itself would refuse.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.runtimes.base import InputShapeError

# coremltools' proto dataType codes (FeatureTypes.proto ArrayDataType).
_ARRAY_DTYPES = {65568: np.float32, 65552: np.float16, 65600: np.float64, 131104: np.int32, 131080: np.int8}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputContract:
    """What one input accepts. `shapes` lists enumerated shapes (empty when
    ranged); `ranges` holds (low, high) per dimension, high -1 meaning unbounded."""

    name: str
    dtype: type
    default_shape: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...] = ()
    ranges: tuple[tuple[int, int], ...] = ()

    def allowed(self) -> str:
        if self.shapes:
            return "one of " + ", ".join(str(list(s)) for s in self.shapes)
        if self.ranges:
            dims = ", ".join(f"{lo}..{'inf' if hi < 0 else hi}" for lo, hi in self.ranges)
            return f"[{dims}]"
        return str(list(self.default_shape))

    def check(self, value: np.ndarray) -> None:
        """Raise InputShapeError unless `value`'s shape is one this input accepts."""
        shape = tuple(int(d) for d in value.shape)
        if self.shapes:
            ok = shape in self.shapes
        elif self.ranges:
            ok = len(shape) == len(self.ranges) and all(
                lo <= d and (hi < 0 or d <= hi) for d, (lo, hi) in zip(shape, self.ranges))
        else:
            ok = shape == self.default_shape
        if not ok:
            raise InputShapeError(
                f"input {self.name!r} has shape {list(shape)}; the package allows {self.allowed()}")


def _contract(feature) -> InputContract | None:
    if feature.type.WhichOneof("Type") != "multiArrayType":
        return None
    arr = feature.type.multiArrayType
    shapes = tuple(tuple(int(d) for d in s.shape) for s in arr.enumeratedShapes.shapes)
    ranges = tuple((int(r.lowerBound), int(r.upperBound)) for r in arr.shapeRange.sizeRanges)
    default = tuple(int(d) for d in arr.shape)
    if default and not shapes and not ranges:
        shapes = (default,)
    return InputContract(name=feature.name, dtype=_ARRAY_DTYPES.get(arr.dataType, np.float32),
                         default_shape=default, shapes=shapes, ranges=ranges)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedPackage:
    """A package's pyMIL function plus its declared inputs and outputs."""

    path: Path
    function: object  # coremltools.converters.mil.mil.Function
    inputs: tuple[InputContract, ...]
    output_names: tuple[str, ...]
    spec_version: int


def _quiet_coremltools() -> None:
    # The milproto loader logs every re-registered var at INFO level; and
    # coremltools warns once per tensor when values change precision.
    logging.getLogger("coremltools").setLevel(logging.ERROR)


_LOADING = threading.Lock()  # the reader is swapped in coremltools' module while one package loads
_BLOB_SENTINEL = 0xDEADBEEF


def _read_blob(path: str, offset: int, dtype: Any) -> np.ndarray:
    """One tensor of a package's weight file, read (not memory-mapped): its pages are not the
    process's while the rest of the program loads. The blob's 64-byte header at `offset`
    holds a sentinel, the MIL dtype, the byte size and the data's offset."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        header = handle.read(24)
        if len(header) < 24 or struct.unpack_from("<I", header)[0] != _BLOB_SENTINEL:
            raise ValueError(f"{path}: no weight blob at offset {offset}")
        _, _, size, data_offset = struct.unpack("<IIQQ", header)
        handle.seek(data_offset)
        data = handle.read(size)
    if len(data) < size or size % np.dtype(dtype).itemsize:
        raise ValueError(f"{path}: the weight blob at offset {offset} is truncated")
    return np.frombuffer(data, dtype)


def _file_value_reader(original: Any) -> Any:
    """coremltools' reader of a const's file value, reading fp32 and fp16 tensors with `_read_blob`.

    coremltools' BlobReader maps the whole weight file and keeps it mapped while the package
    loads: every weight's pages stay resident next to its loaded copy, twice the program's
    weights at the end of the load (14 GB for a 1B decoder)."""
    from coremltools.converters.mil.mil import types

    dtypes = ((types.fp32, np.float32), (types.fp16, np.float16))  # others: coremltools' reader

    def read(context: Any, filevalue_spec: Any, dtype: Any) -> Any:
        found = next((np_dtype for mil_dtype, np_dtype in dtypes if dtype == mil_dtype), None)
        if found is None:
            return original(context, filevalue_spec, dtype)
        path = os.path.join(context.weights_dir, filevalue_spec.fileName.split("/")[-1])
        return _read_blob(path, int(filevalue_spec.offset), found)

    return read


def load_package(path: str | Path, function_name: str | None = None) -> LoadedPackage:
    """Load `path` (.mlpackage) into pyMIL; raise ValueError naming the problem."""
    from coremltools.converters.mil.frontend.milproto import load as milproto
    from coremltools.models.utils import _try_get_weights_dir_path, load_spec

    _quiet_coremltools()
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such Core ML package")
    spec = load_spec(str(path))
    if spec.WhichOneof("Type") != "mlProgram":
        raise ValueError(f"{path}: not an ML Program (found {spec.WhichOneof('Type')})")
    weights_dir = _try_get_weights_dir_path(str(path)) or ""
    with _LOADING:
        original = milproto._load_file_value
        milproto._load_file_value = _file_value_reader(original)
        try:
            program = milproto.load(spec, spec.specificationVersion, weights_dir)
        finally:
            milproto._load_file_value = original
    name = function_name or spec.description.defaultFunctionName or "main"
    if name not in program.functions:
        raise ValueError(f"{path}: no function {name!r} (has {', '.join(program.functions)})")
    contracts = tuple(c for c in map(_contract, spec.description.input) if c is not None)
    outputs = tuple(o.name for o in spec.description.output)
    return LoadedPackage(path=path, function=program.functions[name], inputs=contracts,
                         output_names=outputs, spec_version=int(spec.specificationVersion))
