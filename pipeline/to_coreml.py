"""Core ML ML Program packages from exported programs, and reading them back.

    convert_prefill(program, input_name="input_ids", output_names=names, lengths=(64, 128),
                    default_length=128, precision="fp16", out_path=p)   # -> p (.mlpackage)
    convert_decode(program, input_specs=specs, output_names=names, cache_range=(1, 255),
                   default_cache=8, precision="fp16", out_path=q)
    read_package(p).outputs   # names, dtypes, shapes (None where the package leaves a dim open)

Why it is shaped so:
- outputs are named at conversion (`ct.TensorType(name=...)` from the
  adapter's names), so a package never exposes `var_292`; `output_names=None`
  exists only so the tests can build that defect on purpose;
- prefill lengths are `ct.EnumeratedShapes` on `input_ids` (one package), or
  one static package per length (the caller passes one length);
- decode cache inputs take `ct.RangeDim` on axis 2; with fp16 compute the
  cache inputs *and* outputs are declared float16, so a cache threads from one
  step into the next without a cast (float16 I/O needs iOS16+: below that
  they are float32 and the converter casts, see `io_float_dtype`); `cache_range_problems` checks that the
  converted spec gave every cache input the same range (it stores one each);
- fp16 conversions run coremltools' fp16 cast pass with a lean overflow
  check (`pipeline.fp16_cast`; same package, without a transient of 1.5x
  the weights);
- a failed conversion raises `ConversionError` with the converter's own
  message: there is no placeholder package. A package is written to a
  temporary name and renamed, so a crash never leaves a half package behind;
- `read_package` reads the spec only (coremltools cannot predict on Linux)
  and names the file that is missing or corrupt (`PackageError`).
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import coremltools as ct
import numpy as np
from coremltools.proto import FeatureTypes_pb2, MIL_pb2

from pipeline.contract import TensorSpec
from pipeline.fp16_cast import fp16_pipeline

PRECISIONS = {"fp32": ct.precision.FLOAT32, "fp16": ct.precision.FLOAT16}
_NP_FLOAT = {"float32": np.float32, "float16": np.float16}


def _array_dtype(code: int) -> str:
    name = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(code).lower()
    return {"double": "float64"}.get(name, name)


def _mil_dtype(code: int) -> str:
    return MIL_pb2.DataType.Name(code).lower()


class ConversionError(Exception):
    """The converter refused the program; the message is the converter's."""


class PackageError(Exception):
    """A package on disk that cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageTensor:
    """A tensor as the package declares it. `shape` holds None for open dims."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]
    enumerated: tuple[tuple[int, ...], ...] = ()
    ranges: tuple[tuple[int, int], ...] = ()

    def as_spec(self) -> TensorSpec:
        return TensorSpec(name=self.name, dtype=self.dtype, shape=self.shape)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageInfo:
    path: Path
    inputs: tuple[PackageTensor, ...]
    outputs: tuple[PackageTensor, ...]
    spec_version: int
    deployment_opset: str
    states: tuple[PackageTensor, ...] = ()
    state_ops: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # state -> "read_state 'x'", ...

    def input(self, name: str) -> PackageTensor:
        return next(t for t in self.inputs if t.name == name)


def deployment_target(name: str) -> Any:
    """`"iOS18"` -> ct.target.iOS18; ML Programs need iOS15 or later."""
    names = [t.name for t in ct.target]
    allowed = names[names.index("iOS15"):] if "iOS15" in names else names
    if name not in allowed and not (name.startswith("macOS") and hasattr(ct.target, name)):
        raise ValueError(f"deployment_target {name!r} is not one of {', '.join(allowed)}")
    return getattr(ct.target, name)


def io_float_dtype(precision: str, deployment: str = "iOS18") -> str:
    """The dtype of float inputs/outputs a package gets: float16 needs iOS16 or later.

    Below iOS16 an fp16 package computes in fp16 but takes and returns float32
    (the converter casts at the boundary).
    """
    if precision != "fp16":
        return "float32"
    names = [t.name for t in ct.target]
    ios16 = names.index("iOS16") if "iOS16" in names else 0
    return "float16" if deployment not in names or names.index(deployment) >= ios16 else "float32"


def convert_prefill(program: Any, *, input_name: str, output_names: Sequence[str] | None,
                    lengths: Sequence[int], default_length: int, precision: str, out_path: Path,
                    deployment: str = "iOS18", batch: int = 1) -> Path:
    """One prefill package covering `lengths` (enumerated when there are several)."""
    if len(lengths) == 1:
        shape: Any = (batch, lengths[0])
    else:
        shape = ct.EnumeratedShapes(shapes=[(batch, t) for t in lengths], default=(batch, default_length))
    inputs = [ct.TensorType(name=input_name, shape=shape, dtype=np.int32)]
    outputs = _outputs(output_names, io_float_dtype(precision, deployment), cache_from=None)
    return _convert(program, inputs, outputs, precision, deployment, out_path, "prefill")


