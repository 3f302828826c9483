"""torch.export programs for prefill and decode, validated length by length.

`export_model(adapter, ExportOptions(lengths=(64, 128), primary_length=128))`
returns an `ExportBundle`:

- `prefill`: length -> ExportedProgram. In dynamic mode (the default) every
  length maps to one program exported with `Dim("T")` over
  [min(lengths), max(lengths)]; with `dynamic=False` each length gets its own
  static program (what per-length Core ML packages are converted from). If
  the dynamic export fails, each length is exported on its own so the rows
  still say which lengths work.
- `decode`: one program whose KV cache inputs share `Dim("T_cache")` and
  whose `position` is a real int32 input.
- `rows`: one `LengthRow(T, status, reason, max_abs_err)` per enumerated
  length: the program ran on inputs other than the export example, returned
  the declared number of outputs with the declared shapes, no NaN/Inf, and
  matched eager within `atol`.
- `decode_rows`: several decode steps with the cache threaded through,
  compared with the eager decode module *and* with eager prefill over the
  whole sequence. The second comparison is what catches a decode that
  ignores its cache or position: such a decode matches its own eager self.
- `prefill_io` / `decode_io`: names, dtypes and symbolic shapes read from
  the exported graph (not assumed), with the symbols renamed "T" / "T_cache".

Nothing here raises for a model that fails to export: the failure is a row
(or an entry in `errors`), because the export gate must report it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from pipeline.contract import Dim as DimT, TensorSpec, resolve_shape

OK = "ok"
FAILED = "failed"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthRow:
    """The validation of one enumerated prefill length."""

    T: int
    status: str
    reason: str = ""
    max_abs_err: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"T": self.T, "status": self.status, "reason": self.reason, "max_abs_err": self.max_abs_err}


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeRow:
    """One decode step: exported vs eager decode, and vs eager prefill."""

    step: int
    position: int
    status: str
    reason: str = ""
    max_abs_err: float | None = None  # vs the eager decode module
    prefill_abs_err: float | None = None  # vs eager prefill of the whole sequence

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "position": self.position, "status": self.status,
                "reason": self.reason, "max_abs_err": self.max_abs_err,
                "prefill_abs_err": self.prefill_abs_err}


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
    errors: Mapping[str, str] = field(default_factory=dict)

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
    prefill, prefill_io, rows = _export_prefill(adapter, options, errors)
    decode, decode_io, cache_range, decode_rows = _export_decode(adapter, options, errors)
    return ExportBundle(options=options, prefill=prefill, decode=decode, prefill_io=prefill_io,
                        decode_io=decode_io, cache_range=cache_range, rows=tuple(rows),
                        decode_rows=tuple(decode_rows), errors=errors)


def for_conversion(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program in the ATen opset coremltools expects."""
    return program.run_decompositions({})


# --- prefill -----------------------------------------------------------------

