"""torch.export of a module model over its declared dimensions, validated shape by shape.

    >>> bundle = export_module(model, atol=1e-4, seed=0)
    >>> bundle.program                      # one ExportedProgram, a torch.export.Dim per varying dimension
    >>> [(r.shape, r.status) for r in bundle.rows]
    [('B=1,T=64', 'ok'), ('B=1,T=256', 'ok'), ...]
    >>> bundle.inputs[0].shape, bundle.outputs[0].shape
    (('B', 1, 128, 'T'), ('B', 2))

Every dimension with more than one size to check becomes one
`torch.export.Dim` over [smallest, largest], shared by every input that
names it; the export example takes each at its largest size (a size of 1
would be specialised away). Each shape case is then run on inputs other
than the export example: the program runs, returns as many outputs as are
named, each with the shape eager gives, all finite, within `atol` (scaled
by the output's magnitude when it exceeds 1) of eager. A failed export
fails every row with the exporter's one-line message (the whole message in
`details`).

`inputs` / `outputs` are read from the exported graph (dtypes and symbolic
shapes, with torch's symbols renamed after the declared dimensions, e.g.
`T//4`), and `case_outputs` records each case's concrete output shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pipeline.contract import TensorSpec
from pipeline.export_checks import FAILED, OK, Finding
from pipeline.export_failure import describe
from pipeline.module_inputs import model_inputs, random_inputs
from pipeline.module_io import ModuleIO, ShapeCase

EXAMPLE_SALT, CHECK_SALT = 0, 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeRow:
    """The validation of one shape case."""

    shape: str
    status: str
    reason: str = ""
    max_abs_err: float | None = None
    finding: Finding | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "status": self.status, "reason": self.reason,
                "max_abs_err": self.max_abs_err}


@dataclass(frozen=True, kw_only=True)
class ModuleExportBundle:
    """The exported program, its tensors as the graph declares them, and one row per shape."""

    program: torch.export.ExportedProgram | None
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    rows: tuple[ShapeRow, ...] = ()
    case_outputs: Mapping[str, Mapping[str, tuple[int, ...]]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.program is not None and bool(self.rows) and all(r.status == OK for r in self.rows)


def dynamic_dims(io: ModuleIO) -> dict[str, Any]:
    """A torch.export.Dim per dimension with more than one size to check."""
    return {d.name: torch.export.Dim(d.name, min=d.span[0], max=d.span[1])
            for d in io.dims if len(d.candidates) > 1}


def dynamic_shapes(io: ModuleIO) -> tuple[dict[int, Any] | None, ...]:
    """`dynamic_shapes` for the entry module: per input, axis -> Dim (one Dim object per name)."""
    dims = dynamic_dims(io)
    shapes = []
    for inp in io.inputs:
        axes = {axis: dims[d] for axis, d in enumerate(inp.shape) if isinstance(d, str) and d in dims}
        shapes.append(axes or None)
    return tuple(shapes)


def example_case(io: ModuleIO) -> ShapeCase:
    """Each dimension at its largest size: the export example."""
    return ShapeCase(env={d.name: d.span[1] for d in io.dims})


def tensors(io: ModuleIO, inputs: Mapping[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Module-domain torch tensors in declared input order."""
    feed = model_inputs(io, inputs)
    return tuple(torch.from_numpy(np.ascontiguousarray(feed[i.name])) for i in io.inputs)


def export_module(model: Any, *, atol: float = 1e-4, seed: int = 0) -> ModuleExportBundle:
    """Export once with dynamic dimensions, then validate every declared shape case."""
    io: ModuleIO = model.io
    entry = model.entry()
    example = tensors(io, random_inputs(io, example_case(io), seed, EXAMPLE_SALT))
    try:
        program = torch.export.export(entry, example, dynamic_shapes=dynamic_shapes(io) if io.dims else None)
    except Exception as exc:
        failure = describe(exc)
        rows = tuple(ShapeRow(shape=c.label, status=FAILED, reason=f"export failed: {failure.line}",
                              finding=Finding.EXPORT_FAILED, detail=failure.detail) for c in io.cases())
        return ModuleExportBundle(program=None, rows=rows, errors={"export": failure.line},
                                  details={"export": failure.detail})
    ins, outs = program_io(program, io, model.output_names)
    runner = program.module()  # module() builds a GraphModule: once
    checked: list[ShapeRow] = []
    shapes = {}
    for case in io.cases():
        row, got = validate_case(entry, runner, io, case, model.output_names, atol, seed)
        checked.append(row)
        if got:
            shapes[case.label] = got
    return ModuleExportBundle(program=program, inputs=ins, outputs=outs, rows=tuple(checked), case_outputs=shapes)


