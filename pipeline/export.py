"""torch.export programs for prefill and decode, validated length by length.

`export_model(adapter, ExportOptions(lengths=(64, 128), primary_length=128))`
returns an `ExportBundle`:

- `prefill`: length -> ExportedProgram. In dynamic mode (the default) every
  length maps to one program exported with `Dim("T")` over
  [min(lengths), max(lengths)]; with `dynamic=False` each length gets its own
  static program (what per-length Core ML packages are converted from). If
  the dynamic export fails, each length is exported on its own so the rows
  still say which lengths work, and `errors["prefill_dynamic"]` keeps the
  dynamic export's own error (`dynamic_failed`).
- `decode`: one program whose KV cache inputs share `Dim("T_cache")` and
  whose `position` is a real int32 input.
- `rows`: one `LengthRow(T, status, reason, max_abs_err, finding)` per
  enumerated length: the program ran on inputs other than the export
  example, returned the declared number of outputs with the shapes *its own
  program* declares at that length, no NaN/Inf, matched eager within `atol`,
  and its logits before the last position did not move when only the last
  token changed (causal).
- `decode_rows`: several decode steps with the cache threaded through,
  compared with the eager decode module *and* with eager prefill over the
  whole sequence. A disagreement with prefill is then probed, so the row
  says what was observed (prefill not causal, decode ignoring its cache or
  its position) instead of guessing; see `pipeline.export_checks`.
- `prefill_io` / `decode_io`: names, dtypes and symbolic shapes read from
  the exported graph (not assumed), with the symbols renamed "T" / "T_cache".
  Static per-length programs are folded back into one symbolic description
  (a dimension equal to each program's length becomes "T").

Nothing here raises for a model that fails to export: the failure is a row
(or an entry in `errors`, one line, with the whole message and the model's
file:line in `details`), because the export gate must report it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from pipeline.contract import Dim as DimT
from pipeline.contract import TensorSpec
from pipeline.export_checks import (
    FAILED,
    OK,
    DecodeReference,
    DecodeRow,
    Finding,
    LengthRow,
    as_tuple,
    causal_shift,
    failed_length,
    failed_step,
    validate_decode,
    validate_length,
)
from pipeline.export_failure import describe


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportOptions:
    """What to export and how strictly to check it."""

    lengths: tuple[int, ...] = (64, 128, 256, 512)
    primary_length: int = 128
    dynamic: bool = True
    atol: float = 1e-4
    decode_prefill_atol: float = 1e-3  # decode vs prefill: same maths, different op order
    decode_steps: int = 4
    decode_prompt_length: int = 8
    batch: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.lengths or any(t < 2 for t in self.lengths):
            raise ValueError(f"lengths must be >= 2 (a length of 1 is specialised away): {self.lengths}")
        if self.primary_length not in self.lengths:
            raise ValueError(f"primary_length {self.primary_length} is not one of lengths {self.lengths}")
        if self.decode_prompt_length < 2:
            raise ValueError("decode_prompt_length must be >= 2, or torch.export makes the cache length a constant")
        if self.decode_steps < 1:
            raise ValueError("decode_steps must be >= 1")

    @property
    def dynamic_attempted(self) -> bool:
        """One program with a dynamic T is tried (several lengths, not per length)."""
        return self.dynamic and len(set(self.lengths)) > 1


@dataclass(frozen=True, kw_only=True)
class ExportBundle:
    """Exported programs, their I/O description and their validation."""

    options: ExportOptions
    prefill: Mapping[int, torch.export.ExportedProgram] = field(default_factory=dict)
    decode: torch.export.ExportedProgram | None = None
    prefill_io: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] = ((), ())
    decode_io: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] = ((), ())
    cache_range: tuple[int, int] = (1, 1)
    rows: tuple[LengthRow, ...] = ()
    decode_rows: tuple[DecodeRow, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)  # step -> one line
    details: Mapping[str, str] = field(default_factory=dict)  # step -> the whole message

    @property
    def dynamic_failed(self) -> bool:
        """The one dynamic prefill program was tried and could not be exported."""
        return self.options.dynamic_attempted and "prefill_dynamic" in self.errors

    def row(self, length: int) -> LengthRow | None:
        return next((r for r in self.rows if r.T == length), None)

    @property
    def primary_ok(self) -> bool:
        row = self.row(self.options.primary_length)
        return row is not None and row.status == OK

    @property
    def decode_ok(self) -> bool:
        return self.decode is not None and bool(self.decode_rows) and all(
            r.status == OK for r in self.decode_rows)


def export_model(adapter: Any, options: ExportOptions = ExportOptions()) -> ExportBundle:
    """Export and validate prefill at every length and decode over several steps."""
    errors: dict[str, str] = {}
    details: dict[str, str] = {}
    prefill, prefill_io, rows = _export_prefill(adapter, options, errors, details)
    decode, decode_io, cache_range, decode_rows = _export_decode(adapter, options, errors, details)
    return ExportBundle(options=options, prefill=prefill, decode=decode, prefill_io=prefill_io,
                        decode_io=decode_io, cache_range=cache_range, rows=tuple(rows),
                        decode_rows=tuple(decode_rows), errors=errors, details=details)


def for_conversion(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program in the ATen opset coremltools expects, cleaned up (`pipeline.conversion_passes`)."""
    from pipeline.conversion_passes import decompositions, prepare

    return prepare(program.run_decompositions(decompositions()))


