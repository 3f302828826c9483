"""What the MIL and ONNX walkers share: the cost record, the peak-memory estimate, shape expressions.

A program's cost at one input shape is counted op by op in program order:

- MACs (multiply-accumulates) of the ops that do matrix work (matmul,
  linear/Gemm, conv, attention); elementwise ops are not counted, the way
  fvcore and torch's FlopCounterMode count. Each product is either a
  *weight* product (one operand is a constant: a projection) or an
  *activation* product (both operands computed: attention over the cache).
  A decode step whose weight MACs grow with the cache length re-projects its
  cache: only attention should grow with it.
- the peak activation memory: bytes of computed tensors alive at once, a value
  living from the op that makes it to the last op that reads it (inputs from
  the start, outputs to the end); constants are weights and not counted.
  An estimate: a runtime may fuse ops or reuse buffers.
- how many compute ops keep a float16 output (the fp16 share of an fp16 target).

`evaluate_dim` reads the shape expressions exporters write ("T_cache + 1",
"2*T") without `eval`: names, integers and + - * // / % only.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
               "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1, "int4": 1, "uint4": 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramCost:
    """One program at one input shape."""

    macs: int
    weight_macs: int
    activation_macs: int
    peak_activation_bytes: int
    float_ops: int  # compute ops with a float tensor output
    fp16_ops: int  # ... of which the output is float16
    uncounted: tuple[str, ...] = ()  # op types doing matrix work whose MACs could not be counted

    @property
    def fp16_pct(self) -> float | None:
        return None if not self.float_ops else 100.0 * self.fp16_ops / self.float_ops


@dataclass(slots=True)
class CostTally:
    """Accumulates a `ProgramCost` while a walker visits ops in order."""

    weight_macs: int = 0
    activation_macs: int = 0
    float_ops: int = 0
    fp16_ops: int = 0
    uncounted: set[str] = field(default_factory=set)

    def product(self, macs: int | None, op_type: str, *, weight: bool) -> None:
        if macs is None:
            self.uncounted.add(op_type)
        elif weight:
            self.weight_macs += macs
        else:
            self.activation_macs += macs

    def output_dtype(self, dtype: str | None) -> None:
        if dtype in ("fp16", "fp32", "fp64", "bf16"):
            self.float_ops += 1
            self.fp16_ops += dtype == "fp16"

    def cost(self, peak_bytes: int) -> ProgramCost:
        return ProgramCost(macs=self.weight_macs + self.activation_macs, weight_macs=self.weight_macs,
                           activation_macs=self.activation_macs, peak_activation_bytes=peak_bytes,
                           float_ops=self.float_ops, fp16_ops=self.fp16_ops, uncounted=tuple(sorted(self.uncounted)))


def numel(shape: Sequence[int] | None) -> int | None:
    """Elements of a concrete shape; None when a dimension is unknown."""
    if shape is None or any(not isinstance(d, int) or d < 0 for d in shape):
        return None
    return math.prod(shape)


def tensor_bytes(shape: Sequence[int] | None, dtype: str | None) -> int:
    count = numel(shape)
    return 0 if count is None else count * DTYPE_BYTES.get(dtype or "", 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One op for the liveness walk: what it reads and what it makes (name, bytes)."""

    reads: tuple[str, ...]
    makes: tuple[tuple[str, int], ...]


def peak_live_bytes(inputs: Mapping[str, int], steps: Sequence[Step], outputs: Iterable[str]) -> int:
    """The most bytes of computed values alive at once over `steps` in order.

    >>> peak_live_bytes({"x": 4}, [Step(reads=("x",), makes=(("y", 8),)),
    ...                            Step(reads=("y",), makes=(("z", 2),))], ["z"])
    12
    """
    last_read: dict[str, int] = {}
    for i, step in enumerate(steps):
        for name in step.reads:
            last_read[name] = i
    keep = set(outputs)
    end = len(steps)
    for name in keep:
        last_read[name] = end
    sizes = dict(inputs)
    live = sum(b for n, b in inputs.items() if n in last_read)
    peak = live
    for i, step in enumerate(steps):
        for name, size in step.makes:
            sizes[name] = size
            live += size
        peak = max(peak, live)
        for name in {*step.reads, *(n for n, _ in step.makes)}:
            if last_read.get(name, -1) <= i and name in sizes:  # read for the last time (or never)
                live -= sizes.pop(name)
    return peak


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def evaluate_dim(text: str, env: Mapping[str, int]) -> int | None:
    """A shape expression such as "T_cache + 1" with `env`'s values; None when it cannot be read.

    >>> evaluate_dim("2*T", {"T": 64}), evaluate_dim("T_cache + 1", {"T_cache": 8}), evaluate_dim("s9", {})
    (128, 9, None)
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def value(node: ast.AST) -> int | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = value(node.operand)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div):
                return left // right if right and left % right == 0 else None
            fn = _BINARY.get(type(node.op))
            if fn is None or (fn in (operator.floordiv, operator.mod) and right == 0):
                return None
            return fn(left, right)
        return None

    return value(tree.body)
