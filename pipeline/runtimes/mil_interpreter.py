"""A reference interpreter that runs a Core ML ML Program on Linux.

Core ML's `predict` exists only on macOS. The program inside a `.mlpackage`
is plain MIL, and coremltools' pyMIL objects know how to compute most of their
own values (`value_inference()`, used for constant folding). So:

    >>> interp = MilInterpreter.load("student_fp16.mlpackage")   # once
    >>> interp.run({"input_ids": ids})["logits"].shape             # many times
    (1, 64, 512)

`load` rebuilds the program with coremltools' milproto loader and evaluates
every `const` once. `run` checks each input against the package's enumerated
or ranged shapes, then evaluates the ops in program order: each op's input
vars are given concrete values, dynamic-shape programs are re-typed with the
concrete shapes (otherwise `shape` ops yield symbols), and the op's kernel
(see `mil_ops`) computes its outputs. Arithmetic is float32; outputs of
fp16-typed ops are rounded to float16, which is how an fp16 program stores
activations on device. Every var touched is restored afterwards, so nothing
leaks from one run into the next; a lock serialises runs on one instance.

`trace` is `run` that also returns every op's outputs, in order, for
localising a parity failure (`pipeline.runtimes.mil_localise`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.runtimes.base import InputShapeError, UnsupportedOps
from pipeline.runtimes.mil_ops import KERNELS, unsupported
from pipeline.runtimes.mil_package import InputContract, LoadedPackage, load_package


class _Value:
    """Stands in for a builtin value in `Var._sym_val`; ops read `.val`."""

    __slots__ = ("val",)

    def __init__(self, val: Any) -> None:
        self.val = val


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One evaluated op: its name, type and output values, in program order."""

    name: str
    op_type: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    outputs: tuple[Any, ...]


def _storage(var: Any, value: Any) -> Any:
    """`value` as `var` stores it: fp16 rounded (kept float32), ints as declared,
    scalars as numpy scalars (ops pass them to numpy as axes and flags)."""
    from coremltools.converters.mil.mil import types

    if not isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return value  # strings and lists pass through
    dtype = var.dtype
    if dtype == types.fp16:
        with np.errstate(over="ignore"):
            value = np.asarray(value, np.float32).astype(np.float16).astype(np.float32)
    elif dtype in (types.fp32, types.fp64):
        value = np.asarray(value, np.float32)
    elif dtype == types.bool:
        value = np.asarray(value, bool)
    else:
        try:
            value = np.asarray(value, types.nptype_from_builtin(dtype))
        except Exception:
            value = np.asarray(value)
    if not types.is_tensor(var.sym_type) and value.ndim == 0:
        return bool(value) if value.dtype == bool else value[()]
    return value


def _retype(var: Any, value: Any) -> None:
    """Trust the value's shape where the op's own type inference disagrees."""
    from coremltools.converters.mil.mil import types

    if not isinstance(value, np.ndarray) or types.is_list(var.sym_type):
        return
    if types.is_tensor(var.sym_type) and tuple(var.shape) == value.shape:
        return
    if value.ndim or types.is_tensor(var.sym_type):
        var._sym_type = types.tensor(var.dtype, value.shape)


def _is_symbolic(var: Any) -> bool:
    from coremltools.converters.mil.mil.types.symbolic import is_symbolic

    return any(is_symbolic(d) for d in getattr(var, "shape", ()))