# --- prefill -----------------------------------------------------------------

def _ids(options: ExportOptions, length: int, vocab: int, salt: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(options.seed * 1000 + salt)
    return torch.randint(0, vocab, (options.batch, length), generator=gen, dtype=torch.int32)


def _export_prefill(adapter: Any, options: ExportOptions, errors: dict[str, str], details: dict[str, str]):
    module = adapter.prefill_module()
    names = tuple(adapter.prefill_output_names())
    vocab = adapter.vocab_size
    programs: dict[int, torch.export.ExportedProgram] = {}
    failures: dict[int, LengthRow] = {}
    if options.dynamic_attempted:
        example = _ids(options, options.primary_length, vocab, salt=1)
        dim = torch.export.Dim("T", min=min(options.lengths), max=max(options.lengths))
        try:
            program = torch.export.export(module, (example,), dynamic_shapes=({1: dim},))
            programs = {t: program for t in options.lengths}
        except Exception as exc:  # each length is tried on its own below
            failure = describe(exc)
            errors["prefill_dynamic"], details["prefill_dynamic"] = failure.line, failure.detail
    if not programs:
        for length in options.lengths:
            try:
                programs[length] = torch.export.export(module, (_ids(options, length, vocab, salt=1),))
            except Exception as exc:
                failures[length] = failed_length(length, Finding.EXPORT_FAILED, "export failed", exc)
    # each program is checked against its own outputs: a static program's shapes hold for its length only
    ios, seen = {}, {}
    for length, program in programs.items():
        if id(program) not in seen:
            seen[id(program)] = _program_io(program, ("input_ids",), names, {"T": None})
        ios[length] = seen[id(program)]
    rows = [failures[t] if t not in programs else
            validate_length(module, programs[t], _ids(options, t, vocab, salt=2 + t), names, ios[t][1],
                            options, vocab)
            for t in options.lengths]
    return programs, _prefill_io(ios), rows


def _prefill_io(ios: Mapping[int, tuple]) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """One description of prefill's tensors; static per-length shapes become symbolic in "T"."""
    if not ios:
        return (), ()
    if len({id(io) for io in ios.values()}) == 1:  # one length, or one dynamic program
        return next(iter(ios.values()))
    lengths = sorted(ios)
    inputs, outputs = (tuple(_symbolic(side, [ios[t][k] for t in lengths], lengths))
                       for k, side in enumerate(ios[lengths[0]]))
    return inputs, outputs


def _symbolic(first: Sequence[TensorSpec], per_length: Sequence[Sequence[TensorSpec]],
              lengths: Sequence[int]):
    for i, spec in enumerate(first):
        shapes = [io[i].shape for io in per_length]
        dims = tuple(_dim([s[d] for s in shapes], lengths) for d in range(len(spec.shape)))
        yield TensorSpec(name=spec.name, dtype=spec.dtype, shape=dims)


def _dim(values: Sequence[DimT], lengths: Sequence[int]) -> DimT:
    """A dimension seen at several lengths: constant, or a*T+b when it follows T exactly."""
    ints = [v for v in values if isinstance(v, int)]
    if len(set(values)) == 1 or len(ints) < len(values):
        return values[0]
    slope, rem = divmod(ints[1] - ints[0], lengths[1] - lengths[0])
    offset = ints[0] - slope * lengths[0]
    if rem or any(v != slope * t + offset for v, t in zip(ints, lengths)):
        return values[0]  # not affine in T: keep the first length's value, validation shows the rest
    text = "T" if slope == 1 else f"{slope}*T"
    return text + (f"+{offset}" if offset > 0 else f"-{-offset}" if offset < 0 else "")


# --- decode ------------------------------------------------------------------

def _export_decode(adapter: Any, options: ExportOptions, errors: dict[str, str], details: dict[str, str]):
    module = adapter.decode_module()
    in_names = tuple(adapter.decode_input_names())
    out_names = tuple(adapter.decode_output_names())
    max_len = int(adapter.arch.get("max_seq_len", max(options.lengths) + options.decode_steps + 1))
    cache_range = (1, max_len - 1)
    prompt = options.decode_prompt_length
    ids = _ids(options, prompt + options.decode_steps, adapter.vocab_size, salt=7)
    prefill = adapter.prefill_module()
    try:
        with torch.no_grad():
            logits = as_tuple(prefill(ids))[0]
            reference = DecodeReference(
                logits=logits,
                causal_shift=causal_shift(lambda x: as_tuple(prefill(x))[0], ids, logits, adapter.vocab_size))
            # standard-layout copies: a transposed example would export a dim order Core ML refuses
            # (`.contiguous()` keeps it when a head axis has size 1, e.g. one KV head)
            caches = [c.clone(memory_format=torch.contiguous_format) for c in as_tuple(prefill(ids[:, :prompt]))[
                len(adapter.prefill_output_names()) - 2 * adapter.n_layers:]]
    except Exception as exc:
        row = failed_step(0, prompt, Finding.EAGER_FAILED, "eager prefill for the decode reference failed", exc)
        errors["decode"], details["decode"] = row.reason, row.detail
        return None, ((), ()), cache_range, [row]
    n_cache = 2 * adapter.n_layers
    example_pos = torch.tensor([prompt], dtype=torch.int32)
    dim = torch.export.Dim("T_cache", min=cache_range[0], max=cache_range[1])
    shapes = decode_dynamic_shapes(module, n_cache, dim)
    try:
        program = torch.export.export(module, (ids[:, prompt:prompt + 1], example_pos, *caches),
                                      dynamic_shapes=shapes)
    except Exception as exc:
        row = failed_step(0, prompt, Finding.EXPORT_FAILED, "export failed", exc)
        errors["decode"], details["decode"] = describe(exc).line, row.detail
        return None, ((), ()), cache_range, [row]
    io = _program_io(program, in_names, out_names, {"T_cache": None})
    rows = validate_decode(module, program, ids, reference, caches, out_names, io[1], options)
    return program, io, cache_range, rows


# --- shared helpers ----------------------------------------------------------

def decode_dynamic_shapes(module: torch.nn.Module, n_cache: int, dim: Any) -> tuple:
    """`dynamic_shapes` matching decode's signature: `*cache` nests, named caches do not."""
    params = inspect.signature(module.forward).parameters.values()
    cache_dims = tuple({2: dim} for _ in range(n_cache))
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return (None, None, cache_dims)
    return (None, None, *cache_dims)


def _program_io(program, in_names, out_names, symbols: dict[str, None]):
    """Names, dtypes and symbolic shapes of a program's user inputs/outputs."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user_inputs = program.graph_signature.user_inputs
    out_node = next(n for n in program.graph.nodes if n.op == "output")
    out_values = list(out_node.args[0])[-len(program.graph_signature.user_outputs):]
    symbol_names: dict[str, str] = {}
    # the symbol of the dynamic axis: T on input_ids axis 1, T_cache on a cache axis 2
    for name in user_inputs:
        val = placeholders[name].meta["val"]
        for dim in val.shape:
            if not isinstance(dim, int) and str(dim) not in symbol_names:
                symbol_names[str(dim)] = next(iter(symbols))
    inputs = tuple(_spec(n, placeholders[u].meta["val"], symbol_names)
                   for n, u in zip(in_names, user_inputs))
    outputs = tuple(_spec(n, node.meta["val"], symbol_names)
                    for n, node in zip(out_names, out_values))
    return inputs, outputs


def _spec(name: str, val: Any, symbol_names: dict[str, str]) -> TensorSpec:
    dims: list[DimT] = []
    for dim in val.shape:
        if isinstance(dim, int) or str(dim).lstrip("-").isdigit():
            dims.append(int(dim))
        else:
            text = str(dim)
            for sym, label in sorted(symbol_names.items(), key=lambda kv: -len(kv[0])):
                text = text.replace(sym, label)
            dims.append(text.replace(" ", ""))
    return TensorSpec(name=name, dtype=str(val.dtype).removeprefix("torch."), shape=tuple(dims))


__all__ = ["decode_dynamic_shapes", "ExportOptions", "ExportBundle", "LengthRow", "DecodeRow", "Finding",
           "export_model", "for_conversion", "OK", "FAILED"]
