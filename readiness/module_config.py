"""The `[model]` keys of `kind = "module"`: dims, inputs, outputs, examples.

    [model]
    kind = "module"
    adapter = "examples.spectrogram_cnn:build"
    examples = "examples.spectrogram_cnn:examples"
    dims = { B = [1, 4], T = [64, 128, 256] }          # enumerated; or T = { min = 16, max = 512 }

    [[model.inputs]]
    name = "spectrogram"
    dtype = "float32"
    shape = ["B", 1, 128, "T"]

    [[model.outputs]]
    name = "position"
    kind = "regression"
    tolerances = { fp32 = { mean_abs = 1e-5 }, fp16 = { max_abs = 2e-3 } }

The pydantic tables here validate each key's type; `module_io` turns them
into `pipeline.module_io.ModuleIO` and checks what spans keys (a shape
naming an undeclared dimension, an integer input without its value range,
a decoder key on a module model), each problem one `ConfigError` line
naming the file and the key. Kept apart from `config` so the two kinds'
keys stay readable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DECODER_ONLY = ("tokenizer", "lengths", "primary_length")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DimRangeConfig(_Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)
    default: int | None = None


class ImageConfig(_Strict):
    scale: float = 1.0
    bias: float | list[float] = 0.0
    color_layout: Literal["RGB", "BGR", "G"] = "RGB"


class InputConfig(_Strict):
    name: str
    dtype: Literal["float32", "float16", "int32", "int64", "bool"] = "float32"
    shape: list[int | str] = Field(min_length=1)
    range: list[float] | None = Field(default=None, min_length=2, max_length=2)
    image: ImageConfig | None = None


class OutputConfig(_Strict):
    name: str
    kind: Literal["tensor", "logits", "regression"] = "tensor"
    top_k: int = Field(default=5, ge=1)
    tolerances: dict[Literal["fp32", "fp16"], dict[str, float]] = Field(default_factory=dict)


DimConfig = list[int] | DimRangeConfig


def module_io(model: Any, source: str, prefix: str = "model.") -> Any:
    """The ModuleIO a `[model]` table of kind "module" declares; None for a decoder.

    A decoder with module keys, or a module with decoder keys, is refused
    (the key would be ignored silently otherwise).
    """
    from pipeline.module_io import ModuleIOError
    from readiness.config import ConfigError

    module_keys = [k for k in ("inputs", "outputs", "dims", "examples") if k in model.model_fields_set]
    if model.kind != "module":
        if module_keys:
            raise ConfigError(f"{source}: {prefix}{module_keys[0]}: applies to kind = \"module\" only "
                              f"(this model is kind = \"{model.kind}\")")
        return None
    decoder_keys = [k for k in DECODER_ONLY if k in model.model_fields_set]
    if decoder_keys:
        raise ConfigError(f"{source}: {prefix}{decoder_keys[0]}: applies to kind = \"decoder\" only; a module "
                          f"model declares its shapes in {prefix}dims and {prefix}inputs")
    try:
        io = _build(model).validate(prefix)
    except ModuleIOError as exc:
        raise ConfigError(f"{source}: {prefix.removesuffix('model.')}{exc}") from None
    _check_metrics(io, source, prefix)
    return io


def _check_metrics(io: Any, source: str, prefix: str) -> None:
    from pipeline.parity.metrics import DIRECTIONS
    from readiness.config import ConfigError

    for out in io.outputs:
        for precision, bounds in out.tolerances.items():
            for metric in bounds:
                if metric not in DIRECTIONS:
                    raise ConfigError(f"{source}: {prefix}outputs.{out.name}.tolerances.{precision}.{metric}: "
                                      f"not a parity metric (known: {', '.join(sorted(DIRECTIONS))})")


def _build(model: Any) -> Any:
    from pipeline.module_io import ColorLayout, DimDecl, ImageDecl, InputDecl, ModuleIO, OutputDecl, OutputKind

    dims = []
    for name, dim in model.dims.items():
        if isinstance(dim, list):
            dims.append(DimDecl(name=name, values=tuple(dim)))
        else:
            dims.append(DimDecl(name=name, low=dim.min, high=dim.max, default=dim.default))
    inputs = []
    for inp in model.inputs:
        image = None
        if inp.image is not None:
            bias = inp.image.bias if isinstance(inp.image.bias, list) else [inp.image.bias]
            image = ImageDecl(scale=inp.image.scale, bias=tuple(bias), color_layout=ColorLayout(inp.image.color_layout))
        inputs.append(InputDecl(name=inp.name, dtype=inp.dtype, shape=tuple(inp.shape),
                                value_range=tuple(inp.range) if inp.range else None, image=image))
    outputs = tuple(OutputDecl(name=o.name, kind=OutputKind(o.kind), top_k=o.top_k,
                               tolerances={p: dict(b) for p, b in o.tolerances.items()}) for o in model.outputs)
    return ModuleIO(inputs=tuple(inputs), outputs=outputs, dims=tuple(dims), examples=model.examples)
