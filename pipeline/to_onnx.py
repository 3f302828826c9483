"""ONNX models from the prefill and decode modules, through the dynamo exporter.

    export_prefill_onnx(module, example_ids, output_names=names, out_path=p, max_length=512)
    export_decode_onnx(module, example_args, input_names=..., output_names=..., out_path=q,
                       cache_range=(1, 511))
    export_module_onnx(entry, example_args, input_names=..., output_names=..., dynamic_shapes=...,
                       out_path=r)     # kind = "module"
    read_onnx(p).outputs   # TensorSpec with "T" / "T_cache" where the axis is dynamic

`torch.onnx.export(..., dynamo=True)` re-traces with torch.export, so the
same `Dim`s the export step uses (T for prefill, one shared T_cache across all
cache inputs) become the ONNX symbolic axes; inputs and outputs carry the
adapter's names. Weights go to an external data file beside the model
(`prefill.onnx.data`), written one tensor at a time. Every model is checked with
`onnx.checker.check_model` (full check, path-based); a failed export or check
raises `OnnxError` with the exporter's message, and nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import onnx
import torch

from pipeline.contract import TensorSpec
from pipeline.export import decode_dynamic_shapes
from pipeline.perf.footprint import external_locations

OPSET = 18
_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
                onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64",
                onnx.TensorProto.BOOL: "bool"}


class OnnxError(Exception):
    """The ONNX export or its check failed; the message says which and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OnnxInfo:
    path: Path
    opset: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def export_prefill_onnx(module: torch.nn.Module, example_ids: torch.Tensor, *, output_names: Sequence[str],
                        out_path: Path, min_length: int, max_length: int, opset: int = OPSET,
                        program: torch.export.ExportedProgram | None = None) -> Path:
    """`program`: the module already exported with a dynamic length over the same range, which
    the exporter takes instead of tracing the module again."""
    dim = torch.export.Dim("T", min=min_length, max=max_length)
    return _export(module, (example_ids,), ["input_ids"], list(output_names), ({1: dim},), out_path, opset,
                   program)


def export_decode_onnx(module: torch.nn.Module, example_args: Sequence[torch.Tensor], *,
                       input_names: Sequence[str], output_names: Sequence[str], out_path: Path,
                       cache_range: tuple[int, int], opset: int = OPSET,
                       program: torch.export.ExportedProgram | None = None) -> Path:
    """`program`: as for prefill, over the same cache range."""
    dim = torch.export.Dim("T_cache", min=cache_range[0], max=cache_range[1])
    shapes = decode_dynamic_shapes(module, len(example_args) - 2, dim)
    return _export(module, tuple(example_args), list(input_names), list(output_names), shapes,
                   out_path, opset, program)


def export_module_onnx(module: torch.nn.Module, example_args: Sequence[torch.Tensor], *,
                       input_names: Sequence[str], output_names: Sequence[str], dynamic_shapes: Any,
                       out_path: Path, opset: int = OPSET) -> Path:
    """A `kind = "module"` model: declared input names, one dynamic_shapes entry per input."""
    return _export(module, tuple(example_args), list(input_names), list(output_names), dynamic_shapes,
                   out_path, opset)


def _export(module, args, input_names, output_names, dynamic_shapes, out_path: Path, opset: int,
            program: torch.export.ExportedProgram | None = None) -> Path:
    """Export to `out_path`; from `program` when given (the module is traced again only if the
    exporter refuses it), naming the dynamic dims after `dynamic_shapes` either way."""
    if opset < 17:
        raise ValueError(f"opset {opset} is below 17")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # written in a staging folder beside it, then moved: data files first, the .onnx last
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}-", dir=out_path.parent))
    try:
        tmp = staging / out_path.name
        try:
            with warnings.catch_warnings(), _quiet():
                warnings.simplefilter("ignore")
                exported = _onnx_program(module, program, args, opset_version=opset, input_names=input_names,
                                         output_names=output_names, dynamic_shapes=dynamic_shapes)
                # weights streamed to `<name>.data` one tensor at a time: an in-file model is
                # serialised whole in memory first (twice the weights, measured)
                exported.save(str(tmp), external_data=True)
                del exported
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:
            raise OnnxError(f"ONNX export to {out_path.name} failed: {type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
        _remove(out_path)
        for part in staging.iterdir():
            if part != tmp:
                os.replace(part, out_path.parent / part.name)
        os.replace(tmp, out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_path


def _onnx_program(module: torch.nn.Module, program: torch.export.ExportedProgram | None, args: tuple,
                  **options: Any) -> Any:
    """The exporter's ONNX program: from `program` when given and accepted, else from the module."""
    if program is not None:
        try:
            return torch.onnx.export(program, args, dynamo=True, verbose=False, **options)
        except Exception:  # the exporter refused the traced program: it traces the module itself
            pass
    return torch.onnx.export(module, args, dynamo=True, verbose=False, **options)


def is_complete(path: Path) -> bool:
    """An `.onnx` file is there and every external data file it names is beside it."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return False
    # a data file is a plain name beside the model: a location with a folder in it is not ours
    return all(Path(name).name == name and (path.parent / name).is_file() for name in external_locations(model))


class _quiet:
    """The exporter logs progress at INFO through `torch.onnx`; a library stays silent."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("torch.onnx")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: Any) -> None:
        self._logger.setLevel(self._level)


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".data")):
        p.unlink(missing_ok=True)


def read_onnx(path: Path) -> OnnxInfo:
    """Names, dtypes and shapes (symbolic axes by name) after re-running the checker."""
    path = Path(path)
    if not path.is_file():
        raise OnnxError(f"{path}: no such ONNX file")
    try:
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise OnnxError(f"{path}: onnx.checker rejected it: {type(exc).__name__}: {exc}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxInfo(path=path, opset=opset, inputs=tuple(_spec(v) for v in model.graph.input),
                    outputs=tuple(_spec(v) for v in model.graph.output))


def _spec(value: Any) -> TensorSpec:
    tensor = value.type.tensor_type
    # symbolic axes carry the export Dim names: "T", "T_cache", "T_cache + 1" (spaces dropped)
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param.replace(" ", "") or "?")
                 for d in tensor.shape.dim)
    return TensorSpec(name=value.name, dtype=_ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)),
                      shape=dims)
