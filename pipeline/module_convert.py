"""Core ML packages of a module model: declared inputs, named outputs, its shape cases.

    >>> path, decomposition = convert_module(program, io, output_names, precision="fp16",
    ...                                      out_path=p, deployment="iOS18")

Each input becomes a `ct.ImageType` where it declares `image` (scale, bias,
color layout: the package takes pixels) and a `ct.TensorType` otherwise:
float inputs stay float32 in the package (fp16 packages cast inside), and
integer inputs are int32 (Core ML has no int64 inputs). An input whose size
varies over the shape cases takes `ct.EnumeratedShapes` when every
dimension it varies along is enumerated (several enumerated inputs need
iOS18; below it they take ranges), else a `ct.RangeDim` per varying axis.
Core ML takes one image per prediction, so an image input's package covers
the cases with batch 1 (`coreml_cases`).

The program is lowered with an empty decomposition table, as for decoders;
a program the converter refuses in that form (transformers' mask helpers
such as `new_ones`) is converted from the core ATen opset instead, and the
table used is returned so parity localisation compares against the same
graph. Outputs are named at conversion; a refused conversion raises
`ConversionError` with the converter's message and leaves nothing behind.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline.module_io import ColorLayout, InputDecl, ModuleIO, ShapeCase

DECOMPOSITIONS = ("none", "core_aten")


def coreml_cases(io: ModuleIO) -> tuple[ShapeCase, ...]:
    """The shape cases a Core ML package covers: batch 1 where an input is an image."""
    if not any(i.image is not None and i.shape[0] == io.batch_dim for i in io.inputs):
        return io.cases()
    return tuple(c for c in io.cases() if c.env.get(io.batch_dim, 1) == 1)


def decomposed(program: Any, table: str) -> Any:
    """The program in the opset handed to the converter."""
    return program.run_decompositions({}) if table == "none" else program.run_decompositions()


def _shape(io: ModuleIO, inp: InputDecl, cases: Sequence[ShapeCase], enumerate_ok: bool) -> Any:
    import coremltools as ct

    shapes = list(dict.fromkeys(io.input_shape(inp, c.env) for c in cases))
    if len(shapes) == 1:
        return shapes[0]
    default = io.input_shape(inp, io.default_case().env)
    default = default if default in shapes else shapes[0]
    varying = [axis for axis in range(len(inp.shape)) if len({s[axis] for s in shapes}) > 1]
    if enumerate_ok and all(io.dim(str(inp.shape[a])).enumerated for a in varying):
        return ct.EnumeratedShapes(shapes=[list(s) for s in shapes], default=list(default))
    return tuple(ct.RangeDim(lower_bound=min(s[a] for s in shapes), upper_bound=max(s[a] for s in shapes),
                             default=default[a]) if a in varying else shapes[0][a]
                 for a in range(len(inp.shape)))


def _input_type(io: ModuleIO, inp: InputDecl, shape: Any) -> Any:
    import coremltools as ct

    if inp.image is not None:
        layout = {ColorLayout.RGB: ct.colorlayout.RGB, ColorLayout.BGR: ct.colorlayout.BGR,
                  ColorLayout.GRAYSCALE: ct.colorlayout.GRAYSCALE}[inp.image.color_layout]
        gray = inp.image.color_layout is ColorLayout.GRAYSCALE
        bias: Any = float(inp.image.bias[0]) if gray else (list(inp.image.bias) * 3)[:3] \
            if len(inp.image.bias) == 1 else list(inp.image.bias)
        return ct.ImageType(name=inp.name, shape=shape, scale=float(inp.image.scale), bias=bias,
                            color_layout=layout)
    dtype = np.float32 if inp.dtype.startswith("float") else np.int32
    return ct.TensorType(name=inp.name, shape=shape, dtype=dtype)


def input_types(io: ModuleIO, deployment: str) -> list[Any]:
    """The `inputs=` of `ct.convert` for these declarations."""
    import coremltools as ct

    from pipeline.to_coreml import deployment_target

    cases = coreml_cases(io)
    varying = [i for i in io.inputs if len({io.input_shape(i, c.env) for c in cases}) > 1]
    ios18 = deployment_target(deployment) >= ct.target.iOS18
    enumerate_ok = len(varying) <= 1 or ios18
    return [_input_type(io, inp, _shape(io, inp, cases, enumerate_ok)) for inp in io.inputs]


def convert_module(program: Any, io: ModuleIO, output_names: Sequence[str], *, precision: str,
                   out_path: Path, deployment: str = "iOS18",
                   tables: dict[str, Any] | None = None) -> tuple[Path, str]:
    """(the package, the decomposition table it was converted from); ConversionError on refusal.

    `tables`, when given, keeps each decomposed program for the next precision: decomposing
    costs as much as converting."""
    from pipeline.to_coreml import ConversionError, _convert, _outputs, io_float_dtype

    inputs = input_types(io, deployment)
    outputs = _outputs(output_names, io_float_dtype(precision, deployment), cache_from=None)
    tables = {} if tables is None else tables
    first: Exception | None = None
    for table in DECOMPOSITIONS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if table not in tables:
                    tables[table] = decomposed(program, table)
                return _convert(tables[table], inputs, outputs, precision, deployment,
                                Path(out_path), "the module"), table
        except ConversionError as exc:
            first = first or exc
    raise first  # type: ignore[misc]


def image_input_sizes(path: Path) -> dict[str, tuple[tuple[int, int], ...]]:
    """The (height, width) sizes each image input of a saved package accepts, by name."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    sizes = {}
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") != "imageType":
            continue
        image = feature.type.imageType
        listed = tuple((int(s.height), int(s.width)) for s in image.enumeratedSizes.sizes)
        sizes[feature.name] = tuple(dict.fromkeys(listed)) or ((int(image.height), int(image.width)),)
    return sizes