def convert_decode(program: Any, *, input_specs: Sequence[TensorSpec], output_names: Sequence[str] | None,
                   cache_range: tuple[int, int], default_cache: int, precision: str, out_path: Path,
                   deployment: str = "iOS18") -> Path:
    """One decode package; every cache input gets the same RangeDim on axis 2."""
    inputs, io_float = [], io_float_dtype(precision, deployment)
    for spec in input_specs:
        if spec.dtype.startswith("float"):
            dims = tuple(ct.RangeDim(lower_bound=cache_range[0], upper_bound=cache_range[1],
                                     default=default_cache) if isinstance(d, str) else d for d in spec.shape)
            inputs.append(ct.TensorType(name=spec.name, shape=dims, dtype=_NP_FLOAT[io_float]))
        else:
            inputs.append(ct.TensorType(name=spec.name, shape=tuple(spec.shape), dtype=np.int32))
    outputs = _outputs(output_names, io_float, cache_from=1)
    return _convert(program, inputs, outputs, precision, deployment, out_path, "decode")


def _outputs(names: Sequence[str] | None, io_float: str, cache_from: int | None) -> list[Any] | None:
    if names is None:
        return None
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise ConversionError(f"output names {bad} are not identifiers")
    # cache outputs in the input precision, so they feed the next step unchanged
    return [ct.TensorType(name=n, dtype=_NP_FLOAT[io_float]) if cache_from is not None and i >= cache_from
            else ct.TensorType(name=n)
            for i, n in enumerate(names)]


def _convert(program, inputs, outputs, precision: str, deployment: str, out_path: Path, what: str) -> Path:
    return convert_program(program, inputs, outputs, precision, deployment, out_path, what)