def _ids(options: ExportOptions, length: int, vocab: int, salt: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(options.seed * 1000 + salt)
    return torch.randint(0, vocab, (options.batch, length), generator=gen, dtype=torch.int32)


def _export_prefill(adapter: Any, options: ExportOptions, errors: dict[str, str]):
    module = adapter.prefill_module()
    names = tuple(adapter.prefill_output_names())
    vocab = adapter.vocab_size
    programs: dict[int, torch.export.ExportedProgram] = {}
    failures: dict[int, str] = {}
    if options.dynamic and len(set(options.lengths)) > 1:
        example = _ids(options, options.primary_length, vocab, salt=1)
        dim = torch.export.Dim("T", min=min(options.lengths), max=max(options.lengths))
        try:
            program = torch.export.export(module, (example,), dynamic_shapes=({1: dim},))
            programs = {t: program for t in options.lengths}
        except Exception as exc:  # each length is tried on its own below
            errors["prefill_dynamic"] = _one_line(exc)
    if not programs:
        for length in options.lengths:
            try:
                programs[length] = torch.export.export(module, (_ids(options, length, vocab, salt=1),))
            except Exception as exc:
                failures[length] = f"export failed: {_one_line(exc)}"
    io = ((), ())
    any_program = next(iter(programs.values()), None)
    if any_program is not None:
        io = _program_io(any_program, ("input_ids",), names, {"T": None})
    rows = [_validate_length(module, programs.get(t), t, vocab, names, io[1], options, failures.get(t, ""))
            for t in options.lengths]
    return programs, io, rows


def _validate_length(module, program, length: int, vocab: int, names, out_specs, options,
                     failure: str) -> LengthRow:
    if program is None:
        return LengthRow(T=length, status=FAILED, reason=failure or "no program")
    ids = _ids(options, length, vocab, salt=2 + length)
    try:
        with torch.no_grad():
            got = _as_tuple(program.module()(ids))
    except Exception as exc:
        return LengthRow(T=length, status=FAILED, reason=f"program did not run: {_one_line(exc)}")
    try:
        with torch.no_grad():
            want = _as_tuple(module(ids))
    except Exception as exc:
        return LengthRow(T=length, status=FAILED, reason=f"eager model failed: {_one_line(exc)}")
    problem = _compare(got, want, names, out_specs, {"T": length, "B": options.batch})
    err = _max_abs_err(got, want)
    if not problem and err > options.atol:
        problem = f"differs from eager by {err:.3g} > atol {options.atol:g}"
    return LengthRow(T=length, status=FAILED if problem else OK, reason=problem,
                     max_abs_err=None if err != err else err)


# --- decode ------------------------------------------------------------------

def _export_decode(adapter: Any, options: ExportOptions, errors: dict[str, str]):
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
            reference = _as_tuple(prefill(ids))
            # contiguous copies: a transposed example would export a dim order Core ML refuses
            caches = [c.contiguous() for c in _as_tuple(prefill(ids[:, :prompt]))[
                len(adapter.prefill_output_names()) - 2 * adapter.n_layers:]]
    except Exception as exc:
        errors["decode"] = f"eager prefill for the decode reference failed: {_one_line(exc)}"
        return None, ((), ()), cache_range, [DecodeRow(step=0, position=prompt, status=FAILED,
                                                      reason=errors["decode"])]
    n_cache = 2 * adapter.n_layers
    example_pos = torch.tensor([prompt], dtype=torch.int32)
    dim = torch.export.Dim("T_cache", min=cache_range[0], max=cache_range[1])
    shapes = decode_dynamic_shapes(module, n_cache, dim)
    try:
        program = torch.export.export(module, (ids[:, prompt:prompt + 1], example_pos, *caches),
                                      dynamic_shapes=shapes)
    except Exception as exc:
        errors["decode"] = _one_line(exc)
        return None, ((), ()), cache_range, [DecodeRow(step=0, position=prompt, status=FAILED,
                                                      reason=f"export failed: {_one_line(exc)}")]
    io = _program_io(program, in_names, out_names, {"T_cache": None})
    rows = _validate_decode(module, program, ids, reference, caches, out_names, io[1], options)
    return program, io, cache_range, rows


def _validate_decode(module, program, ids, reference, caches, names, out_specs, options):
    prompt, rows = options.decode_prompt_length, []
    got_cache, want_cache = list(caches), list(caches)
    runner = program.module()
    for step in range(options.decode_steps):
        position = prompt + step
        token = ids[:, position:position + 1]
        pos = torch.tensor([position], dtype=torch.int32)
        try:
            with torch.no_grad():
                got = _as_tuple(runner(token, pos, *got_cache))
        except Exception as exc:
            rows.append(DecodeRow(step=step, position=position, status=FAILED,
                                  reason=f"program did not run: {_one_line(exc)}"))
            break
        try:
            with torch.no_grad():
                want = _as_tuple(module(token, pos, *want_cache))
        except Exception as exc:
            rows.append(DecodeRow(step=step, position=position, status=FAILED,
                                  reason=f"eager decode failed: {_one_line(exc)}"))
            break
        problem = _compare(got, want, names, out_specs, {"T_cache": position, "B": options.batch})
        err = _max_abs_err(got, want)
        prefill_err = float((got[0][:, 0] - reference[0][:, position]).abs().max())
        if not problem and err > options.atol:
            problem = f"differs from eager decode by {err:.3g} > atol {options.atol:g}"
        if not problem and not prefill_err <= options.decode_prefill_atol:
            problem = (f"logits at position {position} differ from prefill by {prefill_err:.3g}:"
                       " the decode step does not use its cache or its position")
        rows.append(DecodeRow(step=step, position=position, status=FAILED if problem else OK,
                              reason=problem, max_abs_err=err, prefill_abs_err=prefill_err))
        got_cache, want_cache = list(got[1:]), list(want[1:])
    return rows


# --- shared helpers ----------------------------------------------------------

def decode_dynamic_shapes(module: torch.nn.Module, n_cache: int, dim: Any) -> tuple:
    """`dynamic_shapes` matching decode's signature: `*cache` nests, named caches do not."""
    params = inspect.signature(module.forward).parameters.values()
    cache_dims = tuple({2: dim} for _ in range(n_cache))
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return (None, None, cache_dims)
    return (None, None, *cache_dims)


def _as_tuple(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _max_abs_err(got, want) -> float:
    if len(got) != len(want):
        return float("nan")
    errs = [float((g.float() - w.float()).abs().max()) if g.shape == w.shape and g.numel() else
            (0.0 if g.shape == w.shape else float("inf")) for g, w in zip(got, want)]
    return max(errs) if errs else float("nan")


def _compare(got, want, names, specs, env: dict[str, int]) -> str:
    """Empty if `got` has the declared count and shapes and is finite."""
    if len(got) != len(names):
        return f"returned {len(got)} outputs but {len(names)} are named ({', '.join(names)})"
    for tensor, spec in zip(got, specs):
        expected = resolve_shape(spec.shape, env)
        if tuple(tensor.shape) != expected:
            return f"{spec.name} has shape {list(tensor.shape)}, expected {list(expected)}"
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"{spec.name} contains NaN or Inf"
    if len(want) != len(got):
        return f"eager returned {len(want)} outputs, the program {len(got)}"
    return ""


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


__all__ = ["decode_dynamic_shapes", "ExportOptions", "ExportBundle", "LengthRow", "DecodeRow", "export_model",
           "for_conversion", "OK", "FAILED"]
