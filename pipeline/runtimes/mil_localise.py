"""Localising a parity failure to one MIL op.

Two findings, both from an interpreter trace (`MilInterpreter.trace`):

- `first_nonfinite`: the first op that *introduces* NaN or Inf: its output
  holds a NaN none of its inputs held, or an Inf while every input was finite
  (a masked `-inf` flowing through later ops is not a new finding). In an fp16
  program this names the op whose activation exceeded 65504.
- `first_divergence`: the first op whose value differs from the PyTorch
  reference beyond a relative tolerance, among the ops that can be matched
  to a node of the exported PyTorch graph. coremltools names MIL ops after
  the FX nodes they came from (`mul_13`, `mul_13_cast_fp16`), so matching is
  by var name after stripping the precision suffixes (outputs the converter
  named after the model's outputs match those outputs), and only where the
  shapes agree; unmatched ops are skipped rather than guessed.

coremltools' own `MLModelValidator.find_failing_ops` does this on macOS by
running Core ML itself; this works wherever the interpreter runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.runtimes.mil_interpreter import OpRecord

_SUFFIXES = re.compile(r"(_cast_fp16|_cast_fp32|_to_fp16|_to_fp32)+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpFinding:
    """Where a program first goes wrong: `kind` is "nan", "inf" or "divergence"."""

    kind: str
    op_name: str
    op_type: str
    var_name: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "op": self.op_name, "op_type": self.op_type,
                "var": self.var_name, "detail": self.detail}


def _floats(value: Any) -> np.ndarray | None:
    arr = np.asarray(value) if isinstance(value, (np.ndarray, np.generic)) else None
    return arr if arr is not None and arr.dtype.kind == "f" else None


def first_nonfinite(records: Sequence[OpRecord], inputs: Mapping[str, Any]) -> OpFinding | None:
    """The first op whose output gains a NaN or Inf its inputs did not have."""
    values: dict[str, Any] = dict(inputs)
    for rec in records:
        ins = [_floats(values.get(n)) for n in rec.input_names]
        in_nan = any(a is not None and np.isnan(a).any() for a in ins)
        in_inf = any(a is not None and np.isinf(a).any() for a in ins)
        for name, out in zip(rec.output_names, rec.outputs):
            values[name] = out
            arr = _floats(out)
            if arr is None:
                continue
            if not in_nan and np.isnan(arr).any():
                return OpFinding(kind="nan", op_name=rec.name, op_type=rec.op_type, var_name=name,
                                 detail=f"{int(np.isnan(arr).sum())} NaN values first appear in "
                                        f"{rec.op_type} {rec.name!r}")
            if not in_inf and not in_nan and np.isinf(arr).any():
                finite = arr[np.isfinite(arr)]
                peak = float(np.abs(finite).max()) if finite.size else float("nan")
                return OpFinding(kind="inf", op_name=rec.name, op_type=rec.op_type, var_name=name,
                                 detail=f"{int(np.isinf(arr).sum())} Inf values first appear in "
                                        f"{rec.op_type} {rec.name!r} (finite inputs; largest finite "
                                        f"output {peak:g}: an fp16 overflow past 65504?)")
    return None


def _candidates(name: str) -> list[str]:
    base = _SUFFIXES.sub("", name)
    return list(dict.fromkeys([name, base]))


def first_divergence(records: Sequence[OpRecord], reference: Mapping[str, np.ndarray],
                     rel_tol: float) -> tuple[OpFinding | None, int]:
    """(first op diverging beyond `rel_tol` of the reference's magnitude, ops matched)."""
    matched = 0
    for rec in records:
        for name, out in zip(rec.output_names, rec.outputs):
            arr = _floats(out)
            if arr is None:
                continue
            # By the var's own name only: the converter renames the vars of named outputs
            # (`v_cache_0`) but keeps a numbered op name that may belong to another FX node.
            for key in _candidates(name):
                ref = reference.get(key)
                if ref is None or np.shape(ref) != arr.shape:
                    continue
                matched += 1
                ref64 = np.asarray(ref, np.float64)
                scale = max(float(np.abs(ref64).max()) if ref64.size else 0.0, 1e-6)
                err = float(np.abs(ref64 - arr).max()) if arr.size else 0.0
                if not np.isfinite(err) or err > rel_tol * scale:
                    return OpFinding(kind="divergence", op_name=rec.name, op_type=rec.op_type,
                                     var_name=name,
                                     detail=f"{rec.op_type} {rec.name!r} differs from PyTorch node "
                                            f"{key!r} by {err:.3g} (max |ref| {scale:.3g})"), matched
                break
    return None, matched


def torch_activations(program: Any, args: tuple, output_names: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Every FX node's output of an ExportedProgram (or module, exported here), by node name;
    with `output_names`, the program's outputs also under those names (what the
    converted package calls them)."""
    import torch
    from torch.fx import Interpreter

    if not isinstance(program, torch.export.ExportedProgram):
        program = torch.export.export(program, args).run_decompositions({})
    # Run the lifted graph itself: `program.module()` renames its nodes, and the
    # names are what the converter gave the MIL ops.
    user = iter(args)
    flat: list[Any] = []
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            flat.append(next(user))
        elif spec.target in program.state_dict:
            flat.append(program.state_dict[spec.target])
        else:
            flat.append(program.constants[spec.target])
    acts: dict[str, np.ndarray] = {}

    class _Recorder(Interpreter):
        def run_node(self, node):  # type: ignore[no-untyped-def]
            result = super().run_node(node)
            if isinstance(result, torch.Tensor) and result.is_floating_point():
                acts[node.name] = result.detach().float().numpy().copy()
            return result

    with torch.inference_mode():
        outputs = _Recorder(program.graph_module).run(*flat)
    user_outputs = list(outputs)[-len(program.graph_signature.user_outputs):] if output_names else []
    for name, value in zip(output_names, user_outputs):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            acts[name] = value.detach().float().numpy().copy()
    return acts