def convert_program(program: Any, inputs: list, outputs: list | None, precision: str, deployment: str,
                    out_path: Path, what: str, *, states: list | None = None, pass_pipeline: Any = None) -> Path:
    """`ct.convert` to an ML Program package at `out_path`; ConversionError with the converter's message."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    target = deployment_target(deployment)
    extra = {"states": states} if states else {}
    if precision == "fp16":  # coremltools' fp16 cast pass, its overflow check made lean
        pass_pipeline = fp16_pipeline(pass_pipeline if pass_pipeline is not None else ct.PassPipeline.DEFAULT)
    if pass_pipeline is not None:
        extra["pass_pipeline"] = pass_pipeline
    try:
        model = ct.convert(program, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                           minimum_deployment_target=target, compute_precision=PRECISIONS[precision],
                           skip_model_load=True, **extra)
    except Exception as exc:
        raise ConversionError(f"Core ML conversion of {what} ({precision}, {deployment}) failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".partial.mlpackage")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    shutil.rmtree(out_path, ignore_errors=True)
    tmp.rename(out_path)
    return out_path


def read_package(path: Path) -> PackageInfo:
    """Inputs and outputs of a saved package, from its spec alone."""
    path = Path(path)
    spec_path = _spec_path(path)
    try:
        spec = ct.utils.load_spec(str(spec_path))
    except Exception as exc:
        raise PackageError(f"{spec_path}: not a readable Core ML spec ({type(exc).__name__}: {exc})") from None
    if not spec.description.output:
        raise PackageError(f"{spec_path}: the spec declares no outputs")
    mil_outputs = _mil_output_types(spec)
    _check_weights(spec, spec_path.parent)
    inputs = tuple(_feature(f, None) for f in spec.description.input)
    outputs = tuple(_feature(f, mil_outputs.get(f.name)) for f in spec.description.output)
    opset = spec.mlProgram.functions["main"].opset if spec.WhichOneof("Type") == "mlProgram" else ""
    states = tuple(_state(f) for f in spec.description.state)
    return PackageInfo(path=path, inputs=inputs, outputs=outputs, spec_version=spec.specificationVersion,
                       deployment_opset=opset, states=states, state_ops=_state_ops(spec) if states else {})


def compute_precision(variant: str) -> str:
    """The precision a package variant computes in: fp32, or fp16 (fp16 and every compression)."""
    return "fp32" if variant == "fp32" else "fp16"


def _state(feature: Any) -> PackageTensor:
    array = feature.type.stateType.arrayType
    return PackageTensor(name=feature.name, dtype=_array_dtype(array.dataType), shape=tuple(array.shape))


def _state_ops(spec: Any) -> dict[str, tuple[str, ...]]:
    """Which ops read and write each state, in program order: "read_state 'read_state_0'",
    "write_state of 'slice_scatter'" (the proto form of coreml_update_state)."""
    function = spec.mlProgram.functions["main"]
    found: dict[str, list[str]] = {}
    for op in function.block_specializations[function.opset].operations:
        if op.type not in ("read_state", "write_state"):
            continue
        state = op.inputs["input"].arguments[0].name
        if op.type == "read_state":
            found.setdefault(state, []).append(f"read_state {op.outputs[0].name!r}")
        else:
            found.setdefault(state, []).append(f"write_state of {op.inputs['data'].arguments[0].name!r}")
    return {name: tuple(ops) for name, ops in found.items()}


def _spec_path(path: Path) -> Path:
    manifest = path / "Manifest.json"
    if not path.is_dir():
        raise PackageError(f"{path}: no such .mlpackage folder")
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
        root = entries["itemInfoEntries"][entries["rootModelIdentifier"]]
        spec_path = path / "Data" / root["path"]  # manifest paths are relative to Data/
    except FileNotFoundError:
        raise PackageError(f"{manifest}: missing (a truncated package)") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise PackageError(f"{manifest}: unreadable manifest ({exc})") from None
    if not spec_path.is_file():
        raise PackageError(f"{spec_path}: the model spec named by the manifest is missing")
    return spec_path


_BLOB_SENTINEL = 0xDEADBEEF  # coremltools blob storage: a 64-byte record before every blob


def _check_weights(spec: Any, spec_dir: Path) -> None:
    """Every weight blob the program references is there, whole (a copy may drop or cut weights/)."""
    if spec.WhichOneof("Type") != "mlProgram":
        return
    wanted: dict[str, set[int]] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                for value in op.attributes.values():
                    if value.HasField("blobFileValue"):
                        blob = value.blobFileValue
                        wanted.setdefault(blob.fileName, set()).add(blob.offset)
    for name, offsets in sorted(wanted.items()):
        file = spec_dir / name.replace("@model_path/", "")
        if not file.is_file():
            raise PackageError(f"{file}: weight file referenced by the program is missing")
        _check_blobs(file, sorted(offsets))


def _check_blobs(file: Path, offsets: Sequence[int]) -> None:
    size = file.stat().st_size
    with file.open("rb") as handle:
        for offset in offsets:
            handle.seek(offset)
            record = handle.read(24)
            if len(record) < 24:
                raise PackageError(f"{file}: truncated ({size} bytes; a weight record starts at {offset})")
            sentinel, _, length, data_offset = struct.unpack("<IIQQ", record)
            if sentinel != _BLOB_SENTINEL:
                raise PackageError(f"{file}: no weight record at offset {offset} (corrupt weights)")
            if data_offset + length > size:
                raise PackageError(f"{file}: truncated ({size} bytes; a weight ends at {data_offset + length})")


def _mil_output_types(spec: Any) -> dict[str, tuple[str, tuple[int | None, ...]]]:
    if spec.WhichOneof("Type") != "mlProgram":
        return {}
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    names, found = set(block.outputs), {}
    for op in block.operations:
        for out in op.outputs:
            if out.name in names and out.type.WhichOneof("type") == "tensorType":
                tensor = out.type.tensorType
                dims = tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None
                             for d in tensor.dimensions)
                found[out.name] = (_mil_dtype(tensor.dataType), dims)
    return found


def _feature(feature: Any, mil: tuple[str, tuple[int | None, ...]] | None) -> PackageTensor:
    array = feature.type.multiArrayType
    dtype = _array_dtype(array.dataType)
    enumerated = tuple(tuple(s.shape) for s in array.enumeratedShapes.shapes)
    ranges = tuple((r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges)
    if mil is not None:
        shape = mil[1]
    elif enumerated and len({len(s) for s in enumerated}) == 1:
        shape = tuple(d if len({s[i] for s in enumerated}) == 1 else None
                      for i, d in enumerate(enumerated[0]))
    elif ranges:
        shape = tuple(lo if lo == hi else None for lo, hi in ranges)
    else:
        shape = tuple(array.shape)
    return PackageTensor(name=feature.name, dtype=dtype, shape=shape, enumerated=enumerated, ranges=ranges)


def cache_range_problems(info: PackageInfo, cache_names: Sequence[str],
                         expected: tuple[int, int] | None = None) -> list[str]:
    """Each cache input stores its own range: they must agree (and match `expected`)."""
    problems, seen = [], {}
    for name in cache_names:
        tensor = next((t for t in info.inputs if t.name == name), None)
        if tensor is None:
            problems.append(f"{info.path.name}: cache input {name} is missing")
            continue
        seen[name] = tensor.ranges[2] if len(tensor.ranges) == 4 else None
    if len(set(seen.values())) > 1:
        problems.append(f"{info.path.name}: cache inputs disagree on their length range: "
                        + ", ".join(f"{n}={r}" for n, r in seen.items()))
    elif expected is not None and seen and set(seen.values()) != {tuple(expected)}:
        problems.append(f"{info.path.name}: cache length range {next(iter(seen.values()))} "
                        f"is not the exported {tuple(expected)}")
    return problems