class MilInterpreter:
    """Executes one function of a loaded ML Program on numpy inputs."""

    name = "mil"

    def __init__(self, package: LoadedPackage) -> None:
        function = package.function
        self.path = package.path
        self.inputs: tuple[InputContract, ...] = package.inputs
        self.output_names = package.output_names or tuple(v.name for v in function.outputs)
        self._function = function
        self._input_vars = dict(function.inputs)
        self._ops = [op for op in function.operations if op.op_type != "const"]
        missing = unsupported([op.op_type for op in function.operations] + self._nested_ops())
        if missing:
            raise UnsupportedOps(missing, str(package.path))
        self._freeze_consts(function)
        self._dynamic = any(_is_symbolic(v) for v in self._input_vars.values())
        self._saved = {id(v): (v, v._sym_type, v._sym_val) for v in self._touched_vars()}
        self._out_vars = {v.name: v for v in function.outputs}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, function_name: str | None = None) -> MilInterpreter:
        """Load a `.mlpackage` once; raise UnsupportedOps when it cannot be run."""
        return cls(load_package(path, function_name))

    @classmethod
    def from_function(cls, function: Any, inputs: tuple[InputContract, ...] = ()) -> MilInterpreter:
        """Wrap an in-memory pyMIL function (tests build programs with `mb`)."""
        return cls(LoadedPackage(path=Path("<memory>"), function=function, inputs=inputs,
                                 output_names=tuple(v.name for v in function.outputs),
                                 spec_version=0))

    def _nested_ops(self) -> list[str]:
        return [op.op_type for op in self._function.operations if op.blocks]

    def _freeze_consts(self, function: Any) -> None:
        # Consts are evaluated once, as float32 (fp16 weights exactly), so fp16
        # programs compute in float32 without re-casting weights every run.
        for op in function.operations:
            if op.op_type == "const":
                for var in op.outputs:
                    var._sym_val = _Value(_storage(var, var.val if var.val is not None else var.sym_val))

    def _touched_vars(self) -> list[Any]:
        touched = list(self._input_vars.values())
        for op in self._ops:
            touched.extend(op.outputs)
        return touched

    def _bind_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        from coremltools.converters.mil.mil import types

        contracts = {c.name: c for c in self.inputs}
        unknown = set(inputs) - set(self._input_vars)
        missing = set(self._input_vars) - set(inputs)
        if unknown or missing:
            raise InputShapeError(f"inputs {sorted(inputs)} do not match the program's "
                                  f"{sorted(self._input_vars)}")
        for name, var in self._input_vars.items():
            value = np.asarray(inputs[name])
            if name in contracts:
                contracts[name].check(value)
            elif value.ndim != len(var.shape):
                raise InputShapeError(f"input {name!r} has rank {value.ndim}; expected {len(var.shape)}")
            if self._dynamic:
                var._sym_type = types.tensor(var.dtype, tuple(int(d) for d in value.shape))
            var._sym_val = _Value(_storage(var, value))

    def _evaluate(self, op: Any) -> tuple[Any, ...]:
        if self._dynamic:
            out_types = op.type_inference()
            out_types = out_types if isinstance(out_types, tuple) else (out_types,)
            for var, sym_type in zip(op.outputs, out_types):
                var._sym_type = sym_type
        kernel = KERNELS.get(op.op_type)
        # Overflow to inf is a finding (fp16), not a reason to warn.
        with np.errstate(all="ignore"):
            values = kernel(op) if kernel is not None else op.value_inference()
        values = values if isinstance(values, (tuple, list)) and len(op.outputs) > 1 else (values,)
        if any(v is None for v in values):
            raise RuntimeError(f"MIL op {op.name!r} ({op.op_type}) could not be evaluated")
        stored = tuple(_storage(var, v) for var, v in zip(op.outputs, values))
        for var, value in zip(op.outputs, stored):
            _retype(var, value)
            var._sym_val = _Value(value)
        return stored

    def _restore(self) -> None:
        for var, sym_type, sym_val in self._saved.values():
            var._sym_type, var._sym_val = sym_type, sym_val

    def _execute(self, inputs: Mapping[str, np.ndarray], records: list[OpRecord] | None) -> dict[str, np.ndarray]:
        with self._lock:
            try:
                self._bind_inputs(inputs)
                for op in self._ops:
                    values = self._evaluate(op)
                    if records is not None:
                        records.append(OpRecord(
                            name=op.name, op_type=op.op_type,
                            input_names=tuple(v.name for v in op.get_flattened_inputs()),
                            output_names=tuple(v.name for v in op.outputs), outputs=values))
                return {name: self._output(var) for name, var in self._out_vars.items()}
            finally:
                self._restore()

    @staticmethod
    def _output(var: Any) -> np.ndarray:
        from coremltools.converters.mil.mil import types

        value = np.asarray(var._sym_val.val)
        return value.astype(np.float16) if var.dtype == types.fp16 else value.copy()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The program's outputs by name; raises InputShapeError for a refused input."""
        return self._execute(inputs, None)

    def trace(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[OpRecord]]:
        """Like `run`, also returning every non-const op's outputs in program order."""
        records: list[OpRecord] = []
        return self._execute(inputs, records), records