def validate_case(entry: torch.nn.Module, runner: Any, io: ModuleIO, case: ShapeCase,
                  names: Sequence[str], atol: float, seed: int) -> tuple[ShapeRow, dict[str, tuple[int, ...]]]:
    """Run the program (`runner`: its `.module()`) at one case against eager; the row and the
    output shapes eager gave."""
    args = tensors(io, random_inputs(io, case, seed, CHECK_SALT))
    try:
        with torch.no_grad():
            got = _tuple(runner(*args))
    except Exception as exc:
        return _failed(case, Finding.DID_NOT_RUN, "the exported program did not run", exc), {}
    try:
        with torch.no_grad():
            want = _tuple(entry(*args))
    except Exception as exc:
        return _failed(case, Finding.EAGER_FAILED, "the eager model failed", exc), {}
    shapes = {n: tuple(t.shape) for n, t in zip(names, want)}
    problem, err = _compare(got, want, names, atol)
    finding = None
    if problem:
        finding = Finding.DIFFERS_FROM_EAGER if problem.startswith("differs") else Finding.BAD_OUTPUTS
    return ShapeRow(shape=case.label, status=FAILED if problem else OK, reason=problem,
                    max_abs_err=err, finding=finding), shapes


def _failed(case: ShapeCase, finding: Finding, what: str, exc: BaseException) -> ShapeRow:
    failure = describe(exc)
    return ShapeRow(shape=case.label, status=FAILED, reason=f"{what}: {failure.line}", finding=finding,
                    detail=failure.detail)


def _tuple(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _compare(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor], names: Sequence[str],
             atol: float) -> tuple[str, float | None]:
    if len(got) != len(names) or len(want) != len(names):
        return f"returned {len(got)} outputs (eager {len(want)}) but {len(names)} are named", None
    worst = 0.0
    for name, g, w in zip(names, got, want):
        if tuple(g.shape) != tuple(w.shape):
            return f"{name} has shape {list(g.shape)}, eager gives {list(w.shape)}", None
        if g.is_floating_point() and not bool(torch.isfinite(g).all()):
            return f"{name} contains NaN or Inf", None
        if not g.numel():
            continue
        err = float((g.double() - w.double()).abs().max())
        scale = max(1.0, float(w.double().abs().max()))
        worst = max(worst, err)
        if err > atol * scale:
            return f"differs from eager: {name} by {err:.3g} > atol {atol:g} (x{scale:.3g})", worst
    return "", worst


def program_io(program: Any, io: ModuleIO, output_names: Sequence[str]):
    """Names, dtypes and symbolic shapes of the program's inputs and outputs."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user_inputs = program.graph_signature.user_inputs
    symbols: dict[str, str] = {}
    for inp, placeholder in zip(io.inputs, user_inputs):
        for axis, size in enumerate(placeholders[placeholder].meta["val"].shape):
            dim = inp.shape[axis]
            if not _static(size) and isinstance(dim, str):
                symbols.setdefault(str(size), dim)
    out_node = next(n for n in program.graph.nodes if n.op == "output")
    out_values = list(out_node.args[0])[-len(program.graph_signature.user_outputs):]
    ins = tuple(_spec(i.name, placeholders[p].meta["val"], symbols) for i, p in zip(io.inputs, user_inputs))
    outs = tuple(_spec(n, node.meta["val"], symbols) for n, node in zip(output_names, out_values))
    return ins, outs


def _static(size: Any) -> bool:
    return isinstance(size, int) or str(size).lstrip("-").isdigit()


def _spec(name: str, val: Any, symbols: Mapping[str, str]) -> TensorSpec:
    dims: list[int | str] = []
    for size in val.shape:
        if _static(size):
            dims.append(int(size))
            continue
        text = str(size)
        for sym, label in sorted(symbols.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(sym, label)
        dims.append(text.replace(" ", ""))
    return TensorSpec(name=name, dtype=str(val.dtype).removeprefix("torch."), shape=tuple(dims))
