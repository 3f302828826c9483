"""The cost of a Core ML ML Program at one input length, counted from its MIL program.

    >>> program = MilProgram.load("decode_fp16.mlpackage")           # doctest: +SKIP
    >>> program.cost(512).macs, program.weight_bytes()               # doctest: +SKIP
    (147456, {"fp16": 1310720, "int32": 96})

The package is read with coremltools' milproto loader (`pipeline.runtimes.
mil_package`). A converted program's types are symbolic where its inputs
are enumerated or ranged, and the loader gives every op its own fresh symbol,
so shapes cannot be substituted: instead the function's inputs are given
concrete shapes and every op's types are inferred again, in program order,
with the op's own `type_value_inference` (what the converter itself runs).
Nothing is executed: the MIL interpreter is a reference, not a runtime.

An input with enumerated shapes takes the one that holds `length`; a ranged
dimension takes `length` (prefill's T, decode's cache length); fixed shapes
stay. A program whose shapes cannot be inferred raises `CostError`.
"""

from __future__ import annotations

import threading
from numbers import Integral
from pathlib import Path
from typing import Any, cast

from pipeline.perf.graph_cost import CostTally, ProgramCost, Step, numel, peak_live_bytes, tensor_bytes
from pipeline.runtimes.mil_package import InputContract, LoadedPackage, load_package


class CostError(RuntimeError):
    """The program's cost could not be counted; the message says where."""


def concrete_shape(contract: InputContract, length: int) -> tuple[int, ...]:
    """The shape `contract` accepts at `length` (see the module docstring)."""
    if len(contract.shapes) > 1:
        holding = [s for s in contract.shapes if length in s]
        if not holding:
            raise CostError(f"input {contract.name!r} enumerates no shape with length {length} "
                            f"({contract.allowed()})")
        return holding[0]
    if contract.ranges:
        return tuple(length if lo != hi else lo for lo, hi in contract.ranges)
    return contract.shapes[0] if contract.shapes else contract.default_shape


def _dims(var: Any) -> tuple[int, ...] | None:
    try:
        shape = var.shape
    except Exception:
        return None
    if shape is None:
        return None
    dims = tuple(int(d) if isinstance(d, Integral) else -1 for d in shape)
    return None if -1 in dims else dims


def _dtype(var: Any) -> str | None:
    from coremltools.converters.mil.mil import types

    try:
        return types.builtin_to_string(var.dtype)
    except Exception:
        return None


def _macs(op: Any) -> int | None:
    """Multiply-accumulates of one matrix op, None when its shapes are unknown."""
    out = numel(_dims(op.outputs[0]))
    if op.op_type == "linear":
        x = _dims(op.inputs["x"])
        return None if out is None or not x else out * x[-1]
    if op.op_type == "matmul":
        x = _dims(op.inputs["x"])
        if out is None or not x:
            return None
        transposed = op.inputs.get("transpose_x") is not None and bool(op.inputs["transpose_x"].val)
        return out * (x[-2] if transposed and len(x) > 1 else x[-1])
    if op.op_type in ("conv", "conv_transpose"):
        weight = _dims(op.inputs["weight"])
        base = out if op.op_type == "conv" else numel(_dims(op.inputs["x"]))
        per = numel(weight[1:]) if weight else None
        return None if base is None or per is None else base * per
    if op.op_type == "scaled_dot_product_attention":
        q, k, v = (_dims(op.inputs[n]) for n in ("query", "key", "value"))
        if not (q and k and v):
            return None
        return numel(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])  # type: ignore[operator]
    return None


MATRIX_OPS = ("linear", "matmul", "conv", "conv_transpose", "scaled_dot_product_attention", "einsum")
_WEIGHT_INPUTS = {"linear": ("weight",), "matmul": ("x", "y"), "conv": ("weight",),
                  "conv_transpose": ("weight",), "scaled_dot_product_attention": ("key", "value")}


class MilProgram:
    """One package's function, loaded once and costed at any length (thread-safe)."""

    def __init__(self, package: LoadedPackage) -> None:
        self.package = package
        self._function: Any = cast(Any, package.function)  # a coremltools Function (typed as object)
        self._ops = list(self._function.operations)
        self._const = self._constants(self._ops)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path) -> MilProgram:
        try:
            return cls(load_package(path))
        except ValueError as exc:
            raise CostError(str(exc)) from None

    @staticmethod
    def _constants(ops: list[Any]) -> set[int]:
        """ids of vars that are constants: const ops, compressed weights, and what only they feed."""
        const: set[int] = set()
        for op in ops:
            inputs = op.get_flattened_inputs()
            if op.op_type == "const" or op.op_type.startswith("constexpr_") or \
                    (inputs and all(id(v) in const for v in inputs)):
                const.update(id(v) for v in op.outputs)
        return const

    def weight_bytes(self) -> dict[str, int]:
        """Bytes of constant tensors by dtype (compressed weights count as stored)."""
        out: dict[str, int] = {}
        for op in self._ops:
            if op.op_type != "const":
                continue
            value = op.outputs[0].val
            nbytes = getattr(value, "nbytes", None)
            if isinstance(nbytes, int) and getattr(value, "size", None):
                dtype = _dtype(op.outputs[0]) or str(value.dtype)
                out[dtype] = out.get(dtype, 0) + nbytes
        return out

    def cost(self, length: int) -> ProgramCost:
        """The cost with inputs at `length`; CostError when shapes cannot be inferred."""
        with self._lock:
            self._retype(length)
            return self._count()

    def _retype(self, length: int) -> None:
        from coremltools.converters.mil.mil import types

        for contract in self.package.inputs:
            var = self._function.inputs.get(contract.name)
            if var is not None:
                var._sym_type = types.tensor(var.dtype, concrete_shape(contract, length))
        for op in self._ops:
            if not op.outputs or id(op.outputs[0]) in self._const:
                continue
            try:
                op.type_value_inference(overwrite_output=True)
            except Exception as exc:
                raise CostError(f"{self.package.path.name}: cannot infer the shapes of {op.op_type} "
                                f"{op.name!r} at length {length}: {exc}") from None

    def _count(self) -> ProgramCost:
        tally, steps = CostTally(), []
        for op in self._ops:
            if not op.outputs or id(op.outputs[0]) in self._const:
                continue
            if op.op_type in MATRIX_OPS:
                weight = any(id(op.inputs[n]) in self._const for n in _WEIGHT_INPUTS.get(op.op_type, ())
                             if op.inputs.get(n) is not None)
                tally.product(_macs(op), op.op_type, weight=weight)
            if op.blocks:
                tally.uncounted.add(op.op_type)  # control flow: its blocks are not walked
            tally.output_dtype(_dtype(op.outputs[0]))
            steps.append(Step(reads=tuple(v.name for v in op.get_flattened_inputs() if id(v) not in self._const),
                              makes=tuple((v.name, tensor_bytes(_dims(v), _dtype(v))) for v in op.outputs)))
        inputs = {name: tensor_bytes(_dims(var), _dtype(var)) for name, var in self._function.inputs.items()}
        peak = peak_live_bytes(inputs, steps, [v.name for v in self._function.outputs])
        return tally.cost(peak)
