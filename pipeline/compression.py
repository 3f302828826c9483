"""Compressed Core ML packages: the weight compressions a deployed model ships with.

    >>> report = compress_package(Path("prefill_fp16.mlpackage"), "int4_block32",
    ...                           Path("prefill_int4_block32.mlpackage"))
    >>> report.compressed, report.size_bytes     # which weights, how big the package is

Each kind is one `coremltools.optimize.coreml` call on the fp16 package (the
precision devices run compressed models in):

- `int8`: `linear_quantize_weights`, symmetric, per output channel; stored as
  `constexpr_blockwise_shift_scale`;
- `int4_block32`: `linear_quantize_weights`, symmetric int4, blocks of 32 input
  channels; stored as `constexpr_blockwise_shift_scale`;
- `palettize4`, `palettize6`: `palettize_weights`, k-means, one 16/64-entry LUT
  per 16 output channels; stored as `constexpr_lut_to_dense`;
- `prune50`: `prune_weights`, 50 % magnitude sparsity; stored as
  `constexpr_sparse_to_dense`.

Only the model's parameters are compressed (the consts torch.export lifted
as `p_*`): buffers such as rotary tables or an additive causal mask are
values the program computes with, not weights, and rounding them changes the
model's arithmetic rather than its storage. coremltools' own size threshold
(2048 elements) still applies, and a weight whose shape does not divide
into the block size is left in fp16 (coremltools says so); `compressed` and
`skipped` record both. `overrides` gives single weights another config (the
seeded defects use it: an LM head palettized to 2 bits).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import coremltools as ct
import coremltools.optimize.coreml as cto

PARAMETER_PREFIX = "p_"  # torch.export's name for a lifted parameter
WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller weights stay dense


@dataclass(frozen=True, slots=True, kw_only=True)
class CompressionKind:
    """One named compression: the coremltools call and its config."""

    name: str
    describe: str
    compress: Callable[..., Any]
    graph_pass: str  # the same compression as a conversion pass
    config: Callable[[], Any]
    bits: float  # bits per weight, before scales and LUTs


KINDS: dict[str, CompressionKind] = {k.name: k for k in (
    CompressionKind(name="int8", describe="int8, per output channel", bits=8,
                    compress=cto.linear_quantize_weights, graph_pass="compression::linear_quantize_weights",
                    config=lambda: cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                               granularity="per_channel",
                                                               weight_threshold=WEIGHT_THRESHOLD)),
    CompressionKind(name="int4_block32", describe="int4, blocks of 32", bits=4,
                    compress=cto.linear_quantize_weights, graph_pass="compression::linear_quantize_weights",
                    config=lambda: cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4",
                                                               granularity="per_block", block_size=32,
                                                               weight_threshold=WEIGHT_THRESHOLD)),
    CompressionKind(name="palettize4", describe="4-bit k-means LUT per 16 channels", bits=4,
                    compress=cto.palettize_weights, graph_pass="compression::palettize_weights",
                    config=lambda: cto.OpPalettizerConfig(mode="kmeans", nbits=4,
                                                          granularity="per_grouped_channel", group_size=16,
                                                          weight_threshold=WEIGHT_THRESHOLD)),
    CompressionKind(name="palettize6", describe="6-bit k-means LUT per 16 channels", bits=6,
                    compress=cto.palettize_weights, graph_pass="compression::palettize_weights",
                    config=lambda: cto.OpPalettizerConfig(mode="kmeans", nbits=6,
                                                          granularity="per_grouped_channel", group_size=16,
                                                          weight_threshold=WEIGHT_THRESHOLD)),
    CompressionKind(name="prune50", describe="50 % magnitude sparsity", bits=8,
                    compress=cto.prune_weights, graph_pass="compression::prune_weights",
                    config=lambda: cto.OpMagnitudePrunerConfig(target_sparsity=0.5,
                                                               weight_threshold=WEIGHT_THRESHOLD)),
)}


class CompressionError(Exception):
    """coremltools refused to compress a package; the message is its own."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompressionReport:
    """What one compression did: which weights it compressed, how big the result is."""

    kind: str
    path: Path
    compressed: tuple[str, ...]
    skipped: tuple[str, ...]  # parameters left dense (too small, or not divisible into blocks)
    size_bytes: int


def package_bytes(path: Path) -> int:
    """Bytes on disk of a package folder (spec, weights, manifest)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def optimization_config(kind_name: str, weight_names: Sequence[str],
                        overrides: Mapping[str, Any] | None = None) -> Any:
    """The coremltools config of `kind_name` over a program whose consts are `weight_names`:
    parameters get the kind's config (or an override matching their name's start), the rest none."""
    by_name: dict[str, Any] = {name: None for name in weight_names if not name.startswith(PARAMETER_PREFIX)}
    for prefix, config in (overrides or {}).items():
        by_name.update((name, config) for name in weight_names if name.startswith(prefix))
    return cto.OptimizationConfig(global_config=KINDS[kind_name].config(), op_name_configs=by_name)


def conversion_pass(kind_name: str, weight_names: Sequence[str],
                    overrides: Mapping[str, Any] | None = None) -> tuple[str, Any]:
    """The graph pass (and its config) that compresses inside `ct.convert`, for programs the
    optimize API cannot round-trip (stateful ones: see pipeline.stateful_decode)."""
    return KINDS[kind_name].graph_pass, optimization_config(kind_name, weight_names, overrides)


def weight_names(path: Path) -> list[str]:
    """Every const of a package's program, by name."""
    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    return list(cto.get_weights_metadata(mlmodel, weight_threshold=0))


def compress_package(source: Path, kind_name: str, out_path: Path, *,
                     overrides: Mapping[str, Any] | None = None) -> CompressionReport:
    """A compressed copy of `source` (an fp16 package) at `out_path`, written atomically."""
    if kind_name not in KINDS:
        raise ValueError(f"compression {kind_name!r} is not one of {', '.join(KINDS)}")
    kind = KINDS[kind_name]
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        mlmodel = ct.models.MLModel(str(source), skip_model_load=True)
        names = list(cto.get_weights_metadata(mlmodel, weight_threshold=0))
        params = [name for name in names if name.startswith(PARAMETER_PREFIX)]
        compressed_model = kind.compress(mlmodel, config=optimization_config(kind_name, names, overrides))
    except Exception as exc:
        raise CompressionError(f"{kind_name} compression of {Path(source).name} failed: "
                               f"{type(exc).__name__}: {exc}") from exc
    dense = set(cto.get_weights_metadata(compressed_model, weight_threshold=0))
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.stem + ".partial.mlpackage")
    shutil.rmtree(tmp, ignore_errors=True)
    compressed_model.save(str(tmp))
    shutil.rmtree(out_path, ignore_errors=True)
    tmp.rename(out_path)
    return CompressionReport(kind=kind_name, path=out_path,
                             compressed=tuple(sorted(p for p in params if p not in dense)),
                             skipped=tuple(sorted(p for p in params if p in dense)),
                             size_bytes=package_bytes(out_path))
